"""The delivery engine against a scripted sink: batching, ACK/RETRY/SPLIT/REJECT/AUTH, alerts, stop.

The sink here is an in-test class that records every batch and answers with scripted
WriteResults: these tests are about what the engine does with each answer (the real database
servers are exercised in tests/sinks/). History is real SQLite. Tests about when a batch goes
out drive the engine one ``step()`` at a time on a hand clock, without its thread, and check what
each step sent and how long it says to wait; the others run the real thread, with the hand clock
where a test needs to step over a backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.outcome import ACKED, Outcome, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.service.delivery import DeliveryWorker
from filamentctl.store.history import History
from tests.helpers import wait_until

T0 = 1_780_000_000 * 1_000_000_000
RETRY_503 = WriteResult(Outcome.RETRY, 503, "service unavailable")
REFUSED = WriteResult(Outcome.RETRY, None, "connection refused")


class ScriptedSink:
    """Records each batch (as seqs) and answers with ``respond(batch)``."""

    name = "scripted"

    def __init__(self, respond: Callable[[Sequence[Reading]], WriteResult] | None = None) -> None:
        self.respond = respond or (lambda batch: ACKED)
        self.batches: list[list[int]] = []
        self.gate: threading.Event | None = None  # when set by a test, write() blocks on it

    def open(self) -> None:
        pass

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        self.batches.append([r.seq for r in readings])
        if self.gate is not None:
            self.gate.wait(10)
        return self.respond(readings)

    def describe(self) -> str:
        return "scripted sink"

    def close(self) -> None:
        pass

    def acked_seqs(self) -> list[int]:
        return [seq for batch in self.batches for seq in batch]


class Script:
    """Answers from a list, then ``then`` forever."""

    def __init__(self, answers: list[WriteResult], then: WriteResult = ACKED) -> None:
        self.answers = list(answers)
        self.then = then

    def __call__(self, batch: Sequence[Reading]) -> WriteResult:
        return self.answers.pop(0) if self.answers else self.then


class HandClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def failures_are(worker: DeliveryWorker, n: int) -> Callable[[], bool]:
    return lambda: bool(worker.status()["consecutive_failures"] == n)


def settings(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "writer.batch_size": 3,
        "writer.flush_interval": 0.05,
        "storage.commit_interval": 1.0,
        "storage.max_backlog": 10_000,
        "storage.retention_days": 0,
        "retry.backoff_base": 0.05,
        "retry.backoff_max": 0.2,
        "retry.alert_threshold": 3,
        "retry.alert_command": "",
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return base


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.db", max_backlog=10_000, retention_days=0)
    h.open()
    yield h
    h.close()


class Engine:
    """Builds workers for a test and stops them afterwards."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.workers: list[DeliveryWorker] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(
        self, sink: ScriptedSink, clock: Callable[[], float] = time.monotonic, **kw: Any
    ) -> DeliveryWorker:
        worker = DeliveryWorker(
            self.history,
            sink,
            settings(**kw),
            clock=clock,
            rng=lambda: 0.0,
            on_event=lambda name, details: self.events.append((name, details)),
        )
        self.workers.append(worker)
        return worker

    def named(self, event: str) -> list[dict[str, Any]]:
        return [details for name, details in self.events if name == event]


@pytest.fixture
def engine(history: History) -> Iterator[Engine]:
    e = Engine(history)
    yield e
    for worker in e.workers:
        worker.stop(2.0)


def commit(history: History, n: int) -> None:
    for i in range(n):
        history.add(Reading(T0 + i, history.next_seq(), 20.0, 40.0))
    history.commit()


