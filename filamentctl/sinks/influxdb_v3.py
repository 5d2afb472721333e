"""The InfluxDB 3 backend: line protocol to the v2-compatible write endpoint.

``POST <url>/api/v2/write?bucket=<database>&precision=ns`` with ``Authorization: Bearer <token>``.

Why the v2-compatible endpoint and not the native ``/api/v3/write_lp``: every InfluxDB 3 edition
(Core, Enterprise, Cloud Serverless, Cloud Dedicated) accepts it, the native one exists only on
Core/Enterprise; its status codes are the ones our delivery policy (docs/delivery.md) is written for
(400 bad data, 401/403, 413, 429/503 + Retry-After); and it is the one other servers speaking
InfluxDB's protocol accept too (VictoriaMetrics, which the test suite uses as the target because
no InfluxDB 3 server can be installed here). The native endpoint's extras (``accept_partial``,
``no_sync``) buy us nothing: a batch is accepted or refused as a whole, and an acknowledged
write must be durable.

Writes are idempotent: a point with the same table, tags and timestamp replaces the earlier one.
The database is created by the first write (InfluxDB 3 does this by itself), so ``open()`` only
checks that the server answers.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from filamentctl.core.lineprotocol import LineEncoder
from filamentctl.core.outcome import ACKED, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks.http import (
    HttpClient,
    TransportError,
    client_from_settings,
    encoder_from_settings,
)

log = logging.getLogger("filamentctl.sinks.influxdb_v3")


class InfluxDBv3Sink:
    """Writes batches to one InfluxDB 3 database; see the module docstring for the endpoint."""

    name = "influxdb_v3"

    def __init__(self, client: HttpClient, encoder: LineEncoder, database: str) -> None:
        self.client = client
        self.encoder = encoder
        self.database = database
        query = urllib.parse.urlencode({"bucket": database, "precision": "ns"})
        self.write_path = f"/api/v2/write?{query}"

    def open(self) -> None:
        """Check ``/health`` once and log what was found; never raises, never fatal."""
        try:
            resp = self.client.request("GET", "/health")
        except TransportError as exc:
            log.warning("InfluxDB 3 not reachable yet (%s); will keep retrying", exc)
            return
        if resp.status == 200:
            log.info("InfluxDB 3 at %s answers", self.describe())
        else:
            # InfluxDB 3 Core answers /health with 401 unless the token may read it: not an error.
            log.info("InfluxDB 3 health check at %s answered HTTP %d", self.describe(), resp.status)

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """POST the batch as line protocol; 2xx → ACK, everything else classified."""
        body = self.encoder.encode(readings)
        if not body:  # nothing representable (e.g. all values non-finite): nothing to send
            return ACKED
        return self.client.write(self.write_path, body)

    def describe(self) -> str:
        return f"influxdb_v3 {self.client.describe()} db={self.database}"

    def close(self) -> None:
        self.client.close()


def create(settings: Mapping[str, Any]) -> InfluxDBv3Sink:
    """Build the sink from ``database.influxdb_v3.*``, ``data.*`` and ``database.*`` keys.

    Raises :class:`~filamentctl.errors.ConfigError` for a missing/invalid URL or database name,
    an unreadable CA file, or a measurement/tag that cannot be written.
    """
    database = str(settings.get("database.influxdb_v3.database") or "")
    if not database:
        raise ConfigError("database.influxdb_v3.database is not set: name the database to write to")
    client = client_from_settings(
        settings,
        str(settings.get("database.influxdb_v3.url") or ""),
        "database.influxdb_v3.url",
        token=str(settings.get("database.influxdb_v3.token") or ""),
    )
    return InfluxDBv3Sink(client, encoder_from_settings(settings), database)
