"""The VictoriaMetrics backend: InfluxDB line protocol over HTTP.

Single node: ``POST <url>/write``. Cluster (``database.victoriametrics.tenant`` set, e.g. ``"42"``
or ``"42:7"``): ``POST <url>/insert/<tenant>/influx/write`` to vminsert. Optional basic auth
(``.username``/``.password``) or bearer token (``.token``), e.g. for vmauth in front.

VictoriaMetrics stores samples at millisecond precision and, unless started with
``-dedup.minScrapeInterval``, keeps every copy of a resent sample: a replay after an ambiguous
failure shows up as a duplicate sample at the same timestamp (harmless for graphs and averages over
time buckets, visible in raw exports). It also silently drops samples older than its retention.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from filamentctl.core.lineprotocol import LineEncoder
from filamentctl.core.outcome import ACKED, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks.http import (
    HttpClient,
    PipelinedLineWrites,
    TransportError,
    client_from_settings,
    encoder_from_settings,
)

log = logging.getLogger("filamentctl.sinks.victoriametrics")

# accountID or accountID:projectID, both 32-bit unsigned integers in VictoriaMetrics.
_TENANT = re.compile(r"^\d{1,10}(:\d{1,10})?$")


class VictoriaMetricsSink(PipelinedLineWrites):
    """Writes batches to VictoriaMetrics; see the module docstring for the URL layout."""

    name = "victoriametrics"

    def __init__(self, client: HttpClient, encoder: LineEncoder, tenant: str = "") -> None:
        self.client = client
        self.encoder = encoder
        self.tenant = tenant
        self.write_path = f"/insert/{tenant}/influx/write" if tenant else "/write"

    def open(self) -> None:
        """Check ``/health`` once and log what was found; never raises, never fatal."""
        # A cluster URL points at vminsert, which also answers /health.
        try:
            resp = self.client.request("GET", "/health")
        except TransportError as exc:
            log.warning("VictoriaMetrics not reachable yet (%s); will keep retrying", exc)
            return
        if resp.status == 200:
            log.info("VictoriaMetrics at %s is healthy", self.describe())
        else:
            log.warning(
                "VictoriaMetrics health check at %s answered HTTP %d", self.describe(), resp.status
            )

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """POST the batch as line protocol; 204 → ACK, everything else classified."""
        body = self.encoder.encode(readings)
        if not body:  # nothing representable (e.g. all values non-finite): nothing to send
            return ACKED
        return self.client.write(self.write_path, body)

    def describe(self) -> str:
        where = f"victoriametrics {self.client.describe()}"
        return f"{where} tenant={self.tenant}" if self.tenant else where

    def close(self) -> None:
        self.client.close()


def create(settings: Mapping[str, Any]) -> VictoriaMetricsSink:
    """Build the sink from ``database.victoriametrics.*``, ``data.*`` and ``database.*`` keys.

    Raises :class:`~filamentctl.errors.ConfigError` for a missing/invalid URL, an invalid tenant
    or a measurement/tag that cannot be written.
    """
    url = str(settings.get("database.victoriametrics.url") or "")
    tenant = str(settings.get("database.victoriametrics.tenant") or "").strip()
    if tenant and not _TENANT.match(tenant):
        raise ConfigError(
            f"database.victoriametrics.tenant {tenant!r} is not valid: "
            "use accountID or accountID:projectID (numbers), or leave it empty for a single node"
        )
    client = client_from_settings(
        settings,
        url,
        "database.victoriametrics.url",
        username=str(settings.get("database.victoriametrics.username") or ""),
        password=str(settings.get("database.victoriametrics.password") or ""),
        token=str(settings.get("database.victoriametrics.token") or ""),
    )
    return VictoriaMetricsSink(client, encoder_from_settings(settings), tenant)
