"""``writer.batch_size`` and ``writer.flush_interval`` trigger delivery when due, whatever the
commit interval; ``flush`` reports on the backlog it was asked to deliver.

Delivery only ever sends committed readings, and the history commits every
``storage.commit_interval`` (10 s by default). So the sampler asks the delivery worker after every
reading whether its uncommitted readings make a batch due, and commits at once when they do.

End to end: a real ``filamentctl run --simulate`` delivering to a capture server on loopback (a
real HTTP server speaking VictoriaMetrics' ``/write``: it answers 204 and records each request and
when it arrived). The engine-level tests use a real worker thread and real SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.outcome import ACKED, Outcome, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.service.delivery import DeliveryWorker
from filamentctl.store.history import History
from tests.faultproxy import FaultProxy, Seen
from tests.helpers import ServiceProcess, wait_until

T0 = 1_780_000_000 * 1_000_000_000
READ_INTERVAL_S = 0.2


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingSink:
    """Records each batch (as seqs); ``during_write`` runs inside every write."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.during_write: Any = None
        self.answer: WriteResult = ACKED

    def open(self) -> None:
        pass

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        self.batches.append([r.seq for r in readings])
        if self.during_write is not None:
            self.during_write()
        return self.answer

    def describe(self) -> str:
        return "recording sink"

    def close(self) -> None:
        pass


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.db", max_backlog=0, retention_days=0)
    h.open()
    yield h
    h.close()


def worker_for(
    history: History, sink: RecordingSink, clock: Clock, *, batch: int, flush_s: float
) -> DeliveryWorker:
    settings = {
        "writer.batch_size": batch,
        "writer.flush_interval": flush_s,
        "retry.backoff_base": 30.0,
        "retry.backoff_max": 60.0,
        "retry.alert_threshold": 0,
        "retry.alert_command": "",
    }
    return DeliveryWorker(history, sink, settings, clock=clock, rng=lambda: 0.0)


def buffer(history: History, n: int) -> None:
    """Take ``n`` readings as the sampler does (buffered, not committed)."""
    for i in range(n):
        history.add(Reading(T0 + i, history.next_seq(), 20.0, 40.0))


def commit(history: History, n: int) -> None:
    buffer(history, n)
    history.commit()


# -- when the sampler commits early -------------------------------------------------------------


def test_pending_readings_that_fill_a_batch_ask_for_a_commit(history: History) -> None:
    clock = Clock()
    worker = worker_for(history, RecordingSink(), clock, batch=3, flush_s=30.0)
    worker.start()
    try:
        assert worker.wants_commit(0, None, clock.now) is False  # nothing to commit
        assert worker.wants_commit(2, clock.now, clock.now) is False  # not a batch yet
        assert worker.wants_commit(3, clock.now, clock.now) is True  # a full batch
        commit(history, 2)  # two committed, waiting for the interval
        assert worker.wants_commit(1, clock.now, clock.now) is True  # 2 + 1 fill the batch
    finally:
        worker.stop(1.0)


def test_the_flush_interval_counts_from_the_oldest_pending_reading(history: History) -> None:
    clock = Clock()
    worker = worker_for(history, RecordingSink(), clock, batch=1000, flush_s=2.0)
    worker.start()
    try:
        taken_at = clock.now
        clock.now += 1.9
        assert worker.wants_commit(10, taken_at, clock.now) is False
        clock.now += 0.1
        assert worker.wants_commit(10, taken_at, clock.now) is True
    finally:
        worker.stop(1.0)


def test_no_early_commit_while_backing_off_or_with_a_full_batch_waiting(
    history: History,
) -> None:
    clock = Clock()
    sink = RecordingSink()
    sink.answer = WriteResult(Outcome.RETRY, None, "connection refused")
    worker = worker_for(history, sink, clock, batch=3, flush_s=2.0)
    worker.start()
    try:
        commit(history, 3)
        worker.wake()
        wait_until(lambda: worker.status()["consecutive_failures"] == 1, what="a failed write")
        # Backing off for 30 s: during an outage only the commit interval commits.
        assert worker.wants_commit(5, clock.now - 60, clock.now) is False
        clock.now += 31
        # The backoff is over, but a full batch is already committed and waiting to go.
        assert worker.wants_commit(5, clock.now - 60, clock.now) is False
    finally:
        worker.stop(0.2)


def test_a_commit_made_because_the_interval_ran_out_is_sent_at_once(history: History) -> None:
    """The worker times a partial batch from when its oldest reading was taken, not from the
    commit: otherwise an early commit would wait another flush interval."""
    clock = Clock()
    sink = RecordingSink()
    worker = worker_for(history, sink, clock, batch=1000, flush_s=2.0)
    worker.start()
    try:
        taken_at = clock.now
        buffer(history, 10)
        clock.now += 2.0
        history.commit()
        worker.committed(history.last_committed_seq(), taken_at)
        wait_until(lambda: sink.batches, what="the partial batch", timeout=5)
        assert sink.batches == [list(range(1, 11))]
    finally:
        worker.stop(1.0)


