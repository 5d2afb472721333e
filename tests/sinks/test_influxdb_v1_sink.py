"""The InfluxDB 1.x sink against a real InfluxDB 1.6 (and the fault proxy for odd answers)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.outcome import Outcome
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.service.delivery import DeliveryWorker
from filamentctl.sinks import influxdb_v1
from filamentctl.sinks.base import PipelinedSink, Sink, create_sink
from filamentctl.store.history import History
from tests.faultproxy import FaultProxy, respond
from tests.servers import InfluxV1Server, count_by_time, free_port, http
from tests.sinks import _common as common

pytestmark = pytest.mark.servers


def readings(n: int, *, pressure: bool = True) -> list[Reading]:
    # Nanosecond timestamps that are not whole milliseconds: InfluxDB keeps them exactly.
    start = time.time_ns() - 60 * 1_000_000_000
    return common.readings(n, start_ns=start, step_ns=1_000_000_007, pressure=pressure)


def settings(url: str, db: str, **extra: Any) -> dict[str, Any]:
    keys = {"url": url, "database": db}
    return common.sink_settings("influxdb_v1", keys, tags={"box": "dryer 1"}, timeout=5.0, **extra)


def test_open_creates_the_database(influxdb_v1_server: InfluxV1Server, unique_name: str) -> None:
    sink: Sink = create_sink(settings(influxdb_v1_server.url, unique_name))
    assert unique_name not in influxdb_v1_server.databases()
    sink.open()
    assert unique_name in influxdb_v1_server.databases()
    sink.open()  # already there: still fine
    sink.close()


def test_points_land_with_ns_timestamps_all_fields_and_tags(
    influxdb_v1_server: InfluxV1Server, unique_name: str
) -> None:
    sink = influxdb_v1.create(settings(influxdb_v1_server.url, unique_name))
    sink.open()
    batch = readings(3)
    assert sink.write(batch).ok
    rows = influxdb_v1_server.rows(unique_name, "environment")
    assert [(row.time_ns, row.fields) for row in rows] == [(r.time_ns, r.fields()) for r in batch]
    assert all(row.tags == {"box": "dryer 1"} for row in rows)


def test_awkward_measurement_and_tags_round_trip_through_the_server(
    influxdb_v1_server: InfluxV1Server, unique_name: str
) -> None:
    tags = {"box name": "dryer 1,shelf=2", "path": r"C:\spool", "q": '"quoted"'}
    sink = influxdb_v1.create(
        settings(
            influxdb_v1_server.url,
            unique_name,
            **{"data.measurement": "filament env,x=1", "data.tags": tags},
        )
    )
    sink.open()
    batch = readings(1, pressure=False)
    assert sink.write(batch).ok
    rows = influxdb_v1_server.rows(unique_name, "filament env,x=1")
    assert [(row.time_ns, row.tags, row.fields) for row in rows] == [
        (batch[0].time_ns, tags, batch[0].fields())
    ]


def test_resending_a_batch_leaves_one_point_per_reading(
    influxdb_v1_server: InfluxV1Server, unique_name: str
) -> None:
    sink = influxdb_v1.create(settings(influxdb_v1_server.url, unique_name))
    sink.open()
    batch = readings(4)
    assert sink.write(batch).ok
    assert sink.write(batch[1:3]).ok  # an ambiguous failure replayed part of it
    assert sink.write(batch).ok
    points = influxdb_v1_server.points(unique_name, "environment")
    assert count_by_time(points) == {r.time_ns: 1 for r in batch}


def test_a_missing_database_is_created_and_the_batch_retried(
    influxdb_v1_server: InfluxV1Server, unique_name: str
) -> None:
    sink = influxdb_v1.create(settings(influxdb_v1_server.url, unique_name))
    batch = readings(2)
    # No open(): e.g. someone dropped the database while the service was running.
    result = sink.write(batch)
    assert (result.outcome, result.status) == (Outcome.RETRY, 404)
    assert "did not exist" in result.message and "created it" in result.message
    assert unique_name in influxdb_v1_server.databases()
    assert sink.write(batch).ok
    assert len(influxdb_v1_server.points(unique_name, "environment")) == 2


def test_a_non_finite_value_is_left_out_and_the_rest_lands(
    influxdb_v1_server: InfluxV1Server, unique_name: str
) -> None:
    sink = influxdb_v1.create(settings(influxdb_v1_server.url, unique_name))
    sink.open()
    reading = Reading(time.time_ns(), 1, 21.0, 45.0, math.nan)
    assert sink.write([reading]).ok
    [(_, fields)] = influxdb_v1_server.points(unique_name, "environment")
    assert fields == {k: v for k, v in reading.fields().items() if k != "pressure_hpa"}


def test_credentials_go_in_a_basic_auth_header_not_the_url(unique_name: str) -> None:
    with FaultProxy() as proxy:
        sink = influxdb_v1.create(
            settings(
                proxy.url,
                unique_name,
                **{
                    "database.influxdb_v1.username": "writer",
                    "database.influxdb_v1.password": "s3cret-pw",
                },
            )
        )
        assert sink.write(readings(1)).ok
        seen = proxy.seen[0]
        assert seen.route == "/write"
        assert seen.query == {"db": [unique_name], "precision": ["ns"]}
        assert seen.headers["Authorization"].startswith("Basic ")
        assert "s3cret-pw" not in sink.describe() and unique_name in sink.describe()


def test_wrong_port_is_retry_with_a_one_line_message(unique_name: str) -> None:
    sink = influxdb_v1.create(settings(f"http://127.0.0.1:{free_port()}", unique_name))
    sink.open()  # best effort: never raises
    result = sink.write(readings(1))
    assert result.outcome is Outcome.RETRY
    assert "\n" not in result.message
    assert "cannot reach" in result.message and "connection refused" in result.message


def test_open_logs_once_when_the_database_cannot_be_created(
    unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FaultProxy() as proxy:
        proxy.script(
            respond(200, '{"results":[{"statement_id":0,"error":"requires admin privilege"}]}'),
            respond(403, '{"error":"forbidden"}'),
        )
        sink = influxdb_v1.create(settings(proxy.url, unique_name))
        with caplog.at_level(logging.WARNING, logger="filamentctl.sinks.influxdb_v1"):
            sink.open()
            sink.open()
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1
        assert "requires admin privilege" in warnings[0]
        assert proxy.seen[0].body.startswith(b"q=CREATE+DATABASE+")


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (400, {}, Outcome.REJECT, None),
        (401, {}, Outcome.AUTH, None),
        (403, {}, Outcome.AUTH, None),
        (413, {}, Outcome.SPLIT, None),
        (429, {"Retry-After": "7"}, Outcome.RETRY, 7.0),
        (503, {}, Outcome.RETRY, None),
    ],
)
def test_server_answers_are_classified(
    influxdb_v1_server: InfluxV1Server,
    unique_name: str,
    status: int,
    headers: dict[str, str],
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    with FaultProxy(influxdb_v1_server.url) as proxy:
        sink = influxdb_v1.create(settings(proxy.url, unique_name))
        sink.open()  # forwarded: creates the database
        proxy.script(respond(status, '{"error":"scripted"}', headers))
        result = sink.write(readings(1))
        assert (result.outcome, result.status, result.retry_after_s) == (
            outcome,
            status,
            retry_after,
        )
        assert f"HTTP {status}" in result.message and "scripted" in result.message


def test_a_real_parse_error_from_the_server_is_reject(
    influxdb_v1_server: InfluxV1Server, unique_name: str
) -> None:
    # A field type conflict is the realistic 400: the measurement already holds a string field
    # (in the same shard, hence a recent timestamp).
    influxdb_v1_server.create_database(unique_name)
    status, _ = http(
        "POST",
        f"{influxdb_v1_server.url}/write?db={unique_name}",
        f'environment,box=dryer\\ 1 temperature_c="warm" {time.time_ns()}\n'.encode(),
    )
    assert status == 204
    sink = influxdb_v1.create(settings(influxdb_v1_server.url, unique_name))
    result = sink.write(readings(1))
    assert (result.outcome, result.status) == (Outcome.REJECT, 400)
    assert "field type conflict" in result.message


def test_missing_database_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="database.influxdb_v1.database"):
        influxdb_v1.create(settings("http://127.0.0.1:8086", ""))
    with pytest.raises(ConfigError, match="database.influxdb_v1.url"):
        influxdb_v1.create(settings("", "db"))
    with pytest.raises(ConfigError, match="database.influxdb_v1.url"):
        influxdb_v1.create(settings("ftp://example.org", "db"))


def test_a_backlog_drains_pipelined_into_a_database_that_did_not_exist(
    influxdb_v1_server: InfluxV1Server,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The drain's pipelined path (batch N+1 encoded while N is stored): a database dropped
    under the running service is created at the first answer, the batch resent, and every
    reading lands exactly once."""
    config = settings(
        influxdb_v1_server.url,
        unique_name,
        **{
            "writer.batch_size": 10,
            "writer.flush_interval": 3600.0,
            "retry.backoff_base": 0.01,
            "retry.backoff_max": 0.05,
            "retry.alert_threshold": 0,
        },
    )
    sink = create_sink(config)
    assert isinstance(sink, PipelinedSink)
    history = History(tmp_path / "history.db", max_backlog=0, retention_days=0)
    history.open()
    try:
        batch = [replace(r, seq=r.seq + 1) for r in readings(35)]  # seqs start at 1
        for r in batch:
            history.add(r)
        history.commit()
        worker = DeliveryWorker(history, sink, config, rng=lambda: 0.0)
        with caplog.at_level(logging.WARNING):
            assert worker.flush(30)["ok"]
        assert "did not exist" in caplog.text and "created it" in caplog.text
        points = influxdb_v1_server.points(unique_name, "environment")
        assert count_by_time(points) == {r.time_ns: 1 for r in batch}
    finally:
        sink.close()
        history.close()