def test_full_batches_go_out_at_once_and_the_rest_waits_for_the_interval(
    history: History, engine: Engine
) -> None:
    """Driven one step at a time on a hand clock (no thread): what each look sends, and how long
    it says to wait before the next."""
    clock = HandClock()
    sink = ScriptedSink()
    worker = engine(sink, clock, writer__flush_interval=60.0)
    commit(history, 7)
    assert worker.step() == 0.0  # a full batch went out: look again at once
    assert worker.step() == 0.0
    assert sink.batches == [[1, 2, 3], [4, 5, 6]]

    assert worker.step() > 0.0  # reading 7 alone: its interval has only begun
    clock.advance(59.0)
    assert worker.step() == pytest.approx(1.0)  # the wait ends exactly at the interval
    assert sink.batches == [[1, 2, 3], [4, 5, 6]]

    clock.advance(1.0)
    assert worker.step() == 0.0
    assert sink.batches == [[1, 2, 3], [4, 5, 6], [7]]
    assert worker.status()["backlog"] == 0


def test_a_small_backlog_is_sent_after_the_flush_interval(history: History, engine: Engine) -> None:
    clock = HandClock()
    sink = ScriptedSink()
    worker = engine(sink, clock, writer__batch_size=100, writer__flush_interval=8.0)
    commit(history, 2)
    assert worker.step() == pytest.approx(8.0)
    clock.advance(7.5)
    assert worker.step() == pytest.approx(0.5)
    assert sink.batches == []
    assert worker.status()["backlog"] == 2

    clock.advance(0.5)
    assert worker.step() == 0.0
    assert sink.batches == [[1, 2]]
    assert worker.status()["backlog"] == 0


def test_the_interval_runs_from_when_the_oldest_reading_was_taken(
    history: History, engine: Engine
) -> None:
    """The sampler tells when the readings of a commit were taken: a partial batch is due that
    long after, not after the commit."""
    clock = HandClock()
    sink = ScriptedSink()
    worker = engine(sink, clock, writer__batch_size=100, writer__flush_interval=8.0)
    commit(history, 2)
    worker.committed(2, clock() - 6.0)
    assert worker.step() == pytest.approx(2.0)
    assert sink.batches == []
    clock.advance(2.0)
    assert worker.step() == 0.0
    assert sink.batches == [[1, 2]]


def test_a_backoff_holds_the_next_attempt_until_it_is_over(
    history: History, engine: Engine
) -> None:
    clock = HandClock()
    busy = WriteResult(Outcome.RETRY, 503, "busy", retry_after_s=4.0)
    sink = ScriptedSink(Script([busy]))
    worker = engine(sink, clock)
    commit(history, 3)
    assert worker.step() == 0.0
    assert worker.step() == pytest.approx(4.0)  # waiting out Retry-After, nothing sent
    assert sink.batches == [[1, 2, 3]]
    clock.advance(4.0)
    assert worker.step() == 0.0
    assert sink.batches == [[1, 2, 3], [1, 2, 3]]
    assert worker.status()["backlog"] == 0


def test_a_backlog_from_before_the_start_drains_without_waiting(
    history: History, engine: Engine
) -> None:
    commit(history, 8)
    sink = ScriptedSink()
    worker = engine(sink, HandClock(), writer__flush_interval=3600.0)
    worker.start()
    wait_until(lambda: worker.status()["backlog"] == 0, what="the old backlog to drain")
    assert sink.batches == [[1, 2, 3], [4, 5, 6], [7, 8]]


def test_acknowledged_readings_leave_the_backlog_and_are_counted(
    history: History, engine: Engine
) -> None:
    sink = ScriptedSink()
    worker = engine(sink)
    worker.start()
    commit(history, 6)
    worker.wake()
    wait_until(lambda: worker.status()["backlog"] == 0, what="delivery")
    status = worker.status()
    assert status["written"] == 6
    assert status["connected"] is True
    assert status["last_success"] is not None
    assert status["oldest_unsent_age_s"] is None
    assert history.backlog(sink.name, 10) == []


def test_status_has_exactly_the_documented_keys(history: History, engine: Engine) -> None:
    worker = engine(ScriptedSink())
    assert set(worker.status()) == {
        "backend",
        "connected",
        "backlog",
        "oldest_unsent_age_s",
        "written",
        "dropped",
        "rejected",
        "dead_letter",
        "last_error",
        "next_retry_s",
        "consecutive_failures",
        "errors_total",
        "alert",
        "last_success",
    }
    assert worker.status()["backend"] == "scripted"


