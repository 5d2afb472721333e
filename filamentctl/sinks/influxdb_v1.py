"""The InfluxDB 1.x backend: line protocol to ``/write?db=<db>&precision=ns``.

Speaks the 1.x HTTP API directly (InfluxDB 1.6/1.7 have no ``/api/v2/write``, so influxdb-client
cannot write to them). Credentials go in a basic-auth header, never in the query string, so they
stay out of server access logs and our messages. Writes are idempotent: a point with the same
measurement, tags and timestamp overwrites the earlier one, so replays leave no duplicates.

``open()`` creates the database (``CREATE DATABASE`` is a no-op when it exists); when that is not
allowed (a non-admin user) it logs once and carries on. A write that finds the database missing
(HTTP 404 "database not found") creates it and answers RETRY so the engine resends the batch.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from filamentctl.core.lineprotocol import LineEncoder
from filamentctl.core.outcome import ACKED, Outcome, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks.http import (
    HttpClient,
    PipelinedLineWrites,
    Response,
    TransportError,
    client_from_settings,
    encoder_from_settings,
    one_line,
)

log = logging.getLogger("filamentctl.sinks.influxdb_v1")


def quote_identifier(name: str) -> str:
    """An InfluxQL double-quoted identifier (backslash and double quote escaped)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxDBv1Sink(PipelinedLineWrites):
    """Writes batches to one InfluxDB 1.x database; see the module docstring."""

    name = "influxdb_v1"

    def __init__(self, client: HttpClient, encoder: LineEncoder, database: str) -> None:
        self.client = client
        self.encoder = encoder
        self.database = database
        query = urllib.parse.urlencode({"db": database, "precision": "ns"})
        self.write_path = f"/write?{query}"
        self._create_logged = False

    def open(self) -> None:
        """Create the database if the server lets us; log the outcome once, never raise."""
        self.create_database()

    def create_database(self) -> bool:
        """``CREATE DATABASE`` (idempotent). True when it exists afterwards; never raises."""
        form = urllib.parse.urlencode({"q": f"CREATE DATABASE {quote_identifier(self.database)}"})
        try:
            resp = self.client.request(
                "POST",
                "/query",
                form.encode(),
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
        except TransportError as exc:
            self._log_create_once(f"cannot create database {self.database!r} yet: {exc}")
            return False
        problem = _query_error(resp)
        if problem:
            self._log_create_once(
                f"cannot create database {self.database!r} on {self.client.describe()}: "
                f"{self.client.redact(problem)} (create it yourself or use an admin user)"
            )
            return False
        log.info("InfluxDB database %r ready on %s", self.database, self.client.describe())
        return True

    def _log_create_once(self, message: str) -> None:
        # open() runs at every start and a missing database is retried per batch: say it once.
        if not self._create_logged:
            self._create_logged = True
            log.warning("%s", message)

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """POST the batch; 204 → ACK, a missing database is created and the batch retried."""
        body = self.encoder.encode(readings)
        if not body:  # nothing representable (e.g. all values non-finite): nothing to send
            return ACKED
        return self._answered(self.client.write(self.write_path, body))

    def _answered(self, result: WriteResult) -> WriteResult:
        """A write's result, after creating the database when the server says it is missing."""
        if result.status == 404 and "database not found" in result.message:
            created = self.create_database()
            what = "created it" if created else "could not create it"
            return WriteResult(
                Outcome.RETRY,
                404,
                f"database {self.database!r} did not exist on {self.client.describe()}; "
                f"{what}, the batch will be resent",
            )
        return result

    def describe(self) -> str:
        return f"influxdb_v1 {self.client.describe()} db={self.database}"

    def close(self) -> None:
        self.client.close()


def _query_error(resp: Response) -> str | None:
    """The error of a ``/query`` answer, or None when it succeeded.

    InfluxDB 1.x answers statement errors with HTTP 200 and ``results[i].error``.
    """
    if resp.status != 200:
        return one_line(f"HTTP {resp.status}: {resp.error_text() or resp.reason}")
    try:
        data = json.loads(resp.body or b"{}")
    except ValueError:
        return "the server's answer is not JSON: is this InfluxDB 1.x?"
    if not isinstance(data, dict):
        return "the server's answer is not an InfluxDB /query result"
    if isinstance(data.get("error"), str):
        return one_line(data["error"])
    for result in data.get("results") or []:
        if isinstance(result, dict) and isinstance(result.get("error"), str):
            return one_line(result["error"])
    return None


def create(settings: Mapping[str, Any]) -> InfluxDBv1Sink:
    """Build the sink from ``database.influxdb_v1.*``, ``data.*`` and ``database.*`` keys.

    Raises :class:`~filamentctl.errors.ConfigError` for a missing URL or database name, or a
    measurement/tag that cannot be written.
    """
    database = str(settings.get("database.influxdb_v1.database") or "")
    if not database:
        raise ConfigError("database.influxdb_v1.database is not set: name the database to write to")
    client = client_from_settings(
        settings,
        str(settings.get("database.influxdb_v1.url") or ""),
        "database.influxdb_v1.url",
        username=str(settings.get("database.influxdb_v1.username") or ""),
        password=str(settings.get("database.influxdb_v1.password") or ""),
    )
    return InfluxDBv1Sink(client, encoder_from_settings(settings), database)
