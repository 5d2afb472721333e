"""The pipelined backlog drain: batch N+1 is encoded while N is in flight, acks stay in order.

The VictoriaMetrics sink talks real HTTP over real sockets to the test fault proxy (which answers
204 unless scripted otherwise and records every request body), so what went over the wire and in
which order is observable; one test runs against a real VictoriaMetrics.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.lineprotocol import LineEncoder
from filamentctl.core.reading import Reading
from filamentctl.service.delivery import DeliveryWorker
from filamentctl.sinks import victoriametrics
from filamentctl.sinks.base import PipelinedSink
from filamentctl.store.history import History
from tests.faultproxy import FaultProxy, drop, respond
from tests.helpers import wait_until
from tests.servers import MS, VictoriaMetricsServer

BATCH = 10
T0 = 1_795_459_598_000_000_000


def settings(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "database.type": "victoriametrics",
        "database.victoriametrics.url": url,
        "data.measurement": "environment",
        "data.tags": {"box": "dryer 1"},
        "database.timeout": 5.0,
        "writer.batch_size": BATCH,
        "writer.flush_interval": 3600.0,
        "retry.backoff_base": 0.01,
        "retry.backoff_max": 0.05,
        "retry.alert_threshold": 0,
        **overrides,
    }


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.db", max_backlog=0, retention_days=0)
    h.open()
    yield h
    h.close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as p:  # no upstream: answers 204 unless scripted
        yield p


def commit(history: History, n: int, *, pressure: bool = True) -> list[Reading]:
    out = []
    for i in range(n):
        seq = history.next_seq()
        r = Reading(
            T0 + seq * 1000 * MS,
            seq,
            20.0 + (i % 97) / 7.0,
            30.0 + (i % 61) / 3.0,
            1000.0 + i / 9.0 if pressure else None,
        )
        history.add(r)
        out.append(r)
    history.commit()
    return out


def worker_for(history: History, url: str, **overrides: Any) -> DeliveryWorker:
    sink = victoriametrics.create(settings(url, **overrides))
    assert isinstance(sink, PipelinedSink)
    return DeliveryWorker(history, sink, settings(url, **overrides), rng=lambda: 0.0)


def encoded(readings: list[Reading]) -> bytes:
    return LineEncoder("environment", {"box": "dryer 1"}).encode(readings)


def batches(readings: list[Reading], size: int = BATCH) -> list[list[Reading]]:
    return [readings[i : i + size] for i in range(0, len(readings), size)]


def test_a_pipelined_flush_sends_every_batch_once_in_order_with_the_same_bytes(
    history: History, proxy: FaultProxy
) -> None:
    readings = commit(history, 5 * BATCH + 3)
    worker = worker_for(history, proxy.url)
    cursors: list[int] = []
    result = worker.flush(
        30, progress=lambda done, total: cursors.append(history.cursor("victoriametrics"))
    )
    assert result == {
        "delivered": len(readings),
        "remaining": 0,
        "ok": True,
        "error": None,
        "dead_lettered": 0,
    }
    assert [s.body for s in proxy.seen] == [encoded(b) for b in batches(readings)]
    # One keep-alive connection for the whole drain.
    assert len({s.connection for s in proxy.seen}) == 1
    # Acks strictly in order: after each batch the cursor stands exactly at its last reading.
    assert cursors[1:] == [b[-1].seq for b in batches(readings)]
    assert history.counters()["written"] == len(readings)


def test_a_413_in_the_middle_of_a_drain_splits_that_batch_before_anything_newer_is_sent(
    history: History, proxy: FaultProxy
) -> None:
    readings = commit(history, 4 * BATCH)
    proxy.script(respond(204), respond(413, "request entity too large"))
    worker = worker_for(history, proxy.url)
    cursors: list[int] = []
    result = worker.flush(
        30, progress=lambda done, total: cursors.append(history.cursor("victoriametrics"))
    )
    assert result["ok"] and result["delivered"] == len(readings)
    first, second, *rest = batches(readings)
    older, newer = second[: BATCH // 2], second[BATCH // 2 :]
    assert [s.body for s in proxy.seen] == [
        encoded(first),
        encoded(second),  # answered 413
        encoded(older),
        encoded(newer),
        *(encoded(b) for b in rest),
    ]
    # Progress comes once per batch (the split one counts once, when both halves are in).
    assert cursors[1:] == [b[-1].seq for b in batches(readings)]
    assert history.counters()["written"] == len(readings)
    assert history.deadletter_list() == []


def test_bad_data_in_the_middle_goes_to_dead_letter_and_the_drain_goes_on(
    history: History, proxy: FaultProxy
) -> None:
    readings = commit(history, 4 * BATCH)
    proxy.script(respond(204), respond(204), respond(400, '{"error": "cannot parse"}'))
    worker = worker_for(history, proxy.url)
    result = worker.flush(30)
    assert result["ok"]
    assert (result["delivered"], result["dead_lettered"]) == (3 * BATCH, BATCH)
    assert [s.body for s in proxy.seen] == [encoded(b) for b in batches(readings)]
    (entry,) = history.deadletter_list()
    assert (entry["first_seq"], entry["last_seq"]) == (readings[20].seq, readings[29].seq)
    assert history.backlog_count("victoriametrics") == 0


def test_a_transient_failure_mid_drain_resends_that_batch_before_any_newer_one(
    history: History, proxy: FaultProxy
) -> None:
    readings = commit(history, 4 * BATCH)
    proxy.script(respond(204), respond(503, "busy"), drop())
    worker = worker_for(history, proxy.url)
    result = worker.flush(30)
    assert result["ok"] and result["delivered"] == len(readings)
    first, second, *rest = batches(readings)
    assert [s.body for s in proxy.seen] == [
        encoded(first),
        encoded(second),  # 503
        encoded(second),  # connection dropped without an answer
        encoded(second),
        *(encoded(b) for b in rest),
    ]
    assert history.counters()["written"] == len(readings)


def test_an_auth_failure_mid_drain_stops_with_the_rest_kept(
    history: History, proxy: FaultProxy
) -> None:
    readings = commit(history, 4 * BATCH)
    proxy.script(respond(204), respond(401, "unauthorized"))
    worker = worker_for(history, proxy.url)
    result = worker.flush(30)
    assert not result["ok"]
    assert "401" in result["error"]
    assert (result["delivered"], result["remaining"]) == (BATCH, 3 * BATCH)
    assert len(proxy.seen) == 2  # nothing newer went out after the refusal
    assert history.cursor("victoriametrics") == readings[BATCH - 1].seq


def test_the_delivery_thread_drains_a_backlog_in_full_batches_then_the_rest(
    history: History, proxy: FaultProxy
) -> None:
    readings = commit(history, 6 * BATCH + 4, pressure=False)
    worker = worker_for(history, proxy.url)
    worker.start()
    try:
        wait_until(
            lambda: history.backlog_count("victoriametrics") == 0, timeout=20, what="the drain"
        )
    finally:
        assert worker.stop(5)
    writes = [s.body for s in proxy.seen if s.route == "/write"]
    assert writes == [encoded(b) for b in batches(readings)]


def test_a_pipelined_drain_stores_every_reading_in_victoriametrics(
    history: History, victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    readings = commit(history, 3 * BATCH + 5)
    overrides = {"data.tags": {"run": unique_name}}
    worker = worker_for(history, victoriametrics_server.url, **overrides)
    assert worker.flush(30)["ok"]
    points = victoriametrics_server.points(
        "environment", {"run": unique_name}, expected=len(readings)
    )
    assert points == [(r.time_ns, r.fields()) for r in readings]


class AckFailsOnce(History):
    """The real history, except that one chosen ack fails as a full disk would make it fail.

    Fault injection, not a mock of behaviour: SQLite offers no way to fail exactly one commit
    while the next batch is already on the wire.
    """

    fail_at_call = 2
    calls = 0

    def ack(self, sink: str, last_seq: int, count: int) -> None:
        self.calls += 1
        if self.calls == self.fail_at_call:
            raise sqlite3.OperationalError("database or disk is full")
        super().ack(sink, last_seq, count)


def test_an_ack_that_cannot_be_saved_abandons_the_batch_in_flight_and_loses_nothing(
    tmp_path: Path, proxy: FaultProxy
) -> None:
    history = AckFailsOnce(tmp_path / "history.db", max_backlog=0, retention_days=0)
    history.open()
    try:
        readings = commit(history, 4 * BATCH)
        worker = worker_for(history, proxy.url)
        with pytest.raises(sqlite3.OperationalError):
            worker.flush(30)
        # Batch 1 is acked; batch 2 was acknowledged by the server but its ack was not saved,
        # and batch 3 was already sent: both stay in the backlog and are simply sent again.
        assert history.cursor("victoriametrics") == readings[BATCH - 1].seq
        result = worker.flush(30)
        assert result["ok"] and result["delivered"] == 3 * BATCH
        first, second, third, fourth = (encoded(b) for b in batches(readings))
        # The abandoned connection carried 1-3; a fresh one resent 2 and 3, then 4.
        by_connection: dict[int, list[bytes]] = {}
        for seen in proxy.seen:
            by_connection.setdefault(seen.connection, []).append(seen.body)
        assert list(by_connection.values()) == [[first, second, third], [second, third, fourth]]
        assert history.counters()["written"] == len(readings)
    finally:
        history.close()
