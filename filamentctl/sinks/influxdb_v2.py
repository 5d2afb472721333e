"""The InfluxDB 2.x backend: influxdb-client's ``WriteApi`` used synchronously.

Our delivery engine does the batching, retrying and backlog keeping, so the client is used in
``SYNCHRONOUS`` mode with its own retries off (``retries=False``): its batching mode buffers in
memory only and loses data at exit (docs/backends.md). Each batch is our own line protocol (the same
bytes as the 1.x and VictoriaMetrics backends), written with nanosecond precision to
``POST /api/v2/write?org=<org>&bucket=<bucket>&precision=ns``. A point with the same measurement,
tags and timestamp overwrites the earlier one, so replays leave no duplicates.

TLS is verified by default (``database.tls_verify``), optionally against ``database.tls_ca_file``;
``database.timeout`` bounds every request; the client's urllib3 pool keeps the connection alive.

``influxdb_client`` costs ~330 ms to import, so it is imported in :func:`create` only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from filamentctl.core.lineprotocol import LineEncoder
from filamentctl.core.outcome import ACKED, Outcome, WriteResult, classify_http, parse_retry_after
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks.http import encoder_from_settings, one_line, redact_url

log = logging.getLogger("filamentctl.sinks.influxdb_v2")


class InfluxDBv2Sink:
    """Writes batches to one InfluxDB 2.x bucket through a synchronous influxdb-client."""

    name = "influxdb_v2"

    def __init__(
        self,
        client: Any,
        encoder: LineEncoder,
        *,
        url: str,
        org: str,
        bucket: str,
        token: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.client = client
        self.encoder = encoder
        self.url = redact_url(url)
        self.org = org
        self.bucket = bucket
        self._token = token
        self._clock = clock
        self._write_api = client.write_api(write_options=SYNCHRONOUS)

    def open(self) -> None:
        """Ask the server whether it is up and log the answer; never raises, never fatal.

        Buckets are not created: that needs an all-access token, and a write token is what a
        sensor box should hold. A missing bucket shows up as HTTP 404 in ``status``.
        """
        try:
            healthy = bool(self.client.ping())
        except Exception as exc:  # whatever the client raises, open() is best effort
            log.warning("InfluxDB 2.x at %s not reachable yet (%s)", self.url, self._redact(exc))
            return
        if healthy:
            log.info("InfluxDB 2.x at %s answers; writing to bucket %r", self.url, self.bucket)
        else:
            log.warning("InfluxDB 2.x at %s did not answer /ping; will keep retrying", self.url)

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """Send the batch; 2xx → ACK, an HTTP error classified, no answer at all → RETRY."""
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        body = self.encoder.encode(readings)
        if not body:  # nothing representable (e.g. all values non-finite): nothing to send
            return ACKED
        try:
            self._write_api.write(
                bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            return self._classify(exc)
        except Exception as exc:  # urllib3/socket/TLS errors: no HTTP answer came back
            return WriteResult(
                Outcome.RETRY, None, one_line(f"cannot reach {self.url}: {self._redact(exc)}")
            )
        return ACKED

    def _classify(self, exc: Any) -> WriteResult:
        status = int(exc.status or 0)
        headers = exc.headers or {}
        retry_after = parse_retry_after(headers.get("Retry-After"), now_s=self._clock())
        detail = _error_text(exc.body) or str(exc.reason or "")
        message = one_line(f"HTTP {status} from {self.url}: {self._redact(detail)}")
        if status == 0:  # the client's own failure without an HTTP answer
            return WriteResult(Outcome.RETRY, None, message)
        return classify_http(status, message, retry_after)

    def _redact(self, exc: object) -> str:
        from filamentctl.core.redact import redact

        return redact(str(exc), [self._token] if self._token else [])

    def describe(self) -> str:
        return f"influxdb_v2 {self.url} org={self.org} bucket={self.bucket}"

    def close(self) -> None:
        try:
            self._write_api.close()
            self.client.close()
        except Exception:  # closing must never take the service down
            log.debug("closing the influxdb client failed", exc_info=True)


def _error_text(body: Any) -> str:
    """The ``message`` of an InfluxDB 2.x JSON error body, or the body itself."""
    import json

    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return text


def create(settings: Mapping[str, Any]) -> InfluxDBv2Sink:
    """Build the sink from ``database.influxdb_v2.*``, ``data.*`` and ``database.*`` keys.

    Raises :class:`~filamentctl.errors.ConfigError` for a missing URL or bucket, a missing org, an
    unusable CA file, or a measurement/tag that cannot be written.
    """
    import os

    from influxdb_client.client.influxdb_client import InfluxDBClient

    url = str(settings.get("database.influxdb_v2.url") or "").strip()
    if not url.startswith(("http://", "https://")):
        raise ConfigError("database.influxdb_v2.url must be an http:// or https:// URL")
    bucket = str(settings.get("database.influxdb_v2.bucket") or "")
    if not bucket:
        raise ConfigError("database.influxdb_v2.bucket is not set: name the bucket to write to")
    org = str(settings.get("database.influxdb_v2.org") or "")
    if not org:
        raise ConfigError("database.influxdb_v2.org is not set: give the organisation name or ID")
    # Resolved by the service before the sink is built (a `vault:` reference: service/secrets.py).
    token = str(settings.get("database.influxdb_v2.token") or "").strip()
    ca_file = str(settings.get("database.tls_ca_file") or "")
    if ca_file and not os.access(ca_file, os.R_OK):
        raise ConfigError(
            f"database.tls_ca_file {ca_file!r} cannot be read: point it at a readable PEM file"
        )
    timeout_ms = int(float(settings.get("database.timeout", 10.0)) * 1000)
    client = InfluxDBClient(
        url=url,
        token=token,
        org=org,
        timeout=timeout_ms,
        verify_ssl=bool(settings.get("database.tls_verify", True)),
        ssl_ca_cert=ca_file or None,
        retries=False,  # the delivery engine retries, with backoff and a persistent backlog
        connection_pool_maxsize=1,  # one batch in flight at a time: one kept-alive connection
    )
    return InfluxDBv2Sink(
        client, encoder_from_settings(settings), url=url, org=org, bucket=bucket, token=token
    )
