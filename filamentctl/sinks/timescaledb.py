"""The TimescaleDB / PostgreSQL backend, over psycopg 3.

The table (``database.timescaledb.table``, default ``readings``; ``schema.table`` allowed) is
created when missing::

    time timestamptz NOT NULL, measurement text NOT NULL, tags jsonb NOT NULL,
    temperature_c, temperature_f, humidity, dew_point_c, absolute_humidity_g_m3,
    pressure_hpa double precision,
    UNIQUE (measurement, tags, time)

as a hypertable when the ``timescaledb`` extension can be used, otherwise as a plain table with an
index on ``time`` (said once in the log). ``measurement`` and ``tags`` are ``data.measurement`` and
``data.tags``: together they are the series identity.

Idempotent: the unique key over series and time plus ``ON CONFLICT DO NOTHING`` means a replayed
batch adds nothing. PostgreSQL keeps microseconds, so the sample time is truncated to whole µs.

Bulk: a batch is one ``COPY`` into a session temporary table and one ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING``, in one transaction — a few round trips per batch however large, not one per
reading.

Connection: ``database.timescaledb.url`` is a libpq URI; the password comes from
``database.timescaledb.password`` (never from the URL in logs or messages). ``database.timeout``
bounds connecting and every statement. TLS follows libpq: an ``sslmode`` in the URL wins; otherwise
``database.tls_ca_file`` turns on ``sslmode=verify-full`` against that CA. One connection, reopened
after a failure.

psycopg costs ~250 ms to import, so it is imported inside the methods that need it.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from filamentctl.core.lineprotocol import DEFAULT_MEASUREMENT
from filamentctl.core.outcome import ACKED, Outcome, WriteResult
from filamentctl.core.reading import FIELDS, Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks.http import one_line

log = logging.getLogger("filamentctl.sinks.timescaledb")

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
# SQLSTATE classes/codes that mean "your credentials or rights", not "try again later".
_AUTH_STATES = frozenset({"28000", "28P01", "42501"})
_TEMP_TABLE = "filamentctl_batch"


def sample_time(time_ns: int) -> _dt.datetime:
    """The UTC datetime of a sample, truncated to whole microseconds (exact integer arithmetic)."""
    return _EPOCH + _dt.timedelta(microseconds=time_ns // 1000)


class TimescaleDBSink:
    """Writes batches to one PostgreSQL table; see the module docstring for the schema."""

    name = "timescaledb"

    def __init__(
        self,
        conninfo: Mapping[str, Any],
        table: str,
        measurement: str,
        tags: Mapping[str, str],
        *,
        timeout: float = 10.0,
    ) -> None:
        self._conninfo = dict(conninfo)
        self._secrets = [str(v) for k, v in self._conninfo.items() if k == "password" and v]
        self.table = table
        self.measurement = measurement
        self.tags_json = json.dumps(dict(tags), sort_keys=True, separators=(",", ":"))
        self.timeout = timeout
        self._conn: Any = None
        self._table_ready = False
        self._plain_table_logged = False
        self.hypertable: bool | None = None  # known after the table was ensured

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg

        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop_connection()
        ms = int(self.timeout * 1000)
        ours = f"-c statement_timeout={ms} -c lock_timeout={ms}"
        # The URL's own connect_timeout/application_name win; our options are added to its own.
        params: dict[str, Any] = {
            "connect_timeout": max(int(self.timeout + 0.999), 1),
            "application_name": "filamentctl",
            **self._conninfo,
            "options": f"{self._conninfo.get('options', '')} {ours}".strip(),
        }
        conn = psycopg.connect(**params)
        # Session temp table for COPY; emptied by every commit.
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP_TABLE} ("
            "time timestamptz NOT NULL, temperature_c double precision,"
            " temperature_f double precision, humidity double precision,"
            " dew_point_c double precision, absolute_humidity_g_m3 double precision,"
            " pressure_hpa double precision) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        self._conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing the PostgreSQL connection failed", exc_info=True)

    def _table_sql(self) -> Any:
        from psycopg import sql

        return sql.Identifier(*self.table.split("."))

    def ensure_table(self) -> None:
        """Create the table (hypertable when possible) and its unique key; raises psycopg errors."""
        from psycopg import sql

        conn = self._connect()
        table = self._table_sql()
        base = self.table.split(".")[-1]
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "time timestamptz NOT NULL, measurement text NOT NULL,"
                    " tags jsonb NOT NULL DEFAULT '{{}}',"
                    " temperature_c double precision, temperature_f double precision,"
                    " humidity double precision, dew_point_c double precision,"
                    " absolute_humidity_g_m3 double precision, pressure_hpa double precision,"
                    " CONSTRAINT {} UNIQUE (measurement, tags, time))"
                ).format(table, sql.Identifier(f"{base}_series_time_key"))
            )
        self.hypertable = self._make_hypertable(conn, table)
        if not self.hypertable:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (time DESC)").format(
                        sql.Identifier(f"{base}_time_idx"), table
                    )
                )
            if not self._plain_table_logged:
                self._plain_table_logged = True
                log.info(
                    "the timescaledb extension is not available on %s: %s is a plain "
                    "PostgreSQL table with a time index",
                    self.describe(),
                    self.table,
                )
        self._table_ready = True

    def _make_hypertable(self, conn: Any, table: Any) -> bool:
        """Turn the table into a hypertable if the extension can be used; False otherwise."""
        import psycopg

        row = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        conn.commit()
        if row is None:
            return False
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute(
                    "SELECT create_hypertable(%s::regclass, 'time', if_not_exists => TRUE,"
                    " migrate_data => TRUE)",
                    (table.as_string(conn),),
                )
        except psycopg.Error as exc:
            log.info("cannot use the timescaledb extension (%s)", one_line(str(exc)))
            return False
        return True

    # -- the Sink protocol -------------------------------------------------------------------

    def open(self) -> None:
        """Connect and create the table; never raises (a failure is retried at the next write)."""
        try:
            self.ensure_table()
        except Exception as exc:
            self._drop_connection()
            log.warning(
                "cannot prepare %s yet (%s); will keep retrying", self.describe(), self._text(exc)
            )

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """COPY the batch and insert it, skipping rows already stored; never raises."""
        import psycopg

        if not readings:
            return ACKED
        try:
            if not self._table_ready:
                self.ensure_table()
            self._insert(readings)
        except psycopg.errors.UndefinedTable as exc:
            # Dropped behind our back: create it again and have the batch resent.
            self._table_ready = False
            return WriteResult(Outcome.RETRY, None, self._text(exc))
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            self._rollback()
            return WriteResult(Outcome.REJECT, None, self._text(exc))
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None) or _connect_sqlstate(exc)
            self._drop_connection()
            outcome = Outcome.AUTH if state in _AUTH_STATES else Outcome.RETRY
            return WriteResult(outcome, None, self._text(exc))
        except Exception as exc:  # e.g. a DNS failure inside libpq surfaces as OSError
            self._drop_connection()
            return WriteResult(Outcome.RETRY, None, self._text(exc))
        return ACKED

    def _insert(self, readings: Sequence[Reading]) -> None:
        from psycopg import sql

        conn = self._connect()
        columns = ", ".join(FIELDS)
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY {_TEMP_TABLE} (time, {columns}) FROM STDIN") as copy:
                for reading in readings:
                    fields = reading.fields()
                    copy.write_row(
                        (sample_time(reading.time_ns), *(fields.get(name) for name in FIELDS))
                    )
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (time, measurement, tags, " + columns + ")"
                    " SELECT time, %s, %s::jsonb, "
                    + columns
                    + " FROM "
                    + _TEMP_TABLE
                    + " ON CONFLICT DO NOTHING"
                ).format(self._table_sql()),
                (self.measurement, self.tags_json),
            )

    def _rollback(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
        except Exception:
            self._drop_connection()

    def _text(self, exc: BaseException) -> str:
        from filamentctl.core.redact import redact

        return redact(
            one_line(f"{self.describe()}: {str(exc) or type(exc).__name__}"), self._secrets
        )

    def describe(self) -> str:
        info = self._conninfo
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
        return f"timescaledb {where}/{info.get('dbname', '')} table={self.table}"

    def close(self) -> None:
        self._drop_connection()


def _connect_sqlstate(exc: BaseException) -> str | None:
    # A refused login comes as OperationalError without sqlstate; libpq's text says why.
    text = str(exc).lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return "28P01"
    if "no pg_hba.conf entry" in text or "permission denied" in text:
        return "28000"
    return None


def _local(host: str) -> bool:
    """A Unix socket directory or a loopback address: no network to protect."""
    return not host or host.startswith("/") or host in ("localhost", "127.0.0.1", "::1")


def create(settings: Mapping[str, Any]) -> TimescaleDBSink:
    """Build the sink from ``database.timescaledb.*``, ``data.*`` and ``database.*`` keys.

    Raises :class:`~filamentctl.errors.ConfigError` for a URL libpq cannot parse, an empty table
    name or an unreadable CA file. Does not connect.
    """
    import os

    from psycopg.conninfo import conninfo_to_dict

    url = str(settings.get("database.timescaledb.url") or "").strip()
    if not url:
        raise ConfigError("database.timescaledb.url is not set: give a postgresql:// URL")
    try:
        conninfo: dict[str, Any] = dict(conninfo_to_dict(url))
    except Exception as exc:
        raise ConfigError(f"database.timescaledb.url is not a valid libpq URI: {exc}") from exc
    # Resolved by the service before the sink is built (a `vault:` reference: service/secrets.py).
    password = str(settings.get("database.timescaledb.password") or "").strip()
    if password:
        conninfo["password"] = password
    ca_file = str(settings.get("database.tls_ca_file") or "")
    verify = bool(settings.get("database.tls_verify", True))
    if ca_file:
        if not os.access(ca_file, os.R_OK):
            raise ConfigError(
                f"database.tls_ca_file {ca_file!r} cannot be read: point it at a readable PEM file"
            )
        conninfo.setdefault("sslrootcert", ca_file)
        conninfo.setdefault("sslmode", "verify-full" if verify else "require")
    elif not _local(conninfo.get("host", "")):
        # libpq's default ("prefer") neither checks the certificate nor insists on TLS: a
        # password could go out in clear. Across a network, verify like the HTTP backends do
        # (the URL's own sslmode, e.g. ?sslmode=disable, still wins).
        conninfo.setdefault("sslmode", "verify-full" if verify else "require")
        if verify:
            conninfo.setdefault("sslrootcert", "system")
    table = str(settings.get("database.timescaledb.table") or "").strip()
    if not table or any(not part for part in table.split(".")) or table.count(".") > 1:
        raise ConfigError(
            f"database.timescaledb.table {table!r} is not a table name (use name or schema.name)"
        )
    return TimescaleDBSink(
        conninfo,
        table,
        str(settings.get("data.measurement") or DEFAULT_MEASUREMENT),
        {str(k): str(v) for k, v in dict(settings.get("data.tags") or {}).items()},
        timeout=float(settings.get("database.timeout", 10.0)),
    )