def test_a_transient_failure_keeps_the_batch_and_honours_retry_after(
    history: History, engine: Engine
) -> None:
    clock = HandClock()
    busy = WriteResult(Outcome.RETRY, 429, "too many requests", retry_after_s=30.0)
    sink = ScriptedSink(Script([busy]))
    worker = engine(sink, clock)
    worker.start()
    commit(history, 3)
    worker.wake()
    wait_until(lambda: worker.status()["consecutive_failures"] == 1, what="the failure")
    status = worker.status()
    assert status["backlog"] == 3
    assert status["connected"] is False
    assert status["next_retry_s"] == pytest.approx(30.0)
    assert status["last_error"] == "HTTP 429: too many requests"

    worker.wake()  # new readings do not cut the wait short
    clock.advance(29)
    assert worker.status()["next_retry_s"] == pytest.approx(1.0)
    clock.advance(1.5)
    worker.wake()
    wait_until(lambda: worker.status()["backlog"] == 0, what="the retry")
    assert sink.batches == [[1, 2, 3], [1, 2, 3]]
    assert worker.status()["next_retry_s"] is None


def test_backoff_grows_with_consecutive_failures(history: History, engine: Engine) -> None:
    clock = HandClock()
    sink = ScriptedSink(lambda batch: REFUSED)
    worker = engine(sink, clock, retry__backoff_base=1.0, retry__backoff_max=60.0)
    worker.start()
    commit(history, 3)
    worker.wake()
    waits: list[float | None] = []
    for failures in (1, 2, 3):
        wait_until(failures_are(worker, failures), what="a failure")
        waits.append(worker.status()["next_retry_s"])
        clock.advance(100)
        worker.wake()
    assert waits == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(4.0)]
    assert worker.status()["backlog"] == 3


def test_a_sink_that_raises_is_retried_and_loses_nothing(history: History, engine: Engine) -> None:
    clock = HandClock()
    calls: list[int] = []

    def flaky(batch: Sequence[Reading]) -> WriteResult:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("socket went away")
        return ACKED

    sink = ScriptedSink(flaky)
    worker = engine(sink, clock)
    worker.start()
    commit(history, 3)
    worker.wake()
    wait_until(lambda: worker.status()["consecutive_failures"] == 1, what="the failure")
    assert "RuntimeError: socket went away" in worker.status()["last_error"]
    assert worker.status()["backlog"] == 3
    clock.advance(10)
    worker.wake()
    wait_until(lambda: worker.status()["backlog"] == 0, what="the retry")
    assert worker.status()["written"] == 3


def test_too_large_batches_are_halved_until_the_backend_takes_them(
    history: History, engine: Engine
) -> None:
    too_large = WriteResult(Outcome.SPLIT, 413, "request entity too large")
    sink = ScriptedSink(lambda batch: too_large if len(batch) > 2 else ACKED)
    worker = engine(sink, writer__batch_size=8)
    commit(history, 8)
    worker.start()
    wait_until(lambda: worker.status()["backlog"] == 0, what="delivery in halves")
    accepted = [b for b in sink.batches if len(b) <= 2]
    assert accepted == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert sink.batches[0] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert worker.status()["written"] == 8
    assert worker.status()["dead_letter"] == 0


def test_a_single_reading_still_too_large_goes_to_dead_letter(
    history: History, engine: Engine
) -> None:
    sink = ScriptedSink(lambda batch: WriteResult(Outcome.SPLIT, 413, "too large"))
    worker = engine(sink, writer__batch_size=2)
    commit(history, 2)
    worker.start()
    wait_until(lambda: worker.status()["backlog"] == 0, what="dead-lettering")
    status = worker.status()
    assert (status["rejected"], status["dead_letter"], status["written"]) == (2, 2, 0)
    assert [e["status"] for e in history.deadletter_list()] == [413, 413]


