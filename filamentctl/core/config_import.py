"""Map the seed's configuration (filamentbox v1 ``config.yaml`` + ``.env``, v2 dotted keys) to ours.

Pure: text and mappings in, an :class:`ImportResult` out. ``filamentctl config import`` reads the
files, calls :func:`parse_yaml` / :func:`parse_dotenv` / :func:`flatten`, then :func:`map_config`,
and stores ``result.values`` only when ``result.errors`` is empty.

What maps where (v1 section names on the left; v2 used the same, plus ``database.<backend>.*``):

- ``influxdb.host`` + ``influxdb.port`` -> ``database.influxdb_v1.url`` (``http://HOST:PORT``) and
  ``database.type = influxdb_v1`` (v1 spoke only InfluxDB 1.x); ``influxdb.database/username/
  password`` -> ``database.influxdb_v1.*``
- ``data_collection.read_interval`` -> ``sensor.read_interval``; ``batch_size``/``flush_interval``
  -> ``writer.*``; ``measurement``/``tags`` -> ``data.*``
- ``retry.backoff_base/backoff_max/alert_threshold`` -> ``retry.*``
- ``sensor.type/gpio_pin`` -> ``sensor.*``; ``heating_control.*`` -> ``heater.*``;
  ``humidity_control.*`` -> ``fan.*``
- environment names are the dotted v1 key upper-cased with ``_`` (``INFLUXDB_HOST``,
  ``DATA_COLLECTION_TAGS``); ``FILAMENTCTL_*__*`` variables are ours; the environment wins over
  the file, as it did in the seed.
- keys that are already ours (e.g. a file from ``config export``) map to themselves.

Everything else is reported in ``dropped`` with the reason (no silent loss). A value that does not
fit our schema is an entry in ``errors`` naming the source key and ours; secret values are never
repeated in any message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from filamentctl.core import schema
from filamentctl.core.config_toml import REDACTED
from filamentctl.errors import ConfigError

# v1/v2 dotted key -> our key (same meaning, value converted by our schema).
RENAMED: dict[str, str] = {
    "data_collection.read_interval": "sensor.read_interval",
    "data_collection.batch_size": "writer.batch_size",
    "data_collection.flush_interval": "writer.flush_interval",
    "data_collection.measurement": "data.measurement",
    "data_collection.tags": "data.tags",
    "retry.backoff_base": "retry.backoff_base",
    "retry.backoff_max": "retry.backoff_max",
    "retry.alert_threshold": "retry.alert_threshold",
    "sensor.type": "sensor.type",
    "sensor.gpio_pin": "sensor.gpio_pin",
    "heating_control.enabled": "heater.enabled",
    "heating_control.gpio_pin": "heater.gpio_pin",
    "heating_control.min_temp_c": "heater.min_temp_c",
    "heating_control.max_temp_c": "heater.max_temp_c",
    "humidity_control.enabled": "fan.enabled",
    "humidity_control.gpio_pin": "fan.gpio_pin",
    "humidity_control.min_humidity": "fan.min_humidity",
    "humidity_control.max_humidity": "fan.max_humidity",
    "influxdb.database": "database.influxdb_v1.database",
    "influxdb.username": "database.influxdb_v1.username",
    "influxdb.password": "database.influxdb_v1.password",
    "database.influxdb_v1.database": "database.influxdb_v1.database",
    "database.influxdb_v1.username": "database.influxdb_v1.username",
    "database.influxdb_v1.password": "database.influxdb_v1.password",
    "database.influxdb_v2.url": "database.influxdb_v2.url",
    "database.influxdb_v2.token": "database.influxdb_v2.token",
    "database.influxdb_v2.org": "database.influxdb_v2.org",
    "database.influxdb_v2.bucket": "database.influxdb_v2.bucket",
    "database.influxdb_v3.token": "database.influxdb_v3.token",
    "database.influxdb_v3.database": "database.influxdb_v3.database",
    "database.prometheus.job": "database.prometheus.job",
    "database.prometheus.job_name": "database.prometheus.job",
    "database.prometheus.username": "database.prometheus.username",
    "database.prometheus.password": "database.prometheus.password",
    "database.timescaledb.password": "database.timescaledb.password",
    "database.timescaledb.table": "database.timescaledb.table",
    "database.victoriametrics.username": "database.victoriametrics.username",
    "database.victoriametrics.password": "database.victoriametrics.password",
    "database.victoriametrics.token": "database.victoriametrics.token",
}

# URLs built from host/port parts: prefix -> (our url key, default port, default scheme).
_URL_PARTS: dict[str, tuple[str, int, str]] = {
    "influxdb": ("database.influxdb_v1.url", 8086, "http"),
    "database.influxdb_v1": ("database.influxdb_v1.url", 8086, "http"),
    "database.influxdb_v3": ("database.influxdb_v3.url", 8181, "http"),
    "database.victoriametrics": ("database.victoriametrics.url", 8428, "http"),
    "database.prometheus": ("database.prometheus.url", 9091, "http"),
}
# Keys that are whole URLs in v2 (several names were used for the same thing).
_URL_KEYS: dict[str, str] = {
    "database.influxdb_v3.url": "database.influxdb_v3.url",
    "database.influxdb_v3.host": "database.influxdb_v3.url",
    "database.victoriametrics.url": "database.victoriametrics.url",
    "database.prometheus.url": "database.prometheus.url",
    "database.prometheus.gateway_url": "database.prometheus.url",
    "database.prometheus.pushgateway_url": "database.prometheus.url",
    "database.influxdb_v1.url": "database.influxdb_v1.url",
}
_URL_COMPONENTS = ("host", "port", "ssl", "use_ssl", "scheme")
_TIMESCALE_PARTS = ("host", "port", "database", "username", "user")

# Keys the seed had that we deliberately do not carry over, and why.
DROPPED_REASONS: dict[str, str] = {
    "queue.max_size": "no equivalent: unsent readings wait in the local history "
    "(storage.max_backlog caps it, in readings)",
    "retry.persist_on_alert": "always on: every reading is kept in the local history until "
    "delivered",
    "persistence.db_path": "the local history lives in the state directory "
    "(`filamentctl config path`)",
    "persistence.max_batches": "counted batches; storage.max_backlog counts readings, set it "
    "yourself if the default does not suit",
    "sensor.sea_level_pressure": "not used: filamentctl does not compute altitude",
    "heating_control.check_interval": "not needed: control runs on every reading and 4 times "
    "a second",
    "humidity_control.check_interval": "not needed: control runs on every reading and 4 times "
    "a second",
    "config_encryption_key": "not imported: the configuration is encrypted with filamentctl's "
    "own key",
}

# Every v1/v2 dotted key we understand (for matching environment variable names).
_KNOWN_SEED_KEYS: tuple[str, ...] = (
    *RENAMED,
    *DROPPED_REASONS,
    *(f"{prefix}.{part}" for prefix in _URL_PARTS for part in _URL_COMPONENTS),
    *(f"database.timescaledb.{part}" for part in _TIMESCALE_PARTS),
    *_URL_KEYS,
    "database.type",
)
_ENV_NAMES: dict[str, str] = {k.upper().replace(".", "_"): k for k in _KNOWN_SEED_KEYS}


@dataclass(frozen=True, slots=True)
class Dropped:
    """A source key that was not imported, and why (never its value)."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A value moved to the nearest one that is valid (for the chosen hardware), and why."""

    key: str
    given: Any
    value: Any
    reason: str

    def __str__(self) -> str:
        given = schema.format_value(self.given)
        value = schema.format_value(self.value)
        return f"{self.key}: {given} → {value} ({self.reason})"


