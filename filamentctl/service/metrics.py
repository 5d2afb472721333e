"""The Prometheus ``/metrics`` endpoint (``metrics.listen``; off by default, loopback only).

Every scrape calls ``collect()`` — the service's ``status()`` dict — and turns it into metrics, so
the endpoint shows exactly what ``filamentctl status --json`` shows and keeps no state of its own.
Names and values follow Prometheus' conventions (``promtool check metrics`` is clean): base units
only, so relative humidity is a 0–1 ratio, pressure is in pascals and there is no Fahrenheit
series (``celsius * 1.8 + 32`` in PromQL). Series (see docs/backends.md for the full list)::

    filamentctl_up                        1 when the status could be collected
    filamentctl_build_info{version}       1
    filamentctl_uptime_seconds
    filamentctl_readings_total            readings taken since start
    filamentctl_temperature_celsius
    filamentctl_relative_humidity_ratio   0-1
    filamentctl_dew_point_celsius  filamentctl_absolute_humidity_grams_per_cubic_meter
    filamentctl_pressure_pascals          (only with a pressure sensor)
    filamentctl_reading_timestamp_seconds  filamentctl_reading_age_seconds
    filamentctl_sensor_health{state}      1 for the current of OK/DEGRADED/FAULT, else 0
    filamentctl_sensor_errors_total  filamentctl_sensor_rejected_total
    filamentctl_relay_on{relay}  filamentctl_relay_enabled{relay}   (heater, fan)
    filamentctl_delivery_written_total{backend}  ..._dropped_total  ..._rejected_total
    filamentctl_delivery_errors_total{backend}   failed attempts (when status has errors_total)
    filamentctl_delivery_backlog_readings{backend}  filamentctl_delivery_dead_letter_entries
    filamentctl_delivery_connected{backend}  filamentctl_delivery_consecutive_failures
    filamentctl_delivery_oldest_unsent_age_seconds  filamentctl_delivery_alert{backend}
    filamentctl_delivery_last_success_timestamp_seconds{backend}

Metrics are unauthenticated, so only loopback addresses are accepted: put a reverse proxy with
authentication in front to scrape from elsewhere. prometheus-client is imported only when the
endpoint is started.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import HTTPServer
from typing import Any

log = logging.getLogger("filamentctl.metrics")

_LISTEN = re.compile(r"(\[[0-9a-fA-F:]+\]|[^:\[\]]+):(\d{1,5})")
HEALTH_STATES = ("OK", "DEGRADED", "FAULT")
RELAYS = ("heater", "fan")

# status()["reading"] key -> (metric name, help, factor from the status value to base units)
_READING_GAUGES = (
    ("temperature_c", "filamentctl_temperature_celsius", "Latest temperature", 1.0),
    (
        "humidity",
        "filamentctl_relative_humidity_ratio",
        "Latest relative humidity, 0-1 (multiply by 100 for %RH)",
        0.01,
    ),
    ("dew_point_c", "filamentctl_dew_point_celsius", "Dew point of the latest reading", 1.0),
    (
        "absolute_humidity_g_m3",
        "filamentctl_absolute_humidity_grams_per_cubic_meter",
        "Absolute humidity of the latest reading",
        1.0,
    ),
    ("pressure_hpa", "filamentctl_pressure_pascals", "Latest air pressure", 100.0),
    ("age_s", "filamentctl_reading_age_seconds", "How old the latest reading is", 1.0),
)
# status()["storage"] counter key -> (metric name without _total, help)
_DELIVERY_COUNTERS = (
    ("written", "filamentctl_delivery_written", "Readings the backend acknowledged"),
    ("dropped", "filamentctl_delivery_dropped", "Readings dropped by the backlog cap"),
    ("rejected", "filamentctl_delivery_rejected", "Readings the backend refused (dead-lettered)"),
    ("errors_total", "filamentctl_delivery_errors", "Failed delivery attempts since start"),
)
_DELIVERY_GAUGES = (
    ("backlog", "filamentctl_delivery_backlog_readings", "Readings waiting to be delivered"),
    ("dead_letter", "filamentctl_delivery_dead_letter_entries", "Batches in the dead-letter table"),
    (
        "consecutive_failures",
        "filamentctl_delivery_consecutive_failures",
        "Failed attempts since the last success",
    ),
    (
        "oldest_unsent_age_s",
        "filamentctl_delivery_oldest_unsent_age_seconds",
        "Age of the oldest reading not yet delivered",
    ),
)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` → (host, port). Port 0 picks a free port.

    Raises ``ValueError`` unless the host is a loopback address or ``localhost``.
    """
    m = _LISTEN.fullmatch(listen.strip())
    if not m or not 0 <= int(m.group(2)) <= 65535:
        raise ValueError(f"metrics.listen {listen!r} is not host:port")
    host = m.group(1).strip("[]")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"metrics.listen {listen!r}: /metrics is unauthenticated, so it listens on "
                "loopback only (127.0.0.1, [::1] or localhost)"
            )
    return ("127.0.0.1" if host == "localhost" else host), int(m.group(2))


class MetricsServer:
    """A running ``/metrics`` endpoint; ``stop()`` closes it (idempotent)."""

    def __init__(self, server: HTTPServer, thread: threading.Thread, host: str) -> None:
        self._server: HTTPServer | None = server
        self._thread = thread
        self.host = host
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._thread.join(5.0)