def test_rejected_data_goes_to_dead_letter_and_delivery_continues(
    history: History, engine: Engine
) -> None:
    bad = WriteResult(Outcome.REJECT, 400, "partial write: field type conflict")
    sink = ScriptedSink(Script([bad]))
    worker = engine(sink)
    commit(history, 6)
    worker.start()
    wait_until(lambda: worker.status()["backlog"] == 0, what="delivery")
    status = worker.status()
    assert (status["written"], status["rejected"], status["dead_letter"]) == (3, 3, 1)
    assert status["connected"] is True
    [entry] = history.deadletter_list()
    assert (entry["first_seq"], entry["last_seq"], entry["status"]) == (1, 3, 400)
    assert entry["error"] == "partial write: field type conflict"
    assert engine.named("rejected")[0]["count"] == 3


def test_dead_letters_can_be_replayed_once_the_backend_accepts_them(
    history: History, engine: Engine
) -> None:
    sink = ScriptedSink(Script([WriteResult(Outcome.REJECT, 422, "unprocessable")]))
    worker = engine(sink)
    commit(history, 3)
    worker.start()
    wait_until(lambda: worker.status()["dead_letter"] == 1, what="dead-lettering")
    result = worker.replay_dead_letters()
    assert result == {"replayed": 1, "readings": 3, "failed": [], "ok": True, "error": None}
    assert sink.batches[-1] == [1, 2, 3]
    assert worker.status()["dead_letter"] == 0
    assert worker.status()["written"] == 3


def test_an_auth_failure_keeps_the_data_and_raises_one_auth_alert(
    history: History, engine: Engine
) -> None:
    clock = HandClock()
    denied = WriteResult(Outcome.AUTH, 401, "unauthorized")
    sink = ScriptedSink(lambda batch: denied)
    worker = engine(sink, clock)
    worker.start()
    commit(history, 3)
    worker.wake()
    wait_until(lambda: worker.status()["consecutive_failures"] == 1, what="the failure")
    status = worker.status()
    assert status["backlog"] == 3
    assert status["alert"]["kind"] == "auth"
    assert status["next_retry_s"] is not None

    for failures in (2, 3, 4):
        clock.advance(10)
        worker.wake()
        wait_until(failures_are(worker, failures), what="a retry")
    assert [a["kind"] for a in engine.named("alert")] == ["auth"]  # once per episode

    sink.respond = lambda batch: ACKED
    clock.advance(10)
    worker.wake()
    wait_until(lambda: worker.status()["backlog"] == 0, what="recovery")
    assert worker.status()["alert"] is None
    assert engine.named("recovered")[0]["failures"] == 4


