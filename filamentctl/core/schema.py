"""The configuration schema: every key's type, default, allowed values, help and secrecy.

This is the single source of truth for configuration. It drives validation,
``filamentctl config list``, the docs (docs/configuration.md is generated from it) and the
environment overrides. Pure and cheap to import: the
CLI loads it for ``--help`` and completion.

Environment overrides: a key's dotted parts are upper-cased and joined with ``__`` after the
``FILAMENTCTL_`` prefix, so ``sensor.read_interval`` is ``FILAMENTCTL_SENSOR__READ_INTERVAL`` and
``database.influxdb_v1.url`` is ``FILAMENTCTL_DATABASE__INFLUXDB_V1__URL``. Single underscores stay
inside a part, so the mapping is reversible; only variables containing ``__`` are treated as key
overrides (``FILAMENTCTL_HOME`` and ``FILAMENTCTL_CONFIG_KEY`` are not keys).

Errors are :class:`~filamentctl.errors.ConfigError` (exit 2) with one line naming the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from filamentctl.core import drying, notify, sensors
from filamentctl.core.control import fan_band_problems, heater_band_problems
from filamentctl.errors import ConfigError

KeyType = Literal["int", "float", "bool", "str", "choice", "json_object"]

ENV_PREFIX = "FILAMENTCTL_"
ENV_SEPARATOR = "__"

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})

# A secret setting may name where the secret is instead of holding it (store/vault.py).
VAULT_REF_PREFIX = "vault:"
_VAULT_REF = re.compile(r"([A-Za-z0-9_.-]+)/([A-Za-z0-9_.\-/]*[A-Za-z0-9_.-])#([A-Za-z0-9_.-]+)")

# A validator returns None when the (already typed) value is acceptable, else what is allowed.
Validator = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key. ``min``/``max`` are inclusive; ``choices`` only for "choice"."""

    name: str
    type: KeyType
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    secret: bool = False
    unit: str | None = None
    validator: Validator | None = None
    # A costlier check (e.g. a library's own parser), run when a person enters a value
    # (:func:`parse`) or asks for validation (``validate(deep=True)``), not on every load.
    deep_validator: Validator | None = None
    # A length of time that may also be written as a duration: 90s, 15m, 2h, 1h30m, 1d.
    duration: bool = False
    example: str | None = None  # a json_object key's own example value, for help and errors

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def env(self) -> str:
        return env_name(self.name)

    def allowed(self) -> str:
        """What values are allowed, in words (used in error messages and ``config list``)."""
        unit = f" {self.unit}" if self.unit else ""
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        if self.type == "bool":
            return "true or false"
        if self.type == "json_object":
            return "a JSON object, e.g. " + (self.example or '{"location": "shelf-2"}')
        if self.duration:
            low, high = _num(self.min or 0), _num(self.max or math.inf)
            return f"seconds from {low} to {high}, or a duration such as 90s, 15m, 2h"
        if self.type in ("int", "float"):
            kind = "a whole number" if self.type == "int" else "a number"
            if self.min is not None and self.max is not None:
                return f"{kind} from {_num(self.min)} to {_num(self.max)}{unit}"
            if self.min is not None:
                return f"{kind} of at least {_num(self.min)}{unit}"
            if self.max is not None:
                return f"{kind} of at most {_num(self.max)}{unit}"
            return kind
        return "text"


def _num(x: float) -> str:
    return f"{x:g}"


# --- per-key validators (typed value in, None or "what is allowed" out) -----------------------


def _non_empty(value: Any) -> str | None:
    return None if str(value).strip() else "a non-empty name"


def _measurement(value: Any) -> str | None:
    """A name line protocol can carry: the very check the delivery encoder makes at start."""
    from filamentctl.core.lineprotocol import measurement_problems

    if not str(value).strip():
        return "a non-empty name"
    found = measurement_problems(str(value))
    return f"a measurement name line protocol can carry ({'; '.join(found)})" if found else None


