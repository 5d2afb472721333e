"""The TimescaleDB backend against a real PostgreSQL 15 (without the timescaledb extension)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from filamentctl.core.outcome import Outcome
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks import timescaledb
from filamentctl.sinks.base import create_sink
from tests.servers import PostgresServer, free_port
from tests.sinks import _common as common

pytestmark = pytest.mark.servers


def readings(n: int, *, pressure: bool = True) -> list[Reading]:
    # Nanosecond timestamps that are not whole microseconds: PostgreSQL keeps µs.
    start = time.time_ns() - 3600 * 10**9 + 123
    return common.readings(
        n,
        start_ns=start,
        step_ns=200_000_000,
        first_seq=1,
        per_degree=100,
        per_percent=10,
        pressure_rises=False,
        pressure=pressure,
    )


def settings(pg: PostgresServer, db: str, table: str = "readings", **extra: Any) -> dict[str, Any]:
    keys = {"url": pg.url(db), "table": table}
    tags = {"box": "dryer 1", "site": "shop"}
    return common.sink_settings("timescaledb", keys, tags=tags, timeout=5.0, **extra)


def rows(pg: PostgresServer, db: str, table: str = "readings") -> list[tuple[int, str, float, str]]:
    out = pg.psql(
        "SELECT (extract(epoch FROM time) * 1000000)::bigint, measurement, temperature_c,"
        f' tags::text FROM "{table}" ORDER BY time',
        db,
    )
    result = []
    for line in out.splitlines():
        us, measurement, temp, tags = line.split("|")
        result.append((int(us), measurement, float(temp), tags))
    return result


def test_the_table_is_created_as_a_plain_table_with_a_time_index_and_said_once(
    postgres_server: PostgresServer, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = postgres_server.create_database(unique_name)
    sink = create_sink(settings(postgres_server, db))
    with caplog.at_level(logging.INFO, logger="filamentctl.sinks.timescaledb"):
        sink.open()
        sink.open()
        assert sink.write(readings(2)).ok
    said = [r for r in caplog.records if "timescaledb extension is not available" in r.message]
    assert len(said) == 1
    indexes = postgres_server.psql(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'readings'", db
    )
    assert '("time" DESC)' in indexes or "(time DESC)" in indexes
    assert "UNIQUE" in indexes and 'measurement, tags, "time"' in indexes
    sink.close()


def test_readings_land_at_their_sample_time_with_fields_tags_and_measurement(
    postgres_server: PostgresServer, unique_name: str
) -> None:
    db = postgres_server.create_database(unique_name)
    sink = timescaledb.create(settings(postgres_server, db))
    batch = readings(3, pressure=False)
    assert sink.write(batch).ok
    stored = rows(postgres_server, db)
    assert [(us, temp) for us, _, temp, _ in stored] == [
        (r.time_ns // 1000, r.fields()["temperature_c"]) for r in batch
    ]
    assert {m for _, m, _, _ in stored} == {"environment"}
    assert {t for _, _, _, t in stored} == {'{"box": "dryer 1", "site": "shop"}'}
    pressure = postgres_server.psql("SELECT count(pressure_hpa) FROM readings", db)
    assert pressure.strip() == "0"
    sink.close()


def test_replaying_the_same_batch_twice_leaves_one_row_per_reading(
    postgres_server: PostgresServer, unique_name: str
) -> None:
    db = postgres_server.create_database(unique_name)
    sink = timescaledb.create(settings(postgres_server, db))
    batch = readings(20)
    assert sink.write(batch).ok
    assert sink.write(batch).ok
    assert sink.write(batch[5:12]).ok  # an overlapping part, as after a split
    other = timescaledb.create(settings(postgres_server, db))  # as after a restart
    assert other.write(batch).ok
    assert len(rows(postgres_server, db)) == 20
    sink.close()
    other.close()


def test_a_backlog_goes_in_bulk_not_one_round_trip_per_reading(
    postgres_server: PostgresServer, unique_name: str
) -> None:
    db = postgres_server.create_database(unique_name)
    table = f"bulk_{unique_name}"
    sink = timescaledb.create(settings(postgres_server, db, table))
    sink.open()
    # PostgreSQL logs every statement of this database's new sessions: count them.
    postgres_server.psql(f"ALTER DATABASE \"{db}\" SET log_statement = 'all'")
    sink.close()
    sink = timescaledb.create(settings(postgres_server, db, table))
    sink.open()  # connects and checks the table: not part of the count
    start = postgres_server.log_path.stat().st_size
    assert sink.write(readings(500)).ok
    with open(postgres_server.log_path, "rb") as log:
        log.seek(start)
        text = log.read().decode(errors="replace")
    statements = [line for line in text.splitlines() if "statement:" in line or "execute" in line]
    assert len(rows(postgres_server, db, table)) == 500
    assert len([s for s in statements if table in s]) == 1, statements
    assert len(statements) <= 10, statements
    sink.close()


def test_an_outage_is_retry_and_the_next_write_reconnects(
    postgres_server: PostgresServer, unique_name: str
) -> None:
    db = postgres_server.create_database(unique_name)
    sink = timescaledb.create(settings(postgres_server, db))
    batch = readings(4)
    assert sink.write(batch[:2]).ok
    postgres_server.stop()
    try:
        down = sink.write(batch[2:])
    finally:
        postgres_server.start()
    assert down.outcome is Outcome.RETRY and down.message
    assert sink.write(batch[2:]).ok
    assert len(rows(postgres_server, db)) == 4
    sink.close()


def test_a_table_dropped_behind_our_back_is_created_again(
    postgres_server: PostgresServer, unique_name: str
) -> None:
    db = postgres_server.create_database(unique_name)
    sink = timescaledb.create(settings(postgres_server, db))
    batch = readings(2)
    assert sink.write(batch[:1]).ok
    postgres_server.psql("DROP TABLE readings", db)
    assert sink.write(batch[1:]).outcome is Outcome.RETRY
    assert sink.write(batch[1:]).ok
    assert len(rows(postgres_server, db)) == 1
    sink.close()


def test_no_server_is_retry_and_the_password_never_shows(unique_name: str) -> None:
    sink = timescaledb.create(
        {
            "database.timescaledb.url": f"postgresql://filament@127.0.0.1:{free_port()}/x",
            "database.timescaledb.password": "pg-s3cret",
            "database.timescaledb.table": "readings",
            "database.timeout": 2.0,
        }
    )
    sink.open()
    result = sink.write(readings(1))
    assert result.outcome is Outcome.RETRY
    assert "pg-s3cret" not in result.message and "pg-s3cret" not in sink.describe()


@pytest.mark.parametrize("table", ["", "a.b.c", ".x"])
def test_a_bad_table_name_is_a_config_error(table: str) -> None:
    with pytest.raises(ConfigError, match="table"):
        timescaledb.create(
            {"database.timescaledb.url": "postgresql://h/db", "database.timescaledb.table": table}
        )


def test_sample_time_truncates_to_whole_microseconds() -> None:
    assert timescaledb.sample_time(1_700_000_000_123_456_789).isoformat() == (
        "2023-11-14T22:13:20.123456+00:00"
    )


@pytest.mark.parametrize(
    ("url", "verify", "sslmode"),
    [
        ("postgresql://u@db.example/filament", True, "verify-full"),
        ("postgresql://u@db.example/filament", False, "require"),
        ("postgresql://u@db.example/filament?sslmode=disable", True, "disable"),
        ("postgresql://u@127.0.0.1/filament", True, None),
    ],
)
def test_across_a_network_tls_is_required_and_verified_by_default(
    url: str, verify: bool, sslmode: str | None
) -> None:
    """libpq's default would neither check the certificate nor insist on TLS."""
    from filamentctl.core import schema

    values = schema.defaults()
    values["database.timescaledb.url"] = url
    values["database.tls_verify"] = verify
    sink = timescaledb.create(values)
    assert sink._conninfo.get("sslmode") == sslmode