# -- flush reports on the backlog it was asked for ----------------------------------------------


def test_readings_committed_while_a_flush_runs_are_not_counted_as_remaining(
    history: History,
) -> None:
    """``flush`` delivers the backlog as it stood when it started; the sampler keeps committing
    meanwhile, and those readings go out with the next batch as usual."""
    sink = RecordingSink()
    sink.during_write = lambda: commit(history, 1)  # the sampler commits during every write
    worker = worker_for(history, sink, Clock(), batch=100, flush_s=30.0)
    commit(history, 250)
    result = worker.flush(10.0)
    assert result == {
        "delivered": 250,
        "remaining": 0,
        "ok": True,
        "error": None,
        "dead_lettered": 0,
    }
    assert [len(b) for b in sink.batches] == [100, 100, 50]
    assert history.backlog_count(sink.name) == 3  # committed during the flush, still queued


# -- end to end: a real service and a capture server --------------------------------------------


def _service(url: str, **settings: str) -> ServiceProcess:
    env = {
        "FILAMENTCTL_SENSOR__TYPE": "simulated",
        "FILAMENTCTL_SENSOR__READ_INTERVAL": str(READ_INTERVAL_S),
        "FILAMENTCTL_DATABASE__TYPE": "victoriametrics",
        "FILAMENTCTL_DATABASE__VICTORIAMETRICS__URL": url,
        # storage.commit_interval stays at its default (10 s): that is the point.
        **{f"FILAMENTCTL_{k}": v for k, v in settings.items()},
    }
    return ServiceProcess(env=env)


def _first_write(capture: FaultProxy, svc: ServiceProcess) -> Seen:
    def writes() -> list[Seen]:
        assert svc.proc is not None and svc.proc.poll() is None, svc.log()[-3000:]
        return [s for s in capture.seen if s.route == "/write"]

    found: list[Seen] = wait_until(writes, timeout=20, interval=0.05, what="the first write")
    return found[0]


def _timestamps(request: Seen) -> list[int]:
    """The sample timestamps (ns) of the line-protocol points in a request."""
    return [int(line.rsplit(" ", 1)[1]) for line in request.body.decode().splitlines() if line]


def test_a_full_batch_is_delivered_without_waiting_for_the_commit_interval() -> None:
    with FaultProxy() as capture:
        svc = _service(capture.url, WRITER__BATCH_SIZE="3")
        try:
            svc.start()
            first = _first_write(capture, svc)
        finally:
            svc.cleanup()
    stamps = _timestamps(first)
    assert len(stamps) == 3, first.body
    # Three readings 0.2 s apart make a batch 0.4 s after the first: it must not wait for the
    # 10 s commit interval (the bound: within 1.5 s of the first reading).
    waited_s = (first.received_ns - stamps[0]) / 1e9
    assert waited_s < 1.5, f"first request {waited_s:.2f} s after the first reading"


def test_the_flush_interval_delivers_a_partial_batch_without_waiting_for_the_commit() -> None:
    with FaultProxy() as capture:
        svc = _service(capture.url, WRITER__BATCH_SIZE="1000", WRITER__FLUSH_INTERVAL="2")
        try:
            svc.start()
            first = _first_write(capture, svc)
        finally:
            svc.cleanup()
    stamps = _timestamps(first)
    assert 0 < len(stamps) < 1000
    # Due 2 s after the first reading; the commit interval would have made it 10 s.
    waited_s = (first.received_ns - stamps[0]) / 1e9
    assert waited_s < 3.0, f"first request {waited_s:.2f} s after the first reading"


def test_after_the_first_batch_every_request_carries_a_full_batch() -> None:
    """Batches keep their size while sampling goes on (no partial batches from early commits)."""
    with FaultProxy() as capture:
        svc = _service(capture.url, WRITER__BATCH_SIZE="3")
        try:
            svc.start()
            wait_until(
                lambda: len([s for s in capture.seen if s.route == "/write"]) >= 4,
                timeout=20,
                interval=0.05,
                what="four writes",
            )
        finally:
            svc.cleanup()
    writes = [s for s in capture.seen if s.route == "/write"]
    # The last request may be the final drain at SIGTERM (whatever was committed by then).
    sizes = [len(_timestamps(w)) for w in writes[:-1]]
    assert sizes[:3] == [3, 3, 3], sizes
    ordered = [t for w in writes for t in _timestamps(w)]
    assert ordered == sorted(set(ordered))  # oldest first, nothing sent twice