# user:password@ inside a URL would make a secret of a key that is not one (shown by config list,
# written by export, accepted on argv): credentials have their own secret keys.
_URL_PASSWORD = re.compile(r"^[a-z]+://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)


def _http_url(value: Any) -> str | None:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        return "an http:// or https:// URL"
    if "@" in value.split("://", 1)[1].split("/", 1)[0]:
        return "a URL without user:password@ (use the .username/.password or .token keys)"
    return None


def _postgres_url(value: Any) -> str | None:
    if not re.fullmatch(r"postgres(ql)?://\S+", value):
        return "a postgresql:// URL (the password goes in its own secret key)"
    if _URL_PASSWORD.match(value):
        return "a postgresql:// URL without a password (set database.timescaledb.password)"
    return None


def _tenant(value: Any) -> str | None:
    ok = value == "" or re.fullmatch(r"\d+(:\d+)?", value)
    return None if ok else "empty or a VictoriaMetrics tenant 'accountID' or 'accountID:projectID'"


def _tags(value: Any) -> str | None:
    """Tags line protocol can carry: the very check the delivery encoder makes at start."""
    from filamentctl.core.lineprotocol import tag_problems

    for k, v in value.items():
        if not k.strip() or not isinstance(v, str):
            return 'a JSON object of non-empty names to string values, e.g. {"box": "dryer-1"}'
    found = tag_problems(value)
    if found:
        return f"tags line protocol can carry ({'; '.join(found)[:300]})"
    return None


# Prometheus metric and label names (the Pushgateway backend turns measurement and tags into
# them; checked here so a value config set accepts is one the service can start with).
_PROM_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PROM_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PROM_RESERVED_LABELS = frozenset({"job", "instance"})


def prometheus_problems(measurement: str, tags: Mapping[str, Any]) -> list[str]:
    """Why ``data.measurement``/``data.tags`` cannot name Prometheus metrics and labels."""
    found = []
    if not _PROM_METRIC.fullmatch(measurement):
        found.append(
            f"data.measurement {measurement!r} cannot start a Prometheus metric name: "
            "use letters, digits and underscores, not starting with a digit"
        )
    for name in tags:
        if (
            not _PROM_LABEL.fullmatch(name)
            or name.startswith("__")
            or name in _PROM_RESERVED_LABELS
        ):
            found.append(
                f"data.tags key {name!r} cannot be a Prometheus label: use letters, digits and "
                "underscores (not starting with a digit or '__', not job/instance)"
            )
    return found


def _loopback_listen(value: Any) -> str | None:
    """Empty (off), or host:port where host is a loopback address (metrics are unauthenticated)."""
    if value == "":
        return None
    allowed = "empty (off) or a loopback host:port such as 127.0.0.1:9108 or [::1]:9108"
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[^:\[\]]+):(\d{1,5})", value)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        return allowed
    host = m.group(1).strip("[]")
    if host == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else allowed
    except ValueError:
        return allowed


def _listen(value: Any) -> str | None:
    """host:port for a server socket: an IP address ([v6] in brackets), localhost or a name."""
    allowed = "host:port such as 127.0.0.1:8780, 0.0.0.0:8780 or [::1]:8780"
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})", value)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        return allowed
    host = m.group(1)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return allowed
    return None


# A web token guards relays on the network: long enough that guessing it (even at the gateway's
# rate limit, or offline) is hopeless.
WEB_TOKEN_MIN_LENGTH = 16