@dataclass(slots=True)
class ImportResult:
    """Typed values for our keys, what was dropped, and errors (import nothing if any)."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # our key -> the source key(s)
    dropped: list[Dropped] = field(default_factory=list)
    kept_secrets: list[str] = field(default_factory=list)  # redacted in the file: left alone
    errors: list[str] = field(default_factory=list)
    adjusted: list[Adjustment] = field(default_factory=list)  # out of range: nearest valid


# Keys whose value is moved to the nearest valid one instead of refused: how often to read the
# sensor has a safe nearest value (reading less often than asked); a pin or a temperature limit
# does not, and stays an error.
_FITTED = ("sensor.read_interval",)


def fit_to_hardware(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Adjustment]]:
    """``values`` (a whole configuration as it would be stored; missing keys take their
    defaults) with what is out of range for the chosen hardware moved to the nearest valid
    value, and the list of those adjustments. Now: ``sensor.read_interval`` below the minimum
    of ``sensor.type`` (a DHT22 or DHT11 answers at most every 2 s) is raised to it. Pure; the
    result still has to pass :func:`schema.validate`.
    """
    out = dict(values)
    adjusted: list[Adjustment] = []
    sensor = out.get("sensor.type", schema.SCHEMA["sensor.type"].default)
    interval = out.get("sensor.read_interval", schema.SCHEMA["sensor.read_interval"].default)
    least = schema.min_read_interval(str(sensor))
    if isinstance(interval, int | float) and not isinstance(interval, bool) and interval < least:
        out["sensor.read_interval"] = least
        adjusted.append(
            Adjustment(
                "sensor.read_interval",
                interval,
                least,
                f"the minimum for sensor.type {sensor}",
            )
        )
    return out, adjusted


# -- file formats -------------------------------------------------------------------------------


def parse_dotenv(text: str) -> dict[str, str]:
    """``NAME=value`` lines (``export`` prefix, quotes and ``#`` comments allowed).

    Raises ConfigError naming the line for a line that is not an assignment.
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f".env line {number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote_char, value = value[0], value[1:-1]
            if quote_char == '"':
                value = value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[name] = value
    return out


def parse_yaml(text: str) -> dict[str, Any]:
    """A YAML configuration file as nested mappings, read with PyYAML's safe loader.

    YAML 1.1 as the seed read it (``yes``/``no``/``on``/``off`` are booleans, ``~`` is None);
    anchors, block strings and flow collections work; tags that would build Python objects are
    refused. Raises ConfigError, one line: a syntax error (with its line and column), a
    document that is not a mapping of settings, or one nested too deeply to be a configuration.
    PyYAML is imported here, not at module level (CLI start-up time).
    """
    import yaml

    try:
        # The pure-Python loader on purpose: libyaml's composer recurses in C without a limit,
        # while the Python one stops at the interpreter's recursion limit (caught below).
        doc = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"YAML line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = exc.problem or exc.context or "not valid YAML"
        raise ConfigError(f"{where}: {_one_line(problem)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise ConfigError(
            f"YAML nested more than {MAX_DEPTH} levels deep: not a configuration file"
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"expected a mapping of settings (key: value lines), found a YAML {type(doc).__name__}"
        )
    return doc


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


# A configuration is a few levels deep with tens of keys; anything far beyond is not one (and a
# YAML alias bomb would otherwise expand into billions of keys here).
MAX_DEPTH = 32
MAX_KEYS = 10_000


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> dotted keys. Tags (``*.tags`` and our json_object keys) stay dicts.

    Raises ConfigError for more than ``MAX_DEPTH`` levels or ``MAX_KEYS`` keys (iterative, so a
    deep document cannot exhaust the stack).
    """
    out: dict[str, Any] = {}
    seen = 0
    # Depth first, in document order: a stack of (the items still to visit, their prefix).
    stack: list[tuple[Iterator[tuple[Any, Any]], str]] = [(iter(doc.items()), prefix)]
    while stack:
        items, base = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        seen += 1
        if seen > MAX_KEYS:
            raise ConfigError(f"more than {MAX_KEYS} keys: not a configuration file")
        name = f"{base}{item[0]}"
        value = item[1]
        known = schema.SCHEMA.get(name)
        keep = name.endswith(".tags") or (known is not None and known.type == "json_object")
        if isinstance(value, Mapping) and not keep:
            if len(stack) >= MAX_DEPTH:
                raise ConfigError(
                    f"nested more than {MAX_DEPTH} levels deep: not a configuration file"
                )
            stack.append((iter(value.items()), name + "."))
        else:
            out[name] = value
    return out


# -- mapping ------------------------------------------------------------------------------------


def env_to_keys(env: Mapping[str, str]) -> tuple[dict[str, Any], list[Dropped]]:
    """Environment (``.env``) variables -> dotted seed or our keys, plus what matched nothing."""
    out: dict[str, Any] = {}
    dropped: list[Dropped] = []
    for var, text in env.items():
        if schema.is_key_env(var):
            try:
                out[schema.key_from_env(var)] = text
            except ConfigError as exc:
                dropped.append(Dropped(var, str(exc)))
        elif var.upper() in _ENV_NAMES:
            out[_ENV_NAMES[var.upper()]] = text
        elif var.upper() == "CONFIG_ENCRYPTION_KEY":
            dropped.append(Dropped(var, DROPPED_REASONS["config_encryption_key"]))
        else:
            dropped.append(Dropped(var, "not a filamentbox or filamentctl setting"))
    return out, dropped


def map_config(flat: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ImportResult:
    """Map seed (v1/v2) or our dotted keys, with ``.env`` variables on top, to our typed values.

    Never raises for bad input: unknown keys go to ``dropped``, bad values to ``errors``.
    """
    result = ImportResult()
    merged: dict[str, Any] = dict(flat)
    if env:
        from_env, env_dropped = env_to_keys(env)
        merged.update(from_env)  # the environment overrode the file in the seed too
        result.dropped.extend(env_dropped)

    consumed: set[str] = set()
    _map_urls(merged, result, consumed)
    _map_timescale(merged, result, consumed)
    for name, value in merged.items():
        if name in consumed:
            continue
        if name in schema.SCHEMA:
            _put(result, name, value, name)
        elif name in RENAMED:
            _put(result, RENAMED[name], value, name)
        elif name in _URL_KEYS:
            _put(result, _URL_KEYS[name], value, name)
        elif name in DROPPED_REASONS:
            result.dropped.append(Dropped(name, DROPPED_REASONS[name]))
        elif name.endswith(".enabled") and name.startswith("database."):
            result.dropped.append(Dropped(name, "the backend is chosen by database.type"))
        else:
            result.dropped.append(Dropped(name, "no filamentctl equivalent"))

    # v1 wrote only to InfluxDB 1.x: its [influxdb] section means that backend.
    if "database.type" not in result.values and any(k.startswith("influxdb.") for k in merged):
        result.values["database.type"] = "influxdb_v1"
        result.origins["database.type"] = "influxdb (v1 section)"
    return result


def _map_urls(merged: dict[str, Any], result: ImportResult, consumed: set[str]) -> None:
    for prefix, (target, default_port, default_scheme) in _URL_PARTS.items():
        parts = {p: merged[f"{prefix}.{p}"] for p in _URL_COMPONENTS if f"{prefix}.{p}" in merged}
        if not parts:
            continue
        consumed.update(f"{prefix}.{p}" for p in parts)
        sources = ", ".join(f"{prefix}.{p}" for p in parts)
        host = str(parts.get("host") or "").strip() or "127.0.0.1"
        ssl = parts.get("ssl", parts.get("use_ssl"))
        ssl_on = ssl is True or str(ssl).strip().lower() in ("true", "yes", "on", "y", "1")
        scheme = str(parts.get("scheme") or ("https" if ssl_on else default_scheme))
        if "://" in host:
            scheme, _, host = host.partition("://")
        host = host.rstrip("/")
        port = parts.get("port")
        if port is None and not re.search(r":\d+$", host):
            port = default_port
        url = f"{scheme}://{host}" + (f":{port}" if port not in (None, "") else "")
        _put(result, target, url, sources)


def _map_timescale(merged: dict[str, Any], result: ImportResult, consumed: set[str]) -> None:
    prefix = "database.timescaledb"
    parts = {p: merged[f"{prefix}.{p}"] for p in _TIMESCALE_PARTS if f"{prefix}.{p}" in merged}
    if not parts:
        return
    consumed.update(f"{prefix}.{p}" for p in parts)
    user = str(parts.get("username") or parts.get("user") or "")
    host = str(parts.get("host") or "127.0.0.1")
    port = parts.get("port") or 5432
    database = str(parts.get("database") or "filament")
    auth = f"{user}@" if user else ""
    url = f"postgresql://{auth}{host}:{port}/{database}"
    _put(result, "database.timescaledb.url", url, ", ".join(f"{prefix}.{p}" for p in parts))


def _put(result: ImportResult, target: str, value: Any, source: str) -> None:
    k = schema.SCHEMA[target]
    if k.secret and value == REDACTED:
        result.kept_secrets.append(target)
        return
    if target in _FITTED:
        value = _clamped(result, k, value)
    try:
        typed = _typed(k, value)
    except ConfigError as exc:
        via = "" if source == target else f" (from {source})"
        result.errors.append(f"{exc}{via}")
        return
    if target in result.values and result.values[target] != typed:
        # Two sources for one key (e.g. ours and the seed's): the later one wins, say so.
        result.dropped.append(
            Dropped(result.origins[target], f"overridden by {source} for {target}")
        )
    result.values[target] = typed
    result.origins[target] = source


def _clamped(result: ImportResult, k: schema.Key, value: Any) -> Any:
    """A number outside ``k``'s range moved to the nearest end of it (recorded); else as is."""
    number: float
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value  # not a number: _typed reports it
    else:
        return value
    low = number if k.min is None else max(number, float(k.min))
    fitted = low if k.max is None else min(low, float(k.max))
    if fitted == number or fitted != fitted:  # in range (or NaN: _typed refuses it)
        return value
    result.adjusted.append(Adjustment(k.name, number, fitted, f"the range of {k.name}"))
    return fitted


def _typed(k: schema.Key, value: Any) -> Any:
    if value is None:
        raise ConfigError(f"invalid value (empty) for {k.name}: expected {k.allowed()}")
    if isinstance(value, str):
        return schema.parse(k.name, value)
    if k.type == "json_object" and isinstance(value, Mapping):
        # YAML tags may hold numbers; our tags are strings.
        value = {str(t): v if isinstance(v, str) else json.dumps(v) for t, v in value.items()}
    if k.type == "str" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return schema.check(k.name, value)


def describe(result: ImportResult, secret_names: Iterable[str] = ()) -> list[str]:
    """Report lines: what was imported (secrets masked) and what was dropped and why."""
    lines = []
    hidden = set(secret_names) | {n for n, k in schema.SCHEMA.items() if k.secret}
    for name in sorted(result.values):
        shown = "••••" if name in hidden else schema.format_value(result.values[name])
        origin = result.origins.get(name, name)
        via = "" if origin == name else f"  (from {origin})"
        lines.append(f"  {name} = {shown}{via}")
    return lines
