"""The Prometheus backend: the latest reading pushed to a Pushgateway.

``PUT <url>/metrics/job/<job>[/<tag>/<value>...]`` with the text exposition format. The grouping
key is the job (``database.prometheus.job``) plus every ``data.tags`` entry, so two boxes with
different tags keep separate groups; ``PUT`` replaces the whole group, so pushing twice in a row
is harmless and a series that disappeared (pressure) does not linger.

A Pushgateway keeps one value per series, not a history: of each batch only the newest reading is
pushed (Prometheus scrapes the gateway and builds the history itself), and after an outage the
newest reading is pushed once it is back. Metric names (all gauges, ``<m>`` is
``data.measurement``)::

    <m>_temperature_c  <m>_temperature_f  <m>_humidity  <m>_dew_point_c
    <m>_absolute_humidity_g_m3  <m>_pressure_hpa (when the sensor has one)
    <m>_sample_time_seconds (the reading's UTC sample time)  <m>_seq (its sequence number)

These are the names VictoriaMetrics gives the same line-protocol fields, so dashboards work on
either. Sample timestamps are not sent with the values: the Pushgateway refuses pushed timestamps,
hence ``<m>_sample_time_seconds``. Optional basic auth (``.username``/``.password``) for a gateway
behind a proxy; TLS and timeouts as for every HTTP backend.
"""

from __future__ import annotations

import base64
import logging
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from filamentctl.core import schema
from filamentctl.core.lineprotocol import DEFAULT_MEASUREMENT
from filamentctl.core.outcome import ACKED, Outcome, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks.http import HttpClient, TransportError, client_from_settings

log = logging.getLogger("filamentctl.sinks.prometheus")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def grouping_path(job: str, labels: Mapping[str, str]) -> str:
    """The ``/metrics/job/...`` path for a job and grouping labels (sorted by name).

    A value that is empty or contains ``/`` uses the Pushgateway's ``@base64`` form, because a
    URL-escaped slash is still read as a path separator by many proxies.
    """
    parts = ["/metrics"]
    for name, value in [("job", job), *sorted(labels.items())]:
        if value == "" or "/" in value:
            encoded = base64.urlsafe_b64encode(value.encode()).decode("ascii") or "="
            parts += [f"{name}@base64", encoded]
        else:
            parts += [name, urllib.parse.quote(value, safe="")]
    return "/".join(parts)


def exposition(measurement: str, reading: Reading) -> bytes:
    """One reading as text exposition format: a gauge per field plus sample time and seq."""
    values: dict[str, float] = {
        name: value for name, value in reading.fields().items() if math.isfinite(value)
    }
    values["sample_time_seconds"] = reading.time_ns / 1e9
    values["seq"] = float(reading.seq)
    lines: list[str] = []
    for name, value in values.items():
        metric = f"{measurement}_{name}"
        lines.append(f"# TYPE {metric} gauge\n{metric} {value!r}\n")
    return "".join(lines).encode()


class PushgatewaySink:
    """Pushes the newest reading of each batch to one Pushgateway group."""

    name = "prometheus"

    def __init__(
        self, client: HttpClient, measurement: str, job: str, labels: Mapping[str, str]
    ) -> None:
        self.client = client
        self.measurement = measurement
        self.job = job
        self.labels = dict(labels)
        self.path = grouping_path(job, self.labels)

    def open(self) -> None:
        """Check ``/-/ready`` once and log what was found; never raises, never fatal."""
        try:
            resp = self.client.request("GET", "/-/ready")
        except TransportError as exc:
            log.warning("Pushgateway not reachable yet (%s); will keep retrying", exc)
            return
        if resp.status == 200:
            log.info("Pushgateway at %s is ready", self.describe())
        else:
            log.warning(
                "Pushgateway at %s answered /-/ready with HTTP %d", self.describe(), resp.status
            )

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """PUT the newest reading of the batch (older ones are superseded); 2xx → ACK."""
        if not readings:
            return ACKED
        newest = max(readings, key=lambda r: r.seq)
        try:
            resp = self.client.request(
                "PUT",
                self.path,
                exposition(self.measurement, newest),
                {"Content-Type": CONTENT_TYPE},
            )
        except TransportError as exc:
            return WriteResult(Outcome.RETRY, None, str(exc))
        return self.client.classify(resp)

    def describe(self) -> str:
        return f"prometheus pushgateway {self.client.describe()} job={self.job}"

    def close(self) -> None:
        self.client.close()


def create(settings: Mapping[str, Any]) -> PushgatewaySink:
    """Build the sink from ``database.prometheus.*``, ``data.*`` and ``database.*`` keys.

    Raises :class:`~filamentctl.errors.ConfigError` for a missing/invalid URL, an empty job, a
    measurement that is not a valid metric name prefix, or a tag name that is not a valid label.
    """
    measurement = str(settings.get("data.measurement") or DEFAULT_MEASUREMENT)
    tags = dict(settings.get("data.tags") or {})
    # The same check as config set / validate, so a stored value never fails here alone.
    found = schema.prometheus_problems(measurement, tags)
    if found:
        raise ConfigError(found[0])
    job = str(settings.get("database.prometheus.job") or "")
    if not job:
        raise ConfigError("database.prometheus.job is not set: name the Pushgateway job")
    client = client_from_settings(
        settings,
        str(settings.get("database.prometheus.url") or ""),
        "database.prometheus.url",
        username=str(settings.get("database.prometheus.username") or ""),
        password=str(settings.get("database.prometheus.password") or ""),
    )
    return PushgatewaySink(client, measurement, job, {k: str(v) for k, v in tags.items()})