def _web_token(value: Any) -> str | None:
    if value == "":
        return None
    if len(value) < WEB_TOKEN_MIN_LENGTH or any(c.isspace() for c in value):
        return (
            f"empty (no token) or at least {WEB_TOKEN_MIN_LENGTH} characters without spaces, "
            "e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return None


def _mqtt_url(value: Any) -> str | None:
    """mqtt://host[:port] or mqtts://host[:port]; credentials have their own keys."""
    allowed = "mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (e.g. mqtt://homeassistant.local:1883)"
    m = re.fullmatch(r"mqtts?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?/?", value)
    if "@" in value:
        return "a URL without user:password@ (use mqtt.username and mqtt.password)"
    if m is None or (m.group(2) is not None and not 1 <= int(m.group(2)) <= 65535):
        return allowed
    return None


def _topic_prefix(value: Any) -> str | None:
    """An MQTT topic prefix: levels separated by '/', no wildcards, no empty level."""
    if value == "":
        return None
    levels = value.split("/")
    if any(not level or any(c in level for c in "+#\x00") for level in levels):
        return "topic levels separated by '/' with no '+', '#' or empty level (e.g. home/dryer)"
    return None


def _discovery_prefix(value: Any) -> str | None:
    return _topic_prefix(value) if value else "a non-empty topic prefix, e.g. homeassistant"


def _absolute_path_or_empty(value: Any) -> str | None:
    return None if value == "" or value.startswith("/") else "empty or an absolute file path"


def _client_id(value: Any) -> str | None:
    ok = value == "" or re.fullmatch(r"[\x21-\x7e]{1,128}", value)
    return None if ok else "empty or up to 128 printable characters without spaces"


def _k(name: str, type_: KeyType, default: Any, help_: str, **kw: Any) -> Key:
    return Key(name=name, type=type_, default=default, help=help_, **kw)


_DB_BACKENDS = (
    "none",
    "influxdb_v1",
    "influxdb_v2",
    "influxdb_v3",
    "prometheus",
    "timescaledb",
    "victoriametrics",
)

_KEYS: tuple[Key, ...] = (
    # sensor
    _k(
        "sensor.type",
        "choice",
        "bme280",
        "Sensor model: bme280 (I2C), dht22 or dht11 (GPIO), or simulated (no hardware)",
        choices=("bme280", "dht22", "dht11", "simulated"),
    ),
    _k(
        "sensor.read_interval",
        "float",
        5.0,
        "Seconds between sensor reads",
        min=0.1,
        max=3600,
        unit="s",
    ),
    _k(
        "sensor.stale_after",
        "float",
        30.0,
        "A reading older than this is stale: heater off, fan to its fault state",
        min=1,
        max=86400,
        unit="s",
    ),
    _k(
        "sensor.i2c_address",
        "choice",
        "auto",
        "BME280 I2C address; auto probes 0x76 then 0x77",
        choices=("auto", "0x76", "0x77"),
    ),
    _k("sensor.gpio_pin", "int", 4, "BCM GPIO pin of a DHT sensor's data line", min=0, max=27),
    _k(
        "sensor.temperature_offset",
        "float",
        0.0,
        "Calibration added to every temperature",
        min=-10,
        max=10,
        unit="°C",
    ),
    _k(
        "sensor.humidity_offset",
        "float",
        0.0,
        "Calibration added to every relative humidity",
        min=-20,
        max=20,
        unit="%RH",
    ),
    _k(
        "sensor.max_jump_c",
        "float",
        10.0,
        "Largest plausible temperature change between two readings; bigger jumps are rejected",
        min=0.5,
        max=100,
        unit="°C",
    ),
    _k(
        "sensor.max_jump_rh",
        "float",
        25.0,
        "Largest plausible humidity change between two readings; bigger jumps are rejected",
        min=1,
        max=100,
        unit="%RH",
    ),
    # data
    _k(
        "data.measurement",
        "str",
        "environment",
        "Measurement (table/metric) name readings are written under",
        validator=_measurement,
    ),
    _k(
        "data.tags",
        "json_object",
        {},
        "Extra tags written with every reading, as a JSON object of strings",
        validator=_tags,
    ),
    # database: common
    _k(
        "database.type",
        "choice",
        "none",
        "Remote time-series backend readings are delivered to (none keeps only the local history)",
        choices=_DB_BACKENDS,
    ),
    _k(
        "database.timeout",
        "float",
        10.0,
        "Timeout for one request to the database",
        min=0.5,
        max=300,
        unit="s",
    ),
    _k("database.tls_verify", "bool", True, "Verify the database server's TLS certificate"),
    _k(
        "database.tls_ca_file",
        "str",
        "",
        "CA bundle to verify the database's TLS certificate (empty: system CAs)",
    ),
    # database: victoriametrics
    _k(
        "database.victoriametrics.url",
        "str",
        "http://127.0.0.1:8428",
        "VictoriaMetrics base URL",
        validator=_http_url,
    ),
    _k(
        "database.victoriametrics.tenant",
        "str",
        "",
        "VictoriaMetrics cluster tenant (accountID[:projectID]); empty for single-node",
        validator=_tenant,
    ),
    _k(
        "database.victoriametrics.username",
        "str",
        "",
        "VictoriaMetrics basic-auth user (empty: no basic auth)",
    ),
    _k(
        "database.victoriametrics.password",
        "str",
        "",
        "VictoriaMetrics basic-auth password",
        secret=True,
    ),
    _k(
        "database.victoriametrics.token",
        "str",
        "",
        "VictoriaMetrics bearer token (instead of basic auth)",
        secret=True,
    ),
    # database: influxdb v1
    _k(
        "database.influxdb_v1.url",
        "str",
        "http://127.0.0.1:8086",
        "InfluxDB 1.x base URL",
        validator=_http_url,
    ),
    _k(
        "database.influxdb_v1.database",
        "str",
        "filament",
        "InfluxDB 1.x database name",
        validator=_non_empty,
    ),
    _k("database.influxdb_v1.username", "str", "", "InfluxDB 1.x user (empty: no auth)"),
    _k("database.influxdb_v1.password", "str", "", "InfluxDB 1.x password", secret=True),
    # database: influxdb v2
    _k(
        "database.influxdb_v2.url",
        "str",
        "http://127.0.0.1:8086",
        "InfluxDB 2.x base URL",
        validator=_http_url,
    ),
    _k(
        "database.influxdb_v2.token",
        "str",
        "",
        "InfluxDB 2.x API token with write access to the bucket",
        secret=True,
    ),
    _k("database.influxdb_v2.org", "str", "", "InfluxDB 2.x organisation name or ID"),
    _k(
        "database.influxdb_v2.bucket",
        "str",
        "filament",
        "InfluxDB 2.x bucket",
        validator=_non_empty,
    ),
    # database: influxdb v3
    _k(
        "database.influxdb_v3.url",
        "str",
        "http://127.0.0.1:8181",
        "InfluxDB 3 base URL",
        validator=_http_url,
    ),
    _k("database.influxdb_v3.token", "str", "", "InfluxDB 3 token", secret=True),
    _k(
        "database.influxdb_v3.database",
        "str",
        "filament",
        "InfluxDB 3 database name",
        validator=_non_empty,
    ),
    # database: prometheus pushgateway
    _k(
        "database.prometheus.url",
        "str",
        "http://127.0.0.1:9091",
        "Prometheus Pushgateway base URL",
        validator=_http_url,
    ),
    _k(
        "database.prometheus.job",
        "str",
        "filamentctl",
        "Pushgateway job label readings are pushed under",
        validator=_non_empty,
    ),
    _k(
        "database.prometheus.username",
        "str",
        "",
        "Pushgateway basic-auth user (empty: no basic auth)",
    ),
    _k("database.prometheus.password", "str", "", "Pushgateway basic-auth password", secret=True),
    # database: timescaledb
    _k(
        "database.timescaledb.url",
        "str",
        "postgresql://127.0.0.1:5432/filament",
        "TimescaleDB/PostgreSQL connection URL, without the password",
        validator=_postgres_url,
    ),
    _k("database.timescaledb.password", "str", "", "TimescaleDB/PostgreSQL password", secret=True),
    _k(
        "database.timescaledb.table",
        "str",
        "readings",
        "Table readings are written to",
        validator=_non_empty,
    ),
    # writer
    _k(
        "writer.batch_size",
        "int",
        500,
        "Readings sent to the database in one write",
        min=1,
        max=50000,
    ),
    _k(
        "writer.flush_interval",
        "float",
        30.0,
        "Send a partial batch after this long",
        min=0.1,
        max=3600,
        unit="s",
    ),
    # storage
    _k(
        "storage.commit_interval",
        "float",
        # With writer.flush_interval's 30 s, one commit and one delivery per half minute: each
        # commit costs the SD card about the same, whatever it holds (docs/delivery.md).
        30.0,
        "Commit the local history at least this often (the most a hard crash can lose)",
        min=0.1,
        max=300,
        unit="s",
    ),
    _k(
        "storage.max_backlog",
        "int",
        2_000_000,
        "Most undelivered readings kept; beyond it the oldest are dropped and counted",
        min=100,
        max=100_000_000,
    ),
    _k(
        "storage.retention_days",
        "float",
        30.0,
        "Days of local history kept",
        min=0.01,
        max=3650,
        unit="days",
    ),
    # retry
    _k(
        "retry.backoff_base",
        "float",
        1.0,
        "First retry delay after a failed write; doubles per failure",
        min=0.05,
        max=600,
        unit="s",
    ),
    _k(
        "retry.backoff_max",
        "float",
        300.0,
        "Longest delay between retries",
        min=1,
        max=3600,
        unit="s",
    ),
    _k(
        "retry.alert_threshold",
        "int",
        5,
        "Consecutive failed writes before an alert fires",
        min=1,
        max=1000,
    ),
    _k(
        "retry.alert_command",
        "str",
        "",
        "Command run when an alert fires, details in its environment (empty: none)",
    ),
    # heater
    _k("heater.enabled", "bool", False, "Drive a heater relay"),
    _k("heater.gpio_pin", "int", 16, "BCM GPIO pin of the heater relay", min=0, max=27),
    _k(
        "heater.active_high",
        "bool",
        True,
        "Heater relay switches on at a high pin level (false for active-low boards)",
    ),
    _k(
        "heater.min_temp_c",
        "float",
        20.0,
        "Heater turns on below this temperature",
        min=-20,
        max=100,
        unit="°C",
    ),
    _k(
        "heater.max_temp_c",
        "float",
        22.0,
        "Heater turns off above this temperature",
        min=-20,
        max=100,
        unit="°C",
    ),
    _k(
        "heater.cutoff_temp_c",
        "float",
        60.0,
        "Safety cutoff: at or above this the heater is latched off until `heater reset`",
        min=0,
        max=120,
        unit="°C",
    ),
    _k(
        "heater.min_cycle_s",
        "float",
        30.0,
        "Least time before the heater switches back ON after a switching (every OFF is at once)",
        min=0,
        max=3600,
        unit="s",
    ),
    _k(
        "heater.max_on_s",
        "float",
        3600.0,
        "Longest continuous heater ON period",
        min=10,
        max=86400,
        unit="s",
    ),
    _k(
        "heater.runaway_gain_c",
        "float",
        1.0,
        "Rise expected within the runaway window while heating, else a latched fault",
        min=0.1,
        max=20,
        unit="°C",
    ),
    _k(
        "heater.runaway_window_s",
        "float",
        600.0,
        "Window in which the heater must raise the temperature by the runaway gain",
        min=10,
        max=7200,
        unit="s",
    ),
    # fan
    _k("fan.enabled", "bool", False, "Drive an exhaust fan relay"),
    _k("fan.gpio_pin", "int", 20, "BCM GPIO pin of the fan relay", min=0, max=27),
    _k(
        "fan.active_high",
        "bool",
        True,
        "Fan relay switches on at a high pin level (false for active-low boards)",
    ),
    _k(
        "fan.min_humidity",
        "float",
        10.0,
        "Fan turns off below this relative humidity",
        min=0,
        max=100,
        unit="%RH",
    ),
    _k(
        "fan.max_humidity",
        "float",
        15.0,
        "Fan turns on above this relative humidity",
        min=0,
        max=100,
        unit="%RH",
    ),
    _k(
        "fan.min_cycle_s",
        "float",
        30.0,
        "Least time before the fan switches back ON after a switching (every OFF is at once)",
        min=0,
        max=3600,
        unit="s",
    ),
    _k(
        "fan.on_fault",
        "choice",
        "off",
        "Fan state while the sensor is stale or failing",
        choices=("off", "on"),
    ),
    # web: the web gateway (`filamentctl web`), which reads these through the service
    _k(
        "web.enabled",
        "bool",
        False,
        "`service install` also installs and starts the web gateway (filamentctl-web.service)",
    ),
    _k(
        "web.listen",
        "str",
        "127.0.0.1:8780",
        "Web dashboard and HTTP API address; a non-loopback address needs web.token",
        validator=_listen,
    ),
    _k(
        "web.token",
        "str",
        "",
        "Token for the web API and login (control always needs it; reading too off loopback)",
        secret=True,
        validator=_web_token,
    ),
    _k(
        "web.tls_cert_file",
        "str",
        "",
        "PEM certificate (chain) for HTTPS on the web gateway (empty: plain HTTP)",
        validator=_absolute_path_or_empty,
    ),
    _k(
        "web.tls_key_file",
        "str",
        "",
        "PEM private key for web.tls_cert_file",
        validator=_absolute_path_or_empty,
    ),
    _k(
        "web.max_event_clients",
        "int",
        16,
        "Most live event streams (/api/events) open at once; more get 503",
        min=1,
        max=1000,
    ),
    _k(
        "web.session_hours",
        "int",
        168,
        "How long a browser login lasts",
        min=1,
        max=8760,
        unit="h",
    ),
    # mqtt: the Home Assistant gateway (`filamentctl mqtt`), a separate process
    _k(
        "mqtt.enabled",
        "bool",
        False,
        "Run the Home Assistant MQTT gateway: `service install` adds its unit filamentctl-mqtt",
    ),
    _k(
        "mqtt.url",
        "str",
        "mqtt://localhost:1883",
        "MQTT broker: mqtt://HOST[:PORT] (default port 1883) or mqtts://HOST[:PORT] (TLS, 8883)",
        validator=_mqtt_url,
    ),
    _k("mqtt.username", "str", "", "MQTT broker user (empty: connect anonymously)"),
    _k("mqtt.password", "str", "", "MQTT broker password", secret=True),
    _k(
        "mqtt.tls_ca_file",
        "str",
        "",
        "CA bundle to verify the broker's certificate with mqtts:// (empty: system CAs)",
        validator=_absolute_path_or_empty,
    ),
    _k(
        "mqtt.client_id",
        "str",
        "",
        "MQTT client id, unique on the broker (empty: filamentctl-HOSTNAME-BOX)",
        validator=_client_id,
    ),
    _k(
        "mqtt.discovery_prefix",
        "str",
        "homeassistant",
        "Home Assistant's MQTT discovery prefix (its MQTT integration's setting)",
        validator=_discovery_prefix,
    ),
    _k(
        "mqtt.base_topic",
        "str",
        "",
        "Topic under which the box publishes its state (empty: filamentctl/BOX)",
        validator=_topic_prefix,
    ),
    _k(
        "mqtt.qos",
        "int",
        1,
        "MQTT quality of service for state, availability and discovery messages",
        min=0,
        max=2,
    ),
    # notify
    _k(
        "notify.urls",
        "str",
        "",
        "Apprise URLs to notify (ntfy://, tgram://, json://...), comma or newline "
        "separated; empty: off",
        secret=True,
        validator=notify.urls_shape_problem,
        deep_validator=notify.urls_apprise_problem,
    ),
    _k(
        "notify.events",
        "str",
        notify.DEFAULT_EVENTS,
        "Events that notify (comma-separated, or all); the default is every kind",
        validator=notify.events_problem,
    ),
    _k(
        "notify.humidity_above",
        "float",
        0.0,
        "Desiccant alarm: notify when humidity stays above this for notify.humidity_for (0: off)",
        min=0,
        max=100,
        unit="%RH",
    ),
    _k(
        "notify.humidity_for",
        "float",
        3600.0,
        "How long the humidity must stay above notify.humidity_above before the alarm",
        min=1,
        max=7 * 86400,
        unit="s",
        duration=True,
    ),
    _k(
        "notify.quiet_hours",
        "str",
        "",
        "HH:MM-HH:MM local time when only safety notifications go out, the rest held (empty: none)",
        validator=notify.quiet_hours_problem,
    ),
    _k(
        "notify.min_interval",
        "float",
        900.0,
        "Least time between two notifications of one kind; those between go out as one summary",
        min=0,
        max=86400,
        unit="s",
        duration=True,
    ),
    # box
    _k(
        "box.volume_l",
        "float",
        50.0,
        "Inside volume of the box (a drying session's water estimate: this air × each vent's drop)",
        min=1,
        max=2000,
        unit="L",
    ),
    # dry
    _k(
        "dry.max_temp_c",
        "float",
        50.0,
        "Highest drying target (profiles above it run at it); always 5 °C or more below the cutoff",
        min=20,
        max=120,
        unit="°C",
    ),
    _k(
        "dry.plateau_window",
        "float",
        3600.0,
        "A drying session's absolute-humidity trend is measured over this long",
        min=600,
        max=86400,
        unit="s",
    ),
    _k(
        "dry.plateau_slope",
        "float",
        1.0,
        "Drying ends (after its minimum time) once that trend stays within ± this",
        min=0.01,
        max=100,
        unit="g/m³ per hour",
    ),
    _k(
        "dry.vent_every",
        "float",
        600.0,
        "During a drying session the fan vents the box once per this period, at its end",
        min=60,
        max=7200,
        unit="s",
    ),
    _k(
        "dry.vent_for",
        "float",
        60.0,
        "How long each drying vent runs the fan",
        min=5,
        max=3600,
        unit="s",
    ),
    _k(
        "dry.profiles",
        "json_object",
        {},
        "Your own drying profiles, or changes to the built-in ones (see docs/drying.md)",
        validator=drying.profiles_problem,
        example='{"PLA+": {"temp_c": 50, "min": "3h", "max": "6h"}}',
    ),
    # metrics, log
    _k(
        "metrics.listen",
        "str",
        "",
        "Prometheus /metrics endpoint as loopback host:port (empty: off)",
        validator=_loopback_listen,
    ),
    _k(
        "log.format",
        "choice",
        "text",
        "Log format on stderr: text (journald-friendly) or json lines",
        choices=("text", "json"),
    ),
    _k(
        "log.level",
        "choice",
        "info",
        "Least severe log level written",
        choices=("debug", "info", "warning", "error"),
    ),
)

SCHEMA: dict[str, Key] = {key.name: key for key in _KEYS}

# The per-backend key groups, e.g. "influxdb_v2" -> database.influxdb_v2.* (for `config list`).
DATABASE_BACKENDS: tuple[str, ...] = _DB_BACKENDS


def defaults() -> dict[str, Any]:
    """Every key with its default value (a fresh copy: mutable defaults are copied)."""
    return {name: _copy(key.default) for name, key in SCHEMA.items()}


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def key(name: str) -> Key:
    """The :class:`Key` for ``name``; ConfigError with a did-you-mean hint when unknown."""
    try:
        return SCHEMA[name]
    except KeyError:
        raise ConfigError(unknown_key_message(name)) from None


def number(settings: Mapping[str, object], name: str) -> float:
    """The numeric setting ``name`` of ``settings`` (typed, as loaded) as a float.

    Raises KeyError when it is missing and TypeError when it holds no number (the schema's
    validation rules that out for loaded settings).
    """
    value = settings[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _bad(k: Key, shown: str, allowed: str | None = None) -> ConfigError:
    return ConfigError(f"invalid value {shown} for {k.name}: expected {allowed or k.allowed()}")


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = re.sub(r"(://[^/@\s:]*):[^/@\s]*@", r"\1:***@", text)  # never echo a URL password
    if len(text) > 60:
        text = text[:57] + "..."
    return repr(text) if isinstance(value, str) else text


def parse(name: str, text: str) -> Any:
    """Turn CLI/env text into the key's typed value, validated.

    Bools accept true/false, yes/no, on/off, 1/0 (any case); numbers are decimal; choices are
    matched case-insensitively; ``json_object`` keys take a JSON object. Raises ConfigError
    (unknown key, or a one-line "invalid value ... expected ..."). The message for a secret key
    never repeats the value.
    """
    k = key(name)
    shown = "(hidden)" if k.secret else _shown(text)
    raw = text.strip()
    value: Any
    if k.type == "bool":
        low = raw.lower()
        if low in _TRUE:
            value = True
        elif low in _FALSE:
            value = False
        else:
            raise _bad(k, shown, "true or false (also yes/no, on/off, 1/0)")
    elif k.type == "int":
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise _bad(k, shown)
        value = int(raw)
    elif k.type == "float":
        if "_" in raw:  # Python's float() takes "1_0" as 10: a typo, not a number to store
            raise _bad(k, shown)
        try:
            value = float(raw)
        except ValueError:
            value = _duration(k, raw, shown)
    elif k.type == "choice":
        value = raw.lower()
    elif k.type == "json_object":
        try:
            value = json.loads(raw)
        except ValueError:
            raise _bad(k, shown) from None
    else:
        # Text is kept as given (a password may legitimately start or end with a space).
        value = text
    value = _check(k, value, shown)
    problem = _deep_problem(k, value)
    if problem is not None:
        raise _bad(k, shown, problem)
    return value


def _duration(k: Key, raw: str, shown: str) -> float:
    """A length of time in seconds may also be written 90s, 15m, 2h, 1h30m or 1d."""
    if not k.duration:
        raise _bad(k, shown)
    from filamentctl.core.duration import parse_duration

    try:
        return parse_duration(raw)
    except ValueError:
        raise _bad(k, shown) from None


def _deep_problem(k: Key, value: Any) -> str | None:
    if k.deep_validator is None or not value:
        return None
    if k.secret and isinstance(value, str) and value.startswith(VAULT_REF_PREFIX):
        return None  # checked where it is resolved
    return k.deep_validator(value)


def check(name: str, value: Any) -> Any:
    """Validate an already typed value (e.g. a CLI flag); returns it normalised (int -> float).

    Raises ConfigError naming the key, the bad value and what is allowed.
    """
    k = key(name)
    return _check(k, value, "(hidden)" if k.secret else _shown(value))


def _check(k: Key, value: Any, shown: str) -> Any:
    if k.type == "bool":
        if not isinstance(value, bool):
            raise _bad(k, shown)
    elif k.type in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(k, shown)
        if k.type == "int" and not isinstance(value, int):
            if not float(value).is_integer():
                raise _bad(k, shown)
            value = int(value)
        if k.type == "float":
            value = float(value)
            if not math.isfinite(value):
                raise _bad(k, shown)
        if (k.min is not None and value < k.min) or (k.max is not None and value > k.max):
            raise _bad(k, shown)
    elif k.type == "choice":
        if not isinstance(value, str) or value not in k.choices:
            raise _bad(k, shown)
    elif k.type == "json_object":
        if not isinstance(value, dict) or not all(isinstance(x, str) for x in value):
            raise _bad(k, shown)
        value = dict(value)
    else:
        if not isinstance(value, str) or "\x00" in value:
            raise _bad(k, shown)
        if k.secret and value.startswith(VAULT_REF_PREFIX):
            try:
                parse_vault_ref(value)
            except ConfigError as exc:
                raise _bad(k, shown, str(exc)) from None
            return value
    if k.validator is not None:
        problem = k.validator(value)
        if problem is not None:
            raise _bad(k, shown, problem)
    return value


def parse_vault_ref(text: str) -> tuple[str, str, str]:
    """``[vault:]mount/path#field`` -> (mount, path, field); ConfigError saying the form."""
    body = text[len(VAULT_REF_PREFIX) :] if text.startswith(VAULT_REF_PREFIX) else text
    m = _VAULT_REF.fullmatch(body.strip())
    if m is None or "//" in m.group(2):
        raise ConfigError(
            "a Vault reference is vault:MOUNT/PATH#FIELD, "
            "e.g. vault:secret/filamentctl/influx#token"
        )
    return m.group(1), m.group(2), m.group(3)


def format_value(value: Any) -> str:
    """A value as text a user could type back into ``config set`` (bools as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def masked(name: str, value: Any, reveal: bool) -> bool:
    """Whether ``value`` of key ``name`` is hidden wherever it is shown or written out: a secret
    with a value, unless the user asked to ``reveal`` it. An empty secret is shown (there is
    nothing to hide, and "not set" is worth seeing); a name not in the schema counts as secret.
    """
    k = SCHEMA.get(name)
    return (k is None or k.secret) and bool(value) and not reveal


def min_read_interval(sensor_type: str) -> float:
    """The shortest ``sensor.read_interval`` the sensor type allows (s)."""
    return sensors.min_read_interval(sensor_type)


# BCM GPIO 2 and 3 are the I2C bus (SDA, SCL) the BME280 sits on.
_I2C_PINS = (2, 3)


def validate(values: Mapping[str, Any], *, deep: bool = False) -> list[str]:
    """Cross-field problems, one line each naming the keys; empty when consistent.

    Keys missing from ``values`` take their defaults, so a partial mapping can be checked. With
    ``deep``, values are also put through their keys' costlier checks (e.g. Apprise's parser
    for ``notify.urls``), as ``config validate`` and ``config import`` do.
    """
    v = {**defaults(), **values}
    problems: list[str] = []
    if deep:
        for name, k in SCHEMA.items():
            problem = _deep_problem(k, v.get(name))
            if problem is not None:
                shown = "(hidden)" if k.secret else _shown(v[name])
                problems.append(str(_bad(k, shown, problem)))

    problems += heater_band_problems(
        v["heater.min_temp_c"], v["heater.max_temp_c"], v["heater.cutoff_temp_c"]
    )
    problems += fan_band_problems(v["fan.min_humidity"], v["fan.max_humidity"])

    relays = {r: v[f"{r}.gpio_pin"] for r in ("heater", "fan") if v[f"{r}.enabled"]}
    if len(relays) == 2 and relays["heater"] == relays["fan"]:
        problems.append(
            f"heater.gpio_pin and fan.gpio_pin are both GPIO {relays['heater']}; "
            "the heater and fan need different pins"
        )
    sensor = v["sensor.type"]
    for relay, pin in relays.items():
        if sensor in ("dht22", "dht11") and pin == v["sensor.gpio_pin"]:
            problems.append(
                f"{relay}.gpio_pin and sensor.gpio_pin are both GPIO {pin}; "
                f"the {sensor} data line and the {relay} relay need different pins"
            )
        if sensor == "bme280" and pin in _I2C_PINS:
            problems.append(
                f"{relay}.gpio_pin is GPIO {pin}, an I2C pin the bme280 sensor needs; "
                "choose another pin"
            )

    interval = v["sensor.read_interval"]
    least = sensors.min_read_interval(sensor)
    if interval < least:
        problems.append(
            f"sensor.read_interval ({_num(interval)} s) is below the {_num(least)} s minimum "
            f"of sensor.type {sensor}"
        )
    if not v["sensor.stale_after"] > interval:
        problems.append(
            f"sensor.stale_after ({_num(v['sensor.stale_after'])} s) must be longer than "
            f"sensor.read_interval ({_num(interval)} s)"
        )
    problems.extend(_heater_range_problems(v, sensor))
    problems.extend(_drying_problems(v, sensor))
    if v["heater.enabled"]:
        problems.extend(_heater_supervision_problems(v))
    if bool(v["web.tls_cert_file"]) != bool(v["web.tls_key_file"]):
        problems.append(
            "web.tls_cert_file and web.tls_key_file go together: set both for HTTPS, or neither"
        )
    if v["retry.backoff_base"] > v["retry.backoff_max"]:
        problems.append(
            f"retry.backoff_base ({_num(v['retry.backoff_base'])} s) must not exceed "
            f"retry.backoff_max ({_num(v['retry.backoff_max'])} s)"
        )
    if v["database.type"] == "prometheus":
        problems.extend(prometheus_problems(str(v["data.measurement"]), dict(v["data.tags"] or {})))
    return problems


#: While a heater is enabled, the sensor must be read at least this often ...
HEATER_MAX_READ_INTERVAL_S = 60.0
#: ... and a silent sensor must switch the heater off within this long.
HEATER_MAX_STALE_AFTER_S = 300.0


def _heater_range_problems(v: Mapping[str, Any], sensor: str) -> list[str]:
    """The heater's limits lie inside what the sensor can measure: a cutoff above the sensor's
    range could never fire (the hotter box could not be measured)."""
    top = sensors.temperature_range(sensor)[1]
    return [
        f"{name} ({_num(v[name])} °C) must be below {_num(top)} °C, the top of the {sensor} "
        "sensor's range: a hotter box could not be measured"
        for name in ("heater.cutoff_temp_c", "heater.max_temp_c")
        if v[name] >= top
    ]


def _drying_problems(v: Mapping[str, Any], sensor: str) -> list[str]:
    """A drying target the sensor can measure, and a vent schedule that leaves closed-box time
    for the humidity trend (two closed stretches per window at least)."""
    problems: list[str] = []
    top = sensors.temperature_range(sensor)[1]
    if v["dry.max_temp_c"] > top:
        problems.append(
            f"dry.max_temp_c ({_num(v['dry.max_temp_c'])} °C) must not be above {_num(top)} °C, "
            f"the top of the {sensor} sensor's range"
        )
    every, vent = v["dry.vent_every"], v["dry.vent_for"]
    if vent > every / 2:
        problems.append(
            f"dry.vent_for ({_num(vent)} s) must be at most half of dry.vent_every "
            f"({_num(every)} s): the box must stay closed long enough to measure"
        )
    if v["dry.plateau_window"] < 2 * every:
        problems.append(
            f"dry.plateau_window ({_num(v['dry.plateau_window'])} s) must be at least twice "
            f"dry.vent_every ({_num(every)} s)"
        )
    return problems


def _heater_supervision_problems(v: Mapping[str, Any]) -> list[str]:
    """Rules that keep an enabled heater supervised: readings come often enough."""
    problems: list[str] = []
    interval, stale = v["sensor.read_interval"], v["sensor.stale_after"]
    if interval > HEATER_MAX_READ_INTERVAL_S:
        problems.append(
            f"sensor.read_interval ({_num(interval)} s) must be at most "
            f"{_num(HEATER_MAX_READ_INTERVAL_S)} s while heater.enabled is true: the heater's "
            "safety rules act on readings"
        )
    if stale > HEATER_MAX_STALE_AFTER_S:
        problems.append(
            f"sensor.stale_after ({_num(stale)} s) must be at most "
            f"{_num(HEATER_MAX_STALE_AFTER_S)} s while heater.enabled is true: a silent sensor "
            "must switch the heater off within minutes"
        )
    if stale < 2 * interval:
        problems.append(
            f"sensor.stale_after ({_num(stale)} s) must be at least twice sensor.read_interval "
            f"({_num(interval)} s) while heater.enabled is true, so that one lost read does not "
            "count as a dead sensor"
        )
    return problems


def _suggest(name: str) -> list[str]:
    """Likely intended keys: close matches on the whole name, then on its last part."""
    names = list(SCHEMA)
    found = difflib.get_close_matches(name, names, n=3, cutoff=0.75)
    if not found:
        leaf = name.rsplit(".", 1)[-1]
        leaves: dict[str, list[str]] = {}
        for n in names:
            leaves.setdefault(n.rsplit(".", 1)[-1], []).append(n)
        for match in difflib.get_close_matches(leaf, list(leaves), n=3, cutoff=0.75):
            found.extend(leaves[match])
    return found[:3]


def _hint(suggestions: list[str]) -> str:
    if not suggestions:
        return "`filamentctl config list --all` shows every key"
    return "did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?"


def unknown_key_message(name: str) -> str:
    """One line refusing an unknown key, with a "did you mean" hint (difflib)."""
    return f"unknown configuration key '{name}'; {_hint(_suggest(name.strip().lower()))}"


def env_name(name: str) -> str:
    """The environment variable overriding ``name``: sensor.read_interval ->
    FILAMENTCTL_SENSOR__READ_INTERVAL (dotted parts upper-cased, joined by ``__``)."""
    return ENV_PREFIX + ENV_SEPARATOR.join(part.upper() for part in name.split("."))


def is_key_env(var: str) -> bool:
    """Whether an environment variable name is shaped like a key override."""
    return var.upper().startswith(ENV_PREFIX) and ENV_SEPARATOR in var[len(ENV_PREFIX) :]


def key_from_env(var: str) -> str:
    """The key an override variable names (the inverse of :func:`env_name`).

    Raises ConfigError with a did-you-mean hint (as variable names) when no such key exists.
    """
    name = ".".join(var[len(ENV_PREFIX) :].lower().split(ENV_SEPARATOR))
    if name in SCHEMA:
        return name
    suggestions = [env_name(s) for s in _suggest(name)]
    hint = (
        "did you mean " + " or ".join(suggestions) + "?"
        if suggestions
        else "unset it, or see `filamentctl config list --all` for the keys"
    )
    raise ConfigError(f"environment variable {var} names no configuration key ({name}); {hint}")
