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
from collections.abc import Iterable, Mapping
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


@dataclass(slots=True)
class ImportResult:
    """Typed values for our keys, what was dropped, and errors (import nothing if any)."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # our key -> the source key(s)
    dropped: list[Dropped] = field(default_factory=list)
    kept_secrets: list[str] = field(default_factory=list)  # redacted in the file: left alone
    errors: list[str] = field(default_factory=list)


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
    """The YAML subset configuration files use: nested block mappings of scalars.

    Supports ``key: value``, nesting by indentation, ``- item`` lists of scalars, flow mappings
    and lists (``{a: 1}``, ``[1, 2]``), quoted strings, ``#`` comments, and YAML 1.1 scalars as
    PyYAML read them for the seed (``yes``/``no``/``on``/``off`` are booleans, ``~``/``null`` is
    None). Anchors, tags and multi-line strings are not supported: ConfigError naming the line.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[int, Any]] = [(0, root)]  # (indent, container), innermost last
    pending: tuple[dict[str, Any], str, int] | None = None  # a key awaiting its block value
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        body = line.strip()
        if not body or body in ("---", "..."):
            continue
        lead = line[: len(line) - len(line.lstrip())]
        if "\t" in lead:
            raise ConfigError(f"YAML line {number}: tabs are not allowed for indentation")
        indent = len(lead)
        is_item = body.startswith("- ") or body == "-"
        if pending is not None:
            parent, pkey, pindent = pending
            pending = None
            if indent > pindent or (indent == pindent and is_item):
                container: Any = [] if is_item else {}
                parent[pkey] = container
                stack.append((indent, container))
            else:
                parent[pkey] = None
        while len(stack) > 1 and indent < stack[-1][0]:
            stack.pop()
        if len(stack) > 1 and isinstance(stack[-1][1], list) and not is_item:
            stack.pop()  # a list written at its key's indent ends at the next key
        if indent != stack[-1][0]:
            raise ConfigError(f"YAML line {number}: unexpected indentation")
        current = stack[-1][1]
        if is_item:
            if not isinstance(current, list):
                raise ConfigError(f"YAML line {number}: a list item where a key was expected")
            current.append(_scalar(body[1:].strip(), number))
            continue
        match = re.fullmatch(r"""("[^"]*"|'[^']*'|[^:]+?)\s*:(?:\s+(.*))?""", body)
        if match is None:
            raise ConfigError(f"YAML line {number}: expected 'key: value'")
        name = match.group(1).strip("'\"")
        rest = (match.group(2) or "").strip()
        if rest.startswith(("&", "!", "*", "|", ">")):
            raise ConfigError(
                f"YAML line {number}: anchors, tags and block strings are not supported"
            )
        if rest == "":
            pending = (current, name, indent)
            continue
        current[name] = _scalar(rest, number)
    if pending is not None:
        pending[0][pending[1]] = None
    return root


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` inside quotes is kept)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


_YAML_TRUE = {"true", "yes", "on", "y"}
_YAML_FALSE = {"false", "no", "off", "n"}


def _scalar(text: str, number: int) -> Any:
    if text == "":
        return None
    if text[0] in "{[":
        return _flow(text, number)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigError(f"YAML line {number}: bad double-quoted string") from None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    low = text.lower()
    if low in ("~", "null"):
        return None
    if low in _YAML_TRUE:
        return True
    if low in _YAML_FALSE:
        return False
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return text


def _flow(text: str, number: int) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    inner = text[1:-1].strip()
    if text[0] == "[" and text[-1] == "]":
        return [_scalar(p.strip(), number) for p in _split_flow(inner)] if inner else []
    if text[0] == "{" and text[-1] == "}":
        out: dict[str, Any] = {}
        for part in _split_flow(inner) if inner else []:
            k, sep, v = part.partition(":")
            if not sep:
                raise ConfigError(f"YAML line {number}: expected 'key: value' in {{...}}")
            out[k.strip().strip("'\"")] = _scalar(v.strip(), number)
        return out
    raise ConfigError(f"YAML line {number}: unterminated {text[0]}")


def _split_flow(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> dotted keys. Tags (``*.tags`` and our json_object keys) stay dicts."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        name = f"{prefix}{k}"
        known = schema.SCHEMA.get(name)
        keep = name.endswith(".tags") or (known is not None and known.type == "json_object")
        if isinstance(v, Mapping) and not keep:
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
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
        ssl_on = ssl is True or str(ssl).strip().lower() in _YAML_TRUE | {"1"}
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
        shown = "••••" if name in hidden else schema.format_value(name, result.values[name])
        origin = result.origins.get(name, name)
        via = "" if origin == name else f"  (from {origin})"
        lines.append(f"  {name} = {shown}{via}")
    return lines