def test_the_alert_command_runs_once_per_failure_episode_with_the_details(
    history: History, engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "alerts.txt"
    command = (
        'printf "%s|%s|%s|%s|%s\\n" "$FILAMENTCTL_ALERT_KIND" "$FILAMENTCTL_ALERT_FAILURES" '
        '"$FILAMENTCTL_ALERT_BACKEND" "$FILAMENTCTL_ALERT_BACKLOG" "$FILAMENTCTL_ALERT_MESSAGE"'
        f' >> "{out}"'
    )
    clock = HandClock()
    sink = ScriptedSink(lambda batch: RETRY_503)
    worker = engine(sink, clock, retry__alert_threshold=2, retry__alert_command=command)
    worker.start()
    commit(history, 3)
    worker.wake()

    def fail_until(target: int) -> None:
        wait_until(lambda: worker.status()["consecutive_failures"] >= 1, what="a failure")
        while (current := worker.status()["consecutive_failures"]) < target:
            clock.advance(10)  # past the backoff
            worker.wake()
            wait_until(lambda: worker.status()["consecutive_failures"] > current, what="a retry")

    def lines() -> list[str]:
        return out.read_text().splitlines() if out.exists() else []

    fail_until(4)
    wait_until(lambda: len(lines()) == 1, what="the alert command")
    kind, failures, backend, backlog, message = lines()[0].split("|")
    assert (kind, failures, backend, backlog) == ("delivery", "2", "scripted", "3")
    assert "HTTP 503: service unavailable" in message
    assert worker.status()["alert"]["kind"] == "delivery"

    sink.respond = lambda batch: ACKED  # episode ends
    clock.advance(10)
    worker.wake()
    wait_until(lambda: worker.status()["backlog"] == 0, what="recovery")
    assert worker.status()["alert"] is None

    sink.respond = lambda batch: RETRY_503  # a new episode alerts again
    commit(history, 3)
    worker.wake()
    fail_until(2)
    wait_until(lambda: len(lines()) == 2, what="the second alert command")
    assert lines()[1].startswith("delivery|2|scripted|3|")
    assert len(engine.named("alert")) == 2


def test_stop_with_an_unreachable_backend_keeps_everything(
    history: History, engine: Engine
) -> None:
    sink = ScriptedSink(lambda batch: REFUSED)
    worker = engine(sink)
    commit(history, 5)
    worker.start()
    wait_until(lambda: worker.status()["consecutive_failures"] >= 1, what="a failure")
    worker.stop(1.0)
    assert history.backlog_count(sink.name) == 5
    assert [r.seq for r in history.backlog(sink.name, 10)] == [1, 2, 3, 4, 5]


def test_stop_delivers_what_is_committed_before_returning(history: History, engine: Engine) -> None:
    sink = ScriptedSink()
    worker = engine(sink, HandClock(), writer__flush_interval=3600.0)
    worker.start()
    commit(history, 2)  # not due yet: below batch size, interval far away
    assert worker.stop(5.0) is True
    assert sink.batches == [[1, 2]]
    assert history.backlog_count(sink.name) == 0


def test_stop_returns_in_time_even_if_the_backend_hangs_and_says_so(
    history: History, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ScriptedSink()
    sink.gate = threading.Event()
    worker = engine(sink)
    commit(history, 3)
    worker.start()
    wait_until(lambda: len(sink.batches) == 1, what="the write to start")
    with caplog.at_level(logging.ERROR, logger="filamentctl.delivery"):
        assert worker.stop(0.2) is False
    [report] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "still running" in report.getMessage()
    assert history.backlog_count(sink.name) == 3  # nothing acknowledged, nothing lost
    sink.gate.set()  # let the stuck write finish before the history closes
    assert worker.join(10.0) is True
    assert not any(t.name == "delivery" for t in threading.enumerate())


def test_flush_delivers_everything_now_and_reports_progress(
    history: History, engine: Engine
) -> None:
    sink = ScriptedSink()
    worker = engine(sink, HandClock(), writer__flush_interval=3600.0)
    commit(history, 7)
    seen: list[tuple[int, int]] = []
    result = worker.flush(5.0, lambda done, total: seen.append((done, total)))
    assert result == {
        "delivered": 7,
        "remaining": 0,
        "ok": True,
        "error": None,
        "dead_lettered": 0,
    }
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]
    assert sink.batches == [[1, 2, 3], [4, 5, 6], [7]]


def test_flush_ignores_the_current_backoff(history: History, engine: Engine) -> None:
    clock = HandClock()
    busy = WriteResult(Outcome.RETRY, 503, "busy", retry_after_s=600.0)
    sink = ScriptedSink(Script([busy]))
    worker = engine(sink, clock)
    worker.start()
    commit(history, 3)
    worker.wake()
    wait_until(lambda: worker.status()["consecutive_failures"] == 1, what="the failure")
    assert worker.status()["next_retry_s"] == pytest.approx(600.0)
    result = worker.flush(5.0)
    assert result["ok"] is True and result["delivered"] == 3
    assert worker.status()["next_retry_s"] is None


def test_flush_against_an_unreachable_backend_reports_and_keeps_the_backlog(
    history: History, engine: Engine
) -> None:
    sink = ScriptedSink(lambda batch: REFUSED)
    worker = engine(sink)
    commit(history, 4)
    result = worker.flush(0.3)
    assert result["ok"] is False
    assert result["delivered"] == 0
    assert result["remaining"] == 4
    assert result["error"] == "connection refused"
    assert history.backlog_count(sink.name) == 4


def test_flush_stops_at_an_auth_failure(history: History, engine: Engine) -> None:
    sink = ScriptedSink(lambda batch: WriteResult(Outcome.AUTH, 403, "forbidden"))
    worker = engine(sink)
    commit(history, 4)
    result = worker.flush(30.0)
    assert (result["ok"], result["remaining"]) == (False, 4)
    assert result["error"] == "HTTP 403: forbidden"
    assert len(sink.batches) == 1


def test_a_backlog_over_the_cap_drops_the_oldest_and_reports_once(
    tmp_path: Path,
) -> None:
    history = History(tmp_path / "capped.db", max_backlog=5, retention_days=0)
    history.open()
    engine = Engine(history)
    try:
        clock = HandClock()
        sink = ScriptedSink(lambda batch: REFUSED)
        worker = engine(sink, clock)
        commit(history, 8)
        worker.start()
        wait_until(lambda: worker.status()["consecutive_failures"] == 1, what="a failure")
        status = worker.status()
        assert (status["dropped"], status["backlog"]) == (3, 5)
        assert engine.named("dropped") == [{"backend": "scripted", "dropped": 3}]
        assert [r.seq for r in history.backlog(sink.name, 10)] == [4, 5, 6, 7, 8]
    finally:
        for w in engine.workers:
            w.stop(1.0)
        history.close()


def test_debug_log_previews_each_batch_without_flooding(
    history: History, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """--debug shows what is about to be written: a header and a few points per batch."""
    commit(history, 10)
    worker = engine(ScriptedSink())
    with caplog.at_level(logging.DEBUG, logger="filamentctl.delivery"):
        assert worker.flush(5.0, None)["delivered"] == 10
    lines = [r.getMessage() for r in caplog.records if r.name == "filamentctl.delivery"]
    headers = [ln for ln in lines if ln.startswith("batch ready for")]
    assert headers and "#1-#" in headers[0]
    points = [ln for ln in lines if ln.startswith("  #")]
    assert 0 < len(points) <= 4 * len(headers)
    assert '"temperature_c"' in points[0]


def test_the_alert_command_does_not_inherit_the_services_secrets(
    history: History, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILAMENTCTL_CONFIG_KEY", "k" * 64)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.secret-token")
    out = tmp_path / "env.txt"
    sink = ScriptedSink(lambda batch: RETRY_503)
    worker = engine(
        sink, HandClock(), retry__alert_threshold=1, retry__alert_command=f'env > "{out}"'
    )
    worker.start()
    commit(history, 3)  # a full batch: sent at once
    worker.wake()
    wait_until(
        lambda: out.exists() and "FILAMENTCTL_ALERT_KIND" in out.read_text(), what="the alert"
    )
    text = out.read_text()
    assert "FILAMENTCTL_CONFIG_KEY" not in text and "hvs.secret-token" not in text
    assert "PATH=" in text


def test_an_unexpected_error_is_logged_once_and_backed_off(
    history: History, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """E.g. the history cannot record an ack (disk full): no traceback per second."""
    commit(history, 3)
    calls = 0

    def broken_ack(*_args: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("database or disk is full")

    history.ack = broken_ack  # type: ignore[method-assign]
    worker = engine(ScriptedSink(), retry__backoff_base=0.05, retry__backoff_max=0.2)
    with caplog.at_level(logging.DEBUG, logger="filamentctl.delivery"):
        worker.start()
        wait_until(lambda: calls >= 4, what="several attempts")
    tracebacks = [r for r in caplog.records if r.exc_info and "unexpected" in r.getMessage()]
    assert len(tracebacks) == 1
    st = worker.status()
    assert "disk is full" in (st["last_error"] or "") and st["errors_total"] >= 4
    assert st["backlog"] == 3  # nothing was acknowledged, nothing lost
