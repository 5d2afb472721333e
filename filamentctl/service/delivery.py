"""The delivery engine: one thread that drains the history's backlog into the configured sink.

Batches go out oldest first when ``writer.batch_size`` readings are waiting or when the oldest
waiting reading was taken ``writer.flush_interval`` seconds ago (as told by :meth:`committed`; a
commit it was not told about counts from when it noticed it). The sampler asks
:meth:`DeliveryWorker.wants_commit` after every reading, so a batch that is due does not wait
for the next periodic commit of the history. A large backlog drains batch after batch without
pause; with a sink that can send a prepared body (:class:`PipelinedSink`, e.g. VictoriaMetrics)
the next batch is fetched and encoded while the backend stores the current one
(:mod:`filamentctl.service.batches`, which also settles each answer: ACK, SPLIT, REJECT). RETRY
and AUTH keep everything and back off (``retry.backoff_base``/``retry.backoff_max`` with jitter,
at least the server's Retry-After); alerts are :mod:`filamentctl.service.alerts`' job, the cap
reports and retention :mod:`filamentctl.service.upkeep`'s. Nothing leaves the history unless the
backend took it, it was dead-lettered, or the backlog cap dropped it (counted).

Each of the three ways to drain — the thread's :meth:`DeliveryWorker.step`, its last drain at
:meth:`~DeliveryWorker.stop`, and :meth:`~DeliveryWorker.flush` — fetches the oldest batch, decides
whether to send it now, and hands it to the one drain step, :meth:`BatchSender.drain`.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from filamentctl.core.backoff import retry_delay
from filamentctl.core.outcome import Outcome, WriteResult
from filamentctl.core.reading import iso_utc
from filamentctl.service.alerts import Alerter, AlertRunner, Emit
from filamentctl.service.batches import BatchSender, Moved, describe
from filamentctl.service.upkeep import CAP_CHECK_INTERVAL_S, RETENTION_INTERVAL_S, BacklogUpkeep
from filamentctl.sinks.base import Sink

if TYPE_CHECKING:
    from filamentctl.store.history import History

__all__ = [
    "CAP_CHECK_INTERVAL_S",
    "RETENTION_INTERVAL_S",
    "DeliverySettings",
    "DeliveryWorker",
]

log = logging.getLogger("filamentctl.delivery")

IDLE_WAIT_S = 60.0  # longest sleep with nothing to do (wake() normally ends it sooner)
CANCEL_CHECK_S = 0.5  # how often a waiting flush asks whether it was cancelled
STOP_GRACE_S = 0.5  # stop() waits this much past its timeout for the thread to end
# Longest a pipelined drain holds the send lock in one go; restarting it costs one batch whose
# encoding does not overlap the backend's work, so a few seconds lose almost nothing.
PIPELINE_RUN_S = 2.0

#: Receives ``(event, details)`` from the delivery thread (or the thread calling ``flush``).
EventCallback = Callable[[str, dict[str, object]], None]


@dataclass(frozen=True)
class DeliverySettings:
    """The ``writer.*`` and ``retry.*`` settings the engine runs with."""

    batch_size: int
    flush_interval: float
    backoff_base: float
    backoff_max: float
    alert_threshold: int
    alert_command: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> DeliverySettings:
        """Read them from the service's settings; raises KeyError for a missing key and
        TypeError/ValueError for one that is not a number (the schema rules that out)."""
        return cls(
            batch_size=max(int(_number(settings, "writer.batch_size")), 1),
            flush_interval=max(_number(settings, "writer.flush_interval"), 0.0),
            backoff_base=_number(settings, "retry.backoff_base"),
            backoff_max=_number(settings, "retry.backoff_max"),
            alert_threshold=int(_number(settings, "retry.alert_threshold")),
            alert_command=str(settings.get("retry.alert_command") or "").strip(),
        )


def _number(settings: Mapping[str, object], key: str) -> float:
    value = settings[key]
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"{key} must be a number, not {type(value).__name__}")


class DeliveryWorker:
    """Delivers committed readings from ``history`` to ``sink`` on a thread named "delivery".

    ``clock`` (monotonic seconds) computes deadlines and backoff; ``rng`` supplies jitter in
    [0, 1); ``wall_clock_ns`` stamps ``last_success``/alerts and ages the backlog. ``on_event``
    receives ``("alert" | "recovered" | "rejected" | "dropped", details)`` from the delivery
    thread (or the thread calling ``flush``) and must not block. ``run_alert`` replaces how
    ``retry.alert_command`` is started (it receives the FILAMENTCTL_ALERT_* variables).
    Raises KeyError, TypeError or ValueError for missing or non-numeric ``writer.*``/``retry.*``
    settings.
    """

    def __init__(
        self,
        history: History,
        sink: Sink,
        settings: Mapping[str, object],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        on_event: EventCallback | None = None,
        run_alert: AlertRunner | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._history = history
        self._name = str(sink.name)
        self._settings = config = DeliverySettings.from_settings(settings)
        self._clock = clock
        self._wall_ns = wall_clock_ns
        self._on_event = on_event
        self._idle_wait = min(max(config.flush_interval, 1.0), IDLE_WAIT_S)
        self._sink = sink
        alerter = Alerter(
            self._name,
            config.alert_threshold,
            config.alert_command,
            backlog=lambda: history.backlog_count(self._name),
            emit=self._emit,
            wall_clock_ns=wall_clock_ns,
            run_command=run_alert,
        )
        self._health = DeliveryHealth(
            self._name,
            config,
            alerter,
            clock=clock,
            rng=rng,
            wall_clock_ns=wall_clock_ns,
            emit=self._emit,
        )
        self._sender = BatchSender(
            history, sink, config.batch_size, succeeded=self._health.succeeded, emit=self._emit
        )
        self._upkeep = BacklogUpkeep(
            history, self._name, emit=self._emit, wall_clock_ns=wall_clock_ns
        )
        self._timer = BatchTimer(config.flush_interval)

        self._wake_event = threading.Event()
        self._stop_event = threading.Event()
        self._send_lock = threading.Lock()  # one batch in flight at a time (worker or flush)
        self._thread: threading.Thread | None = None
        self._stop_deadline = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread. A backlog left from before is due at once."""
        if self._thread is not None:
            return
        self._history.ensure_cursor(self._name)
        self._stop_event.clear()
        self._timer.restart(self._history.last_committed_seq(), self._clock())
        self._upkeep.restart()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New readings were committed: re-check the backlog now (does not cut a backoff short)."""
        self._wake_event.set()

    def committed(self, upto_seq: int, oldest_at: float | None) -> None:
        """Readings up to ``upto_seq`` were committed, the oldest new one taken at ``oldest_at``
        (this worker's clock; None: unknown, count from now). Their flush-interval timer runs from
        then, not from the commit; then :meth:`wake`. Safe from any thread."""
        if oldest_at is not None:
            self._timer.mark(upto_seq, oldest_at)
        self.wake()

    def wants_commit(self, pending: int, oldest_at: float | None, now: float) -> bool:
        """Whether the sampler should commit its ``pending`` buffered readings (the oldest taken
        at ``oldest_at``) now, before its commit interval is up, because they make a batch due:
        with the committed backlog they fill ``writer.batch_size``, or the oldest has waited
        ``writer.flush_interval``. False while nothing is pending, while a full batch is already
        waiting (it is being sent), while backing off after a failure (during an outage only the
        commit interval decides, which spares the SD card) and after stop(). Any thread."""
        if pending <= 0 or self._thread is None or self._stop_event.is_set():
            return False
        retry_at = self._health.retry_at()
        if retry_at is not None and now < retry_at:
            return False
        # The seq span, not COUNT(*): this runs after every reading, and it never undercounts.
        waiting = self._history.last_committed_seq() - self._history.cursor(self._name)
        batch_size = self._settings.batch_size
        if waiting >= batch_size:
            return False
        if waiting + pending >= batch_size:
            return True
        return oldest_at is not None and now - oldest_at >= self._settings.flush_interval

    def stop(self, timeout: float, *, report_stuck: bool = True) -> bool:
        """Stop gracefully: one last attempt to deliver what is committed, within ``timeout`` s.

        Whatever is not delivered by then stays in the history for the next start. Returns True
        once the thread has ended (or never ran). Returns False, logged at ERROR, when it is still
        running shortly after ``timeout`` (a backend that hangs): it is a daemon, so it cannot
        keep the process alive; :meth:`join` waits for it longer. ``report_stuck=False`` for a
        caller that joins it longer itself (a live reload's swap) and reports on that.
        """
        thread = self._thread
        if thread is None:
            return True
        self._stop_deadline = self._clock() + max(timeout, 0.0)
        self._stop_event.set()
        self._wake_event.set()
        if self.join(max(timeout, 0.0) + STOP_GRACE_S):
            return True
        if not report_stuck:
            return False
        log.error(
            "delivery thread for %s still running %.1f s after it was told to stop (the backend "
            "does not answer); undelivered readings stay in the local history for the next start",
            self._name,
            max(timeout, 0.0) + STOP_GRACE_S,
        )
        return False

    def join(self, timeout: float) -> bool:
        """Wait for a stopped worker's thread to end; True when it has (or never ran)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(max(timeout, 0.0))
        if thread.is_alive():
            return False
        self._thread = None
        return True

    # -- the worker thread -------------------------------------------------------------------

    def _run(self) -> None:
        # Create the database/table where the server allows it: on this thread, because it does
        # network I/O that must not delay the service's start; best effort, never fatal.
        try:
            self._sink.open()
        except Exception:
            log.warning("preparing %s failed; delivery will retry", self._name, exc_info=True)
        while not self._stop_event.is_set():
            try:
                wait = self.step()
                self._health.internal_ok()
            except Exception as exc:  # the thread must survive anything (e.g. a locked database)
                wait = self._health.internal_failure(exc)
            self._wake_event.wait(max(wait, 0.0))
            self._wake_event.clear()
        try:
            self._final_drain()
        except Exception:  # the history may already be closed after a timed-out stop()
            log.debug("final delivery attempt failed", exc_info=True)
        try:
            self._sink.close()
        except Exception:
            log.debug("closing %s failed", self._name, exc_info=True)

    def step(self) -> float:
        """Do what is due now; return how many seconds to wait before the next look.

        The delivery thread calls it in a loop (waking early on :meth:`wake`); it can also be
        called directly, without :meth:`start`, to drive the engine one look at a time. Sends at
        most one batch — or, with a pipelined sink and full batches waiting, drains those for up
        to ``PIPELINE_RUN_S`` — and only when a full batch waits or the oldest reading's flush
        interval is up. Raises what the history raises (the thread backs off and retries).
        """
        now = self._clock()
        next_look = self._upkeep.run(now)
        retry_at = self._health.retry_at()
        if retry_at is not None and now < retry_at:
            return min(retry_at, next_look) - now
        with self._send_lock:
            first = self._sender.next_batch()
            if not first:
                self._timer.clear()
                # wake() normally ends this sleep; the poll only bounds latency if nobody calls it.
                return min(self._idle_wait, next_look - now)
            due_at = self._timer.due_at(first[0][1], self._history.last_committed_seq(), now)
            if len(first) < self._settings.batch_size and now < due_at:
                return min(due_at, next_look) - now
            # A backlog drains full batches with one in flight, for a bounded time so that a
            # flush() or stop() is not kept waiting for the lock.
            run_until = now + PIPELINE_RUN_S
            failure = self._sender.drain(
                first,
                Moved(),
                full_only=True,
                should_stop=lambda: self._stop_event.is_set() or self._clock() >= run_until,
            )
        if failure is not None:
            self._health.failed(failure)  # the next step waits out the backoff
        return 0.0  # a large backlog drains without pause

    def _final_drain(self) -> None:
        """After stop(): deliver what is committed until done, a failure, or the deadline."""
        while self._clock() < self._stop_deadline:
            with self._send_lock:
                first = self._sender.next_batch()
                if not first:
                    return
                failure = self._sender.drain(
                    first, Moved(), should_stop=functools.partial(self._past, self._stop_deadline)
                )
            if failure is not None:
                self._health.failed(failure)
                break
        left = self._history.backlog_count(self._name)
        if left:
            log.info(
                "delivery stopped with %d readings kept in the local history for the next start",
                left,
            )

    def _past(self, moment: float) -> bool:
        return self._clock() >= moment

    def _emit(self, event: str, details: dict[str, object]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event, details)
        except Exception:  # a broken listener must not stop delivery
            log.exception("delivery event listener failed on %r", event)

    # -- on demand ---------------------------------------------------------------------------

    def flush(
        self,
        timeout: float,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Deliver the backlog as it stands now (every reading committed so far), ignoring any
        backoff wait; from any thread.

        Transient failures are retried (with backoff, at least Retry-After) until ``timeout``
        seconds have passed; an authentication failure ends the flush at once, and so does
        ``cancelled()`` turning true (checked between batches and while waiting, e.g. the
        client that asked went away). ``progress(done, total)`` is called after every batch.
        Returns ``{"delivered", "remaining", "ok", "error", "dead_lettered"}``: ``remaining``
        counts the readings of that backlog still undelivered (readings committed while the
        flush ran are not part of it), ``ok`` is ``remaining == 0``. Nothing that was not
        delivered is lost. Raises what the history raises.
        """
        self._history.ensure_cursor(self._name)
        run = _FlushRun(
            deadline=self._clock() + max(timeout, 0.0),
            timeout=timeout,
            target=self._history.last_committed_seq(),
            total=self._history.backlog_count(self._name),
            progress=_guarded(progress),
            cancelled=cancelled,
        )
        run.progress(0, run.total)
        error = self._flush(run)
        # The flush's job was the backlog as it stood when it started: readings committed while
        # it ran are not "remaining" (they go out with the next batch, as usual).
        remaining = self._history.backlog_count(self._name, upto=run.target)
        ok = remaining == 0
        self._wake_event.set()  # the worker re-plans: its backoff may be over now
        return {
            "delivered": run.moved.delivered,
            "remaining": remaining,
            "ok": ok,
            "error": None if ok else error,
            "dead_lettered": run.moved.rejected,
        }

    def _flush(self, run: _FlushRun) -> str | None:
        """Drain ``run``'s backlog until it is done, timed out, cancelled or refused; the error
        that stopped it last (None: none)."""
        error: str | None = None
        while True:
            if run.is_cancelled():
                return "cancelled: the client that asked went away"
            with self._send_lock:
                first = self._sender.next_batch(upto=run.target)
                if not first:
                    return error
                if self._clock() >= run.deadline:
                    return error or f"timed out after {run.timeout:g} s"
                # Bounded runs: the lock is let go now and then (worker, stop()).
                run_until = min(run.deadline, self._clock() + PIPELINE_RUN_S)
                failure = self._sender.drain(
                    first,
                    run.moved,
                    upto=run.target,
                    should_stop=functools.partial(self._past, run_until),
                    after_batch=run.after_batch,
                )
            if failure is None:
                continue
            self._health.failed(failure)
            error = describe(failure)
            if failure.outcome is Outcome.AUTH:
                return error
            retry_at = self._health.retry_at()
            wait = (retry_at if retry_at is not None else 0.0) - self._clock()
            if self._clock() + wait >= run.deadline or self._wait_unless(wait, run.cancelled):
                return error

    def _wait_unless(self, seconds: float, cancelled: Callable[[], bool] | None) -> bool:
        """Wait ``seconds``; True (stop waiting) when the worker stops or ``cancelled()``."""
        left = max(seconds, 0.0)
        while left > 0:
            step = min(left, CANCEL_CHECK_S)
            if self._stop_event.wait(step):
                return True
            left -= step
            if cancelled is not None and cancelled():
                return True
        return False

    def replay_dead_letters(self, ids: Sequence[int] | None = None) -> dict[str, Any]:
        """Resend dead-letter entries (all when None); each entry the backend takes is purged.

        Returns ``{"replayed": entries, "readings": n, "failed": [ids], "ok", "error"}``.
        Entries that fail again stay in the dead-letter table.
        """
        wanted = [e["id"] for e in self._history.deadletter_list()] if ids is None else list(ids)
        replayed = 0
        count = 0
        failed: list[int] = []
        error: str | None = None
        for entry in wanted:
            readings = self._history.deadletter_readings([entry])
            if not readings:
                continue
            with self._send_lock:
                failure = self._sender.write_all(readings)
            if failure is None:
                self._history.deadletter_purge([entry], delivered=True)
                replayed += 1
                count += len(readings)
            else:
                failed.append(entry)
                error = describe(failure)
        return {
            "replayed": replayed,
            "readings": count,
            "failed": failed,
            "ok": not failed,
            "error": error,
        }

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The delivery part of ``filamentctl status`` (JSON-ready)."""
        counters = self._history.counters()
        backlog = self._history.backlog_count(self._name)
        oldest = self._history.oldest_unsent_ns(self._name)
        health = self._health.snapshot()
        return storage_status(
            self._name,
            counters,
            connected=health.connected,
            backlog=backlog,
            oldest_unsent_age_s=(
                None if oldest is None else max(0.0, (self._wall_ns() - oldest) / 1e9)
            ),
            last_error=health.last_error,
            next_retry_s=health.next_retry_s,
            failures=health.failures,
            errors_total=health.errors_total,
            alert=health.alert,
            last_success=health.last_success,
        )


def nothing_to_flush(backend: str) -> dict[str, Any]:
    """The ``flush`` result when there is nothing to deliver: no database (``backend`` "none"),
    or no history yet."""
    return {"delivered": 0, "remaining": 0, "ok": True, "error": None, "backend": backend}


def storage_status(
    backend: str,
    counters: Mapping[str, int],
    *,
    connected: bool | None = False,
    backlog: int = 0,
    oldest_unsent_age_s: float | None = None,
    last_error: str | None = None,
    next_retry_s: float | None = None,
    failures: int = 0,
    errors_total: int = 0,
    alert: dict[str, object] | None = None,
    last_success: str | None = None,
) -> dict[str, Any]:
    """The delivery part of ``status`` (JSON-ready), the one shape for a running worker and for
    none (the defaults: nothing sent, nothing waiting). ``counters``: the history's."""
    return {
        "backend": backend,
        "connected": connected,
        "backlog": backlog,
        "oldest_unsent_age_s": oldest_unsent_age_s,
        "written": counters.get("written", 0),
        "dropped": counters.get("dropped", 0),
        "rejected": counters.get("rejected", 0),
        "dead_letter": counters.get("dead_letter", 0),
        "last_error": last_error,
        "next_retry_s": next_retry_s,
        "consecutive_failures": failures,
        "errors_total": errors_total,
        "alert": alert,
        "last_success": last_success,
    }


@dataclass
class _FlushRun:
    """One flush: its deadline, the backlog it is for (readings up to seq ``target``, ``total``
    of them at the start), and what it moved so far."""

    deadline: float
    timeout: float
    target: int
    total: int
    progress: Callable[[int, int], None]
    cancelled: Callable[[], bool] | None
    moved: Moved = field(default_factory=Moved)

    def is_cancelled(self) -> bool:
        return self.cancelled is not None and self.cancelled()

    def after_batch(self) -> None:
        done = self.moved.delivered + self.moved.rejected
        self.progress(done, max(self.total, done))


def _guarded(progress: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
    """A progress callback that cannot break a flush (e.g. the client went away)."""

    def report(done: int, total: int) -> None:
        if progress is None:
            return
        try:
            progress(done, total)
        except Exception:
            log.debug("flush progress callback failed", exc_info=True)

    return report


class BatchTimer:
    """When a partial batch is due: ``flush_interval`` after its oldest reading was taken.

    :meth:`mark` (any thread) says when the readings of a commit were taken; a commit nobody
    marked counts from when :meth:`due_at` first saw it. Everything else runs on one thread.
    """

    def __init__(self, flush_interval: float) -> None:
        self._interval = flush_interval
        self._lock = threading.Lock()  # guards _marks only
        # (highest seq committed, clock() when the oldest of those readings was taken), posted
        # by the sampler and merged into _seen by the delivery thread.
        self._marks: list[tuple[int, float]] = []
        # (highest committed seq, when its readings started waiting), oldest first.
        self._seen: deque[tuple[int, float]] = deque()

    def restart(self, committed: int, now: float) -> None:
        """The worker starts: readings up to seq ``committed`` (from before) are due at once."""
        self._seen.clear()
        self._seen.append((committed, now - self._interval))

    def mark(self, upto: int, taken_at: float) -> None:
        """Readings up to seq ``upto`` were committed, the oldest new one taken at ``taken_at``."""
        with self._lock:
            self._marks.append((upto, taken_at))

    def clear(self) -> None:
        """The backlog is empty: forget the timers of readings that are gone."""
        self._seen.clear()

    def due_at(self, oldest_seq: int, committed: int, now: float) -> float:
        """When the timer of the oldest unsent reading (``oldest_seq``) runs out, ``committed``
        being the highest committed seq at ``now``."""
        with self._lock:
            marks, self._marks = self._marks, []
        for upto, taken_at in marks:
            self._merge(upto, taken_at)
        if not self._seen or self._seen[-1][0] < committed:
            self._seen.append((committed, now))
        while self._seen and self._seen[0][0] < oldest_seq:
            self._seen.popleft()
        first_seen = self._seen[0][1] if self._seen else now
        return first_seen + self._interval

    def _merge(self, upto: int, taken_at: float) -> None:
        """Put a mark into _seen: a new entry, or an earlier start for the entry covering
        ``upto`` (the delivery thread may have noticed that commit first, timing it from then)."""
        if not self._seen or self._seen[-1][0] < upto:
            self._seen.append((upto, taken_at))
            return
        for i, (seq, seen_at) in enumerate(self._seen):
            if seq >= upto:
                self._seen[i] = (seq, min(seen_at, taken_at))
                return


@dataclass(frozen=True)
class HealthSnapshot:
    """The health fields of ``status``, read together."""

    connected: bool | None
    last_error: str | None
    next_retry_s: float | None
    failures: int
    errors_total: int
    alert: dict[str, object] | None
    last_success: str | None


class DeliveryHealth:
    """How delivery to one backend is going: failures in a row and the backoff they set, the
    last error and success, and (through the :class:`Alerter`) the alert. Thread-safe.

    A failed attempt waits ``min(base·2^(n−1), max)`` plus jitter, at least the server's
    Retry-After; any answer from the backend ends the episode (logged once, emitted as
    ``"recovered"``).
    """

    def __init__(
        self,
        backend: str,
        settings: DeliverySettings,
        alerter: Alerter,
        *,
        clock: Callable[[], float],
        rng: Callable[[], float],
        wall_clock_ns: Callable[[], int],
        emit: Emit,
    ) -> None:
        self._backend = backend
        self._base = settings.backoff_base
        self._max = settings.backoff_max
        self._alerter = alerter
        self._clock = clock
        self._rng = rng
        self._wall_ns = wall_clock_ns
        self._emit = emit
        self._lock = threading.Lock()  # never held during I/O (the alerter's lock nests inside)
        self._failures = 0
        self._errors_total = 0  # every failed attempt since start (Telegraf-style self-metric)
        self._connected: bool | None = None  # None until the first attempt
        self._last_error: str | None = None
        self._retry_at: float | None = None
        self._last_success_ns: int | None = None
        # Delivery-thread only: consecutive unexpected errors, and the last one's text.
        self._internal_failures = 0
        self._internal_error: str | None = None

    def retry_at(self) -> float | None:
        """When the backoff after the last failure ends (clock seconds); None: not backing off."""
        with self._lock:
            return self._retry_at

    def succeeded(self, reached_backend_only: bool = False) -> None:
        """The backend answered: a delivery, or (``reached_backend_only``) a refusal of the data
        itself, which proves the connection but delivered nothing."""
        with self._lock:
            recovered = self._failures
            self._failures = 0
            self._retry_at = None
            self._connected = True
            had_alert = self._alerter.succeeded()
            if not reached_backend_only:
                self._last_success_ns = self._wall_ns()
        if recovered:
            log.info("delivery to %s recovered after %d failed attempts", self._backend, recovered)
            self._emit(
                "recovered",
                {"backend": self._backend, "failures": recovered, "had_alert": had_alert},
            )

    def failed(self, result: WriteResult) -> None:
        """A RETRY or AUTH answer: count it, set the backoff, log, and alert when due."""
        message = describe(result)
        with self._lock:
            self._failures += 1
            self._errors_total += 1
            failures = self._failures
            self._connected = False
            self._last_error = message
            delay = retry_delay(failures, self._base, self._max, self._rng(), result.retry_after_s)
            self._retry_at = self._clock() + delay
            # Decided with the count, so that status never shows one without the other.
            kind = self._alerter.failed(message, failures, auth=result.outcome is Outcome.AUTH)
        if failures == 1:
            log.warning(
                "delivery to %s failed (%s); keeping the backlog, retrying in %.1f s",
                self._backend,
                message,
                delay,
            )
        else:
            log.debug("delivery to %s failed again (%d): %s", self._backend, failures, message)
        if kind is not None:
            self._alerter.fire(kind, message, failures)

    def internal_failure(self, exc: Exception) -> float:
        """An unexpected error in a step (e.g. the history cannot record an ack): logged with its
        traceback once per distinct error, counted; returns the backoff before the next try."""
        text = f"internal error: {type(exc).__name__}: {exc}"
        if text != self._internal_error:
            log.exception("delivery to %s hit an unexpected error", self._backend)
        else:
            log.debug("delivery to %s: %s (again)", self._backend, text)
        self._internal_error = text
        self._internal_failures += 1
        with self._lock:
            self._last_error = text
            self._errors_total += 1
        return retry_delay(self._internal_failures, self._base, self._max, self._rng())

    def internal_ok(self) -> None:
        """A step ran without an unexpected error."""
        self._internal_failures, self._internal_error = 0, None

    def snapshot(self) -> HealthSnapshot:
        now = self._clock()
        with self._lock:
            retry_at = self._retry_at
            return HealthSnapshot(
                connected=self._connected,
                last_error=self._last_error,
                next_retry_s=None if retry_at is None else max(0.0, retry_at - now),
                failures=self._failures,
                errors_total=self._errors_total,
                alert=self._alerter.current(),
                last_success=(
                    None if self._last_success_ns is None else iso_utc(self._last_success_ns)
                ),
            )