def start_metrics_server(listen: str, collect: Callable[[], Mapping[str, object]]) -> MetricsServer:
    """Serve ``/metrics`` on ``listen`` (loopback host:port) from ``collect()`` on each scrape.

    Raises ``ValueError`` for a non-loopback or malformed address and ``OSError`` when the port
    cannot be bound (in use, no permission). The server runs on a daemon thread.
    """
    from prometheus_client import exposition
    from prometheus_client.registry import CollectorRegistry

    host, port = parse_listen(listen)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(collect))
    server, thread = exposition.start_http_server(port, addr=host, registry=registry)
    thread.name = "metrics"
    handle = MetricsServer(server, thread, host)
    log.info("Prometheus metrics on %s", handle.url)
    return handle


class StatusCollector:
    """A prometheus-client collector that reads the service's status dict on each scrape."""

    def __init__(self, collect: Callable[[], Mapping[str, object]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            status = self._collect()
        except Exception:  # a scrape must answer even while the service is stopping
            log.debug("status for /metrics failed", exc_info=True)
            status = None
        up = GaugeMetricFamily("filamentctl_up", "1 when the service status could be collected")
        up.add_metric([], 0.0 if status is None else 1.0)
        yield up
        if status is not None:
            yield from metric_families(status)


def metric_families(status: Mapping[str, Any]) -> Iterator[Any]:
    """The metric families for one ``status()`` dict (missing parts are simply left out)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    info = GaugeMetricFamily("filamentctl_build_info", "filamentctl version", labels=["version"])
    info.add_metric([str(status.get("version", ""))], 1.0)
    yield info
    yield from _gauge("filamentctl_uptime_seconds", "Seconds since start", status.get("uptime_s"))
    readings = CounterMetricFamily("filamentctl_readings", "Readings taken since start")
    readings.add_metric([], float(status.get("readings_total") or 0))
    yield readings

    reading = status.get("reading") or {}
    for key, name, help_, factor in _READING_GAUGES:
        value = reading.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield from _gauge(name, help_, value * factor)
    if reading.get("time_ns") is not None:
        yield from _gauge(
            "filamentctl_reading_timestamp_seconds",
            "UTC sample time of the latest reading",
            int(reading["time_ns"]) / 1e9,
        )

    sensor = status.get("sensor") or {}
    if sensor:
        health = GaugeMetricFamily(
            "filamentctl_sensor_health", "1 for the sensor's current health", labels=["state"]
        )
        for state in HEALTH_STATES:
            health.add_metric([state], 1.0 if sensor.get("health") == state else 0.0)
        yield health
        for key, help_ in (("errors", "Sensor read errors"), ("rejected", "Readings rejected")):
            family = CounterMetricFamily(f"filamentctl_sensor_{key}", help_)
            family.add_metric([], float(sensor.get(key) or 0))
            yield family

    on = GaugeMetricFamily("filamentctl_relay_on", "1 when the relay is on", labels=["relay"])
    enabled = GaugeMetricFamily(
        "filamentctl_relay_enabled", "1 when the relay is configured", labels=["relay"]
    )
    for relay in RELAYS:
        relay_state = status.get(relay)
        if isinstance(relay_state, dict):
            on.add_metric([relay], 1.0 if relay_state.get("on") else 0.0)
            enabled.add_metric([relay], 1.0 if relay_state.get("enabled", True) else 0.0)
    yield on
    yield enabled

    storage = status.get("storage") or {}
    if storage:
        yield from _delivery(storage)


def _delivery(storage: dict[str, Any]) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    backend = [str(storage.get("backend", ""))]
    for key, name, help_ in _DELIVERY_COUNTERS:
        if key not in storage:  # errors_total: only once the service reports it
            continue
        counter = CounterMetricFamily(name, help_, labels=["backend"])
        counter.add_metric(backend, float(storage.get(key) or 0))
        yield counter
    for key, name, help_ in _DELIVERY_GAUGES:
        value = storage.get(key)
        if key == "oldest_unsent_age_s" and value is None:
            value = 0.0  # caught up
        if value is not None:
            gauge = GaugeMetricFamily(name, help_, labels=["backend"])
            gauge.add_metric(backend, float(value))
            yield gauge
    connected = GaugeMetricFamily(
        "filamentctl_delivery_connected",
        "1 when the last delivery reached the backend",
        labels=["backend"],
    )
    connected.add_metric(backend, 1.0 if storage.get("connected") else 0.0)
    yield connected
    alert = GaugeMetricFamily(
        "filamentctl_delivery_alert",
        "1 while a delivery or auth alert is raised",
        labels=["backend"],
    )
    alert.add_metric(backend, 1.0 if storage.get("alert") else 0.0)
    yield alert
    last = _epoch_s(storage.get("last_success"))
    if last is not None:
        gauge = GaugeMetricFamily(
            "filamentctl_delivery_last_success_timestamp_seconds",
            "When the backend last acknowledged a batch",
            labels=["backend"],
        )
        gauge.add_metric(backend, last)
        yield gauge


def _gauge(name: str, help_: str, value: Any) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        yield GaugeMetricFamily(name, help_, value=float(value))


def _epoch_s(iso: Any) -> float | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        return _dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
