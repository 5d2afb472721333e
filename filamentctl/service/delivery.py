"""The delivery engine: one thread that drains the history's backlog into the configured sink.

Batches go out oldest first when ``writer.batch_size`` readings are waiting or when the oldest
waiting reading was taken ``writer.flush_interval`` seconds ago (as told by :meth:`committed`; a
commit it was not told about counts from when it noticed it). The sampler asks
:meth:`DeliveryWorker.wants_commit` after every reading, so a batch that is due does not wait
for the next periodic commit of the history; a large backlog drains batch
after batch without pause; with a sink that can send a prepared body (:class:`PipelinedSink`, e.g.
VictoriaMetrics) the next batch is fetched and encoded while the backend stores the current one,
and sent only once that one was acknowledged. Per batch the sink's
:class:`~filamentctl.core.outcome.Outcome` decides: ACK advances the cursor, SPLIT halves and
resends, REJECT moves the batch to the dead-letter table, AUTH and RETRY keep everything and back
off (``retry.backoff_base``/``retry.backoff_max`` with jitter, at least the server's Retry-After).
After ``retry.alert_threshold`` consecutive failures, or at once for an authentication failure, an
alert fires once per episode: logged, passed to ``on_event``, shown in ``status()`` and, if
``retry.alert_command`` is set, run as a shell command with the details in its environment. Nothing
leaves the history unless the backend took it, it was dead-lettered, or the backlog cap dropped it
(counted).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from filamentctl.core.backoff import retry_delay, split_batch
from filamentctl.core.outcome import Outcome, WriteResult
from filamentctl.core.reading import Reading, ReadingRow, iso_utc
from filamentctl.sinks.base import PipelinedSink, Sink
from filamentctl.store.history import History

log = logging.getLogger("filamentctl.delivery")

CAP_CHECK_INTERVAL_S = 10.0  # how often drops by the backlog cap are reported (commits apply it)
RETENTION_INTERVAL_S = 3600.0  # how often old delivered readings are deleted
IDLE_WAIT_S = 60.0  # longest sleep with nothing to do (wake() normally ends it sooner)
CANCEL_CHECK_S = 0.5  # how often a waiting flush asks whether it was cancelled
ALERT_COMMAND_TIMEOUT_S = 60.0  # an alert command still running after this is killed
# Longest a pipelined drain holds the send lock in one go; restarting it costs one batch whose
# encoding does not overlap the backend's work, so a few seconds lose almost nothing.
PIPELINE_RUN_S = 2.0

EventCallback = Callable[[str, dict[str, Any]], None]
AlertRunner = Callable[[dict[str, str]], None]


@dataclass
class _Progress:
    """What one delivery attempt moved out of the backlog."""

    delivered: int = 0
    rejected: int = 0


class DeliveryWorker:
    """Delivers committed readings from ``history`` to ``sink`` on a thread named "delivery".

    ``clock`` (monotonic seconds) computes deadlines and backoff; ``rng`` supplies jitter in
    [0, 1); ``wall_clock_ns`` stamps ``last_success``/alerts and ages the backlog. ``on_event``
    receives ``("alert" | "recovered" | "rejected" | "dropped", details)`` from the delivery
    thread (or the thread calling ``flush``) and must not block. ``run_alert`` replaces how
    ``retry.alert_command`` is started (it receives the FILAMENTCTL_ALERT_* variables).
    """

    def __init__(
        self,
        history: History,
        sink: Sink,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        on_event: EventCallback | None = None,
        run_alert: AlertRunner | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._history = history
        self._sink = sink
        self._name = str(sink.name)
        self._batch_size = max(int(settings["writer.batch_size"]), 1)
        self._flush_interval = max(float(settings["writer.flush_interval"]), 0.0)
        self._backoff_base = float(settings["retry.backoff_base"])
        self._backoff_max = float(settings["retry.backoff_max"])
        self._alert_threshold = int(settings["retry.alert_threshold"])
        self._alert_command = str(settings.get("retry.alert_command") or "").strip()
        self._clock = clock
        self._rng = rng
        self._wall_ns = wall_clock_ns
        self._on_event = on_event
        self._run_alert: AlertRunner = run_alert or self._spawn_alert_command
        self._idle_wait = min(max(self._flush_interval, 1.0), IDLE_WAIT_S)

        self._wake_event = threading.Event()
        self._stop_event = threading.Event()
        self._send_lock = threading.Lock()  # one batch in flight at a time (worker or flush)
        self._state_lock = threading.Lock()  # status fields; never held during I/O
        self._thread: threading.Thread | None = None
        self._stop_deadline = 0.0

        # Delivery state (guarded by _state_lock).
        self._failures = 0
        self._errors_total = 0  # every failed attempt since start (Telegraf-style self-metric)
        self._internal_failures = 0  # consecutive unexpected errors (worker thread only)
        self._internal_error: str | None = None
        self._connected: bool | None = None  # None until the first attempt
        self._last_error: str | None = None
        self._retry_at: float | None = None
        self._alert: dict[str, Any] | None = None
        self._alerted_kinds: set[str] = set()
        self._last_success_ns: int | None = None
        self._dropping = False

        # Worker-thread-only bookkeeping: (highest committed seq, when first seen) pairs, so the
        # interval timer runs from when the oldest unsent reading was committed.
        self._seen: deque[tuple[int, float]] = deque()
        # (highest seq committed, clock() when the oldest of those readings was taken), posted
        # by committed() from the sampler and merged into _seen by the worker (_state_lock).
        self._marks: list[tuple[int, float]] = []
        self._next_cap_check = 0.0
        self._next_retention = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread. A backlog left from before is due at once."""
        if self._thread is not None:
            return
        self._history.ensure_cursor(self._name)
        self._stop_event.clear()
        now = self._clock()
        self._seen.clear()
        self._seen.append((self._history.last_committed_seq(), now - self._flush_interval))
        self._next_cap_check = now
        self._next_retention = now
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
            with self._state_lock:
                self._marks.append((upto_seq, oldest_at))
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
        with self._state_lock:
            retry_at = self._retry_at
        if retry_at is not None and now < retry_at:
            return False
        # The seq span, not COUNT(*): this runs after every reading, and it never undercounts.
        waiting = self._history.last_committed_seq() - self._history.cursor(self._name)
        if waiting >= self._batch_size:
            return False
        if waiting + pending >= self._batch_size:
            return True
        return oldest_at is not None and now - oldest_at >= self._flush_interval

    def stop(self, timeout: float) -> None:
        """Stop gracefully: one last attempt to deliver what is committed, within ``timeout`` s.

        Whatever is not delivered by then stays in the history for the next start. Returns after
        at most about ``timeout`` seconds even if the backend hangs (the thread is a daemon).
        """
        thread = self._thread
        if thread is None:
            return
        self._stop_deadline = self._clock() + max(timeout, 0.0)
        self._stop_event.set()
        self._wake_event.set()
        thread.join(max(timeout, 0.0) + 0.5)
        if thread.is_alive():
            log.warning(
                "delivery to %s still busy after %.1f s; undelivered readings stay in the "
                "local history for the next start",
                self._name,
                timeout,
            )
        else:
            self._thread = None

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
                wait = self._cycle()
                self._internal_failures, self._internal_error = 0, None
            except Exception as exc:  # the thread must survive anything (e.g. a locked database)
                wait = self._internal_failure(exc)
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

    def _internal_failure(self, exc: Exception) -> float:
        """An unexpected error in a cycle (e.g. the history cannot record an ack): logged once
        per distinct error, counted, and retried with the same backoff as a failed write."""
        text = f"internal error: {type(exc).__name__}: {exc}"
        if text != self._internal_error:
            log.exception("delivery to %s hit an unexpected error", self._name)
        else:
            log.debug("delivery to %s: %s (again)", self._name, text)
        self._internal_error = text
        self._internal_failures += 1
        with self._state_lock:
            self._last_error = text
            self._errors_total += 1
        return retry_delay(
            self._internal_failures, self._backoff_base, self._backoff_max, self._rng()
        )

    def _cycle(self) -> float:
        """Do what is due now; return how long to sleep before the next look."""
        now = self._clock()
        next_look = self._maintain(now)
        with self._state_lock:
            retry_at = self._retry_at
        if retry_at is not None and now < retry_at:
            return min(retry_at - now, next_look - now)

        with self._send_lock:
            batch = self._history.backlog(self._name, self._batch_size)
            if not batch:
                self._seen.clear()
                # wake() normally ends this sleep; the poll only bounds latency if nobody calls it.
                return min(self._idle_wait, next_look - now)
            due_at = self._due_at(batch[0].seq, now)
            if len(batch) < self._batch_size and now < due_at:
                return min(due_at - now, next_look - now)
            progress = _Progress()
            if len(batch) >= self._batch_size and isinstance(self._sink, PipelinedSink):
                # A backlog: drain full batches with one in flight, for a bounded time so a
                # flush() or stop() is not kept waiting for the lock.
                run_until = now + PIPELINE_RUN_S
                failure = self._pipeline(
                    self._sink,
                    progress,
                    full_only=True,
                    should_stop=lambda: self._stop_event.is_set() or self._clock() >= run_until,
                )
            else:
                failure = self._deliver(batch, progress)
        if failure is not None:
            self._note_failure(failure)
            return 0.0  # the next cycle computes the backoff wait
        return 0.0  # a large backlog drains without pause

    def _due_at(self, oldest_seq: int, now: float) -> float:
        """When the interval timer of the oldest unsent reading (``oldest_seq``) runs out."""
        committed = self._history.last_committed_seq()
        with self._state_lock:
            marks, self._marks = self._marks, []
        for upto, taken_at in marks:
            self._merge_mark(upto, taken_at)
        if not self._seen or self._seen[-1][0] < committed:
            self._seen.append((committed, now))
        while self._seen and self._seen[0][0] < oldest_seq:
            self._seen.popleft()
        first_seen = self._seen[0][1] if self._seen else now
        return first_seen + self._flush_interval

    def _merge_mark(self, upto: int, taken_at: float) -> None:
        """Put what committed() said into _seen: a new entry, or an earlier start for the entry
        covering ``upto`` (the worker may have noticed that commit first, timing it from then)."""
        if not self._seen or self._seen[-1][0] < upto:
            self._seen.append((upto, taken_at))
            return
        for i, (seq, seen_at) in enumerate(self._seen):
            if seq >= upto:
                self._seen[i] = (seq, min(seen_at, taken_at))
                return

    def _final_drain(self) -> None:
        """After stop(): deliver what is committed until done, a failure, or the deadline."""
        while self._clock() < self._stop_deadline:
            with self._send_lock:
                if isinstance(self._sink, PipelinedSink):
                    if not self._history.backlog_rows(self._name, 1):
                        return
                    failure = self._pipeline(
                        self._sink,
                        _Progress(),
                        should_stop=lambda: self._clock() >= self._stop_deadline,
                    )
                else:
                    batch = self._history.backlog(self._name, self._batch_size)
                    if not batch:
                        return
                    failure = self._deliver(batch, _Progress())
            if failure is not None:
                self._note_failure(failure)
                break
        left = self._history.backlog_count(self._name)
        if left:
            log.info(
                "delivery stopped with %d readings kept in the local history for the next start",
                left,
            )

    def _maintain(self, now: float) -> float:
        """Enforce the backlog cap and retention when due; returns when to come back."""
        periodic = now >= self._next_cap_check
        if periodic:
            self._next_cap_check = now + CAP_CHECK_INTERVAL_S
        self._enforce_cap(periodic)
        if now >= self._next_retention:
            self._next_retention = now + RETENTION_INTERVAL_S
            removed = self._history.apply_retention(self._wall_ns())
            if removed:
                log.info("retention removed %d old readings from the local history", removed)
        return min(self._next_cap_check, self._next_retention)

    def _enforce_cap(self, periodic: bool) -> None:
        """Report the cap's drops once per episode, on the first cycle after a drop (each commit
        applies the cap itself and wakes this thread). ``periodic``: also apply a cap lowered
        while running, and see whether the episode ended — once the backlog is back under the
        cap, i.e. delivery caught up, not merely when no commit came since the last look."""
        if periodic:
            self._history.enforce_cap(self._name)
        dropped = self._history.take_cap_drops(self._name)
        with self._state_lock:
            was_dropping = self._dropping
        if dropped and not was_dropping:
            with self._state_lock:
                self._dropping = True
            # Reported once per episode; the running total is in status()["dropped"].
            log.warning(
                "backlog for %s exceeded storage.max_backlog=%d: dropped the %d oldest unsent "
                "readings (further drops are counted in status)",
                self._name,
                self._history.max_backlog,
                dropped,
            )
            self._emit("dropped", {"backend": self._name, "dropped": dropped})
        elif (
            periodic
            and was_dropping
            and not dropped
            and self._history.backlog_count(self._name) < self._history.max_backlog
        ):
            with self._state_lock:
                self._dropping = False
            log.info("backlog for %s is back under storage.max_backlog", self._name)

    # -- sending -----------------------------------------------------------------------------

    def _deliver(self, batch: Sequence[Reading], progress: _Progress) -> WriteResult | None:
        """Send one batch (call with _send_lock held); None when all of it left the backlog.

        Returns the RETRY/AUTH result that stopped it otherwise (earlier parts stay acked).
        """
        return self._settle(batch, self._write(batch), progress)

    def _settle(
        self, batch: Sequence[Reading], result: WriteResult, progress: _Progress
    ) -> WriteResult | None:
        """Act on the sink's answer for ``batch`` (see :meth:`_deliver`)."""
        if result.outcome is Outcome.ACK:
            self._history.ack(self._name, batch[-1].seq, len(batch))
            progress.delivered += len(batch)
            self._note_success()
            return None
        if result.outcome is Outcome.SPLIT:
            if len(batch) == 1:
                message = result.message or "too large"
                self._dead_letter(batch, result.status, f"single reading {message}", progress)
                return None
            older, newer = split_batch(batch)
            log.debug("%s: batch of %d too large, splitting", self._name, len(batch))
            failure = self._deliver(older, progress)
            if failure is not None:
                return failure
            return self._deliver(newer, progress)
        if result.outcome is Outcome.REJECT:
            self._dead_letter(batch, result.status, result.message, progress)
            return None
        return result

    def _pipeline(
        self,
        sink: PipelinedSink,
        progress: _Progress,
        *,
        upto: int | None = None,
        full_only: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        after_batch: Callable[[], None] = lambda: None,
    ) -> WriteResult | None:
        """Drain the backlog with one batch in flight (call with _send_lock held).

        While the backend works on batch N (the thread waits on the socket, the GIL is free),
        batch N+1 is fetched and encoded; it is sent as soon as N's answer came back, and only if
        N was acknowledged, so acks stay strictly in order and nothing is sent past a failure.
        Any other answer for N is settled exactly as :meth:`_deliver` would (split, dead letter),
        after which the drain goes on. Stops when the backlog (readings up to seq ``upto``) is
        empty, when only a partial batch is left and ``full_only``, or once ``should_stop()``
        (asked before each new batch) says so; the batch in flight is still settled. Returns
        the RETRY/AUTH result that stopped it, else None. ``after_batch`` runs after each ack.
        """
        debug = log.isEnabledFor(logging.DEBUG)
        last_sent = self._history.cursor(self._name)
        in_flight: list[ReadingRow] | None = None  # the rows of the batch awaiting its answer
        try:
            while True:
                rows: list[ReadingRow] = []
                body = b""
                failed: WriteResult | None = None  # preparing the next batch failed
                if not should_stop():
                    rows = self._history.backlog_rows(
                        self._name, self._batch_size, after=last_sent, upto=upto
                    )
                    if full_only and len(rows) < self._batch_size:
                        rows = []
                if rows:
                    if debug:
                        _log_preview(self._name, [Reading(*row) for row in rows])
                    try:
                        body = sink.prepare(rows)
                    except Exception as exc:  # a sink bug must not lose data: retry later
                        failed = _raised(self._name, "prepare", exc)
                if in_flight is not None:
                    sent, in_flight = in_flight, None
                    result = self._receive(sink)
                    if result.outcome is Outcome.ACK:
                        if rows and failed is None:
                            # The next batch leaves before this ack's disk write.
                            sink.send_prepared(body)
                            in_flight, last_sent = rows, rows[-1][1]
                        self._history.ack(self._name, sent[-1][1], len(sent))
                        progress.delivered += len(sent)
                        self._note_success()
                        after_batch()
                        if in_flight is not None:
                            continue
                    else:
                        # Nothing after ``sent`` is on the wire: settle it on its own (a
                        # 413 resends halves through write()), then send what was prepared.
                        failure = self._settle([Reading(*row) for row in sent], result, progress)
                        after_batch()
                        if failure is not None:
                            return failure
                if failed is not None:
                    return failed
                if not rows:
                    return None
                sink.send_prepared(body)
                in_flight, last_sent = rows, rows[-1][1]
        finally:
            if in_flight is not None:  # an error (e.g. the ack's disk write): never read
                sink.abort()

    def _past(self, moment: float) -> bool:
        return self._clock() >= moment

    def _receive(self, sink: PipelinedSink) -> WriteResult:
        try:
            return sink.receive()
        except Exception as exc:  # a sink bug must not stop delivery or lose data: retry
            sink.abort()
            return _raised(self._name, "receive", exc)

    def _dead_letter(
        self, batch: Sequence[Reading], status: int | None, error: str, progress: _Progress
    ) -> None:
        entry = self._history.reject(self._name, batch, status, error or "rejected")
        progress.rejected += len(batch)
        log.warning(
            "%s rejected %d readings (seq %d-%d, HTTP %s: %s); moved to dead-letter entry %d",
            self._name,
            len(batch),
            batch[0].seq,
            batch[-1].seq,
            status,
            error,
            entry,
        )
        # The backend answered, so the connection itself is fine.
        self._note_success(reached_backend_only=True)
        self._emit(
            "rejected",
            {"backend": self._name, "count": len(batch), "status": status, "error": error},
        )

    def _write(self, batch: Sequence[Reading]) -> WriteResult:
        if log.isEnabledFor(logging.DEBUG) and batch:
            _log_preview(self._name, batch)
        try:
            return self._sink.write(batch)
        except Exception as exc:  # a sink bug must not stop delivery or lose data: retry
            return _raised(self._name, "write", exc)

    def _note_success(self, *, reached_backend_only: bool = False) -> None:
        with self._state_lock:
            recovered = self._failures
            had_alert = self._alert is not None
            self._failures = 0
            self._retry_at = None
            self._connected = True
            self._alert = None
            self._alerted_kinds.clear()
            if not reached_backend_only:
                self._last_success_ns = self._wall_ns()
        if recovered:
            log.info("delivery to %s recovered after %d failed attempts", self._name, recovered)
            self._emit(
                "recovered",
                {"backend": self._name, "failures": recovered, "had_alert": had_alert},
            )

    def _note_failure(self, result: WriteResult) -> None:
        message = _describe(result)
        with self._state_lock:
            self._failures += 1
            self._errors_total += 1
            failures = self._failures
            self._connected = False
            self._last_error = message
            delay = retry_delay(
                failures, self._backoff_base, self._backoff_max, self._rng(), result.retry_after_s
            )
            self._retry_at = self._clock() + delay
            # One alert per episode; an auth failure after a generic alert still gets its own,
            # because it needs a different fix (credentials, not the network).
            kind: str | None = None
            if result.outcome is Outcome.AUTH and "auth" not in self._alerted_kinds:
                kind = "auth"
            elif 0 < self._alert_threshold <= failures and not self._alerted_kinds:
                kind = "delivery"
            if kind is not None:
                self._alerted_kinds.add(kind)
                self._alert = {"kind": kind, "message": message, "since": iso_utc(self._wall_ns())}
        if failures == 1:
            log.warning(
                "delivery to %s failed (%s); keeping the backlog, retrying in %.1f s",
                self._name,
                message,
                delay,
            )
        else:
            log.debug("delivery to %s failed again (%d): %s", self._name, failures, message)
        if kind is not None:
            self._raise_alert(kind, message, failures)

    def _raise_alert(self, kind: str, message: str, failures: int) -> None:
        try:
            backlog = self._history.backlog_count(self._name)
        except Exception:
            backlog = -1
        if kind == "auth":
            text = f"{self._name} refused our credentials ({message}); check the token/password"
        else:
            text = f"{failures} consecutive delivery failures to {self._name} ({message})"
        log.error("alert: %s; %d readings kept", text, backlog)
        details = {
            "kind": kind,
            "message": text,
            "failures": failures,
            "backend": self._name,
            "backlog": backlog,
        }
        self._emit("alert", details)
        if self._alert_command:
            env = {
                "FILAMENTCTL_ALERT_KIND": kind,
                "FILAMENTCTL_ALERT_MESSAGE": text,
                "FILAMENTCTL_ALERT_FAILURES": str(failures),
                "FILAMENTCTL_ALERT_BACKEND": self._name,
                "FILAMENTCTL_ALERT_BACKLOG": str(backlog),
            }
            try:
                self._run_alert(env)
            except Exception as exc:
                log.error("retry.alert_command could not be started: %s", exc)

    def _spawn_alert_command(self, env: dict[str, str]) -> None:
        """Start ``retry.alert_command`` via the shell; a helper thread reaps it (never blocks)."""
        proc = subprocess.Popen(
            self._alert_command,
            shell=True,
            env=_alert_environment(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def reap() -> None:
            try:
                code = proc.wait(ALERT_COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                log.warning(
                    "retry.alert_command still running after %.0f s; killed",
                    ALERT_COMMAND_TIMEOUT_S,
                )
                return
            if code != 0:
                log.warning("retry.alert_command exited with status %d", code)

        threading.Thread(target=reap, name="alert-command", daemon=True).start()

    def _emit(self, event: str, details: dict[str, Any]) -> None:
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
        delivered is lost.
        """
        deadline = self._clock() + max(timeout, 0.0)
        self._history.ensure_cursor(self._name)
        target = self._history.last_committed_seq()
        total = self._history.backlog_count(self._name)
        moved = _Progress()
        error: str | None = None
        report = _guarded(progress)
        report(0, total)

        def after_batch() -> None:
            done = moved.delivered + moved.rejected
            report(done, max(total, done))

        while True:
            if cancelled is not None and cancelled():
                error = "cancelled: the client that asked went away"
                break
            with self._send_lock:
                if isinstance(self._sink, PipelinedSink):
                    if not self._history.backlog_rows(self._name, 1, upto=target):
                        break
                    if self._clock() >= deadline:
                        error = error or f"timed out after {timeout:g} s"
                        break
                    # Bounded runs: the lock is let go now and then (worker, stop()).
                    run_until = min(deadline, self._clock() + PIPELINE_RUN_S)
                    failure = self._pipeline(
                        self._sink,
                        moved,
                        upto=target,
                        should_stop=functools.partial(self._past, run_until),
                        after_batch=after_batch,
                    )
                else:
                    batch = [
                        r
                        for r in self._history.backlog(self._name, self._batch_size)
                        if r.seq <= target
                    ]
                    if not batch:
                        break
                    if self._clock() >= deadline:
                        error = error or f"timed out after {timeout:g} s"
                        break
                    failure = self._deliver(batch, moved)
                    after_batch()
            if failure is None:
                continue
            self._note_failure(failure)
            error = _describe(failure)
            if failure.outcome is Outcome.AUTH:
                break
            with self._state_lock:
                retry_at = self._retry_at
            wait = (retry_at if retry_at is not None else 0.0) - self._clock()
            if self._clock() + wait >= deadline or self._wait_unless(wait, cancelled):
                break
        # The flush's job was the backlog as it stood when it started: readings committed while
        # it ran are not "remaining" (they go out with the next batch, as usual).
        remaining = self._history.backlog_count(self._name, upto=target)
        ok = remaining == 0
        self._wake_event.set()  # the worker re-plans: its backoff may be over now
        return {
            "delivered": moved.delivered,
            "remaining": remaining,
            "ok": ok,
            "error": None if ok else error,
            "dead_lettered": moved.rejected,
        }

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
                failure = self._write_all(readings)
            if failure is None:
                self._history.deadletter_purge([entry], delivered=True)
                replayed += 1
                count += len(readings)
            else:
                failed.append(entry)
                error = _describe(failure)
        return {
            "replayed": replayed,
            "readings": count,
            "failed": failed,
            "ok": not failed,
            "error": error,
        }

    def _write_all(self, readings: Sequence[Reading]) -> WriteResult | None:
        """Send readings outside the backlog (replays): batches, halving on SPLIT."""
        for start in range(0, len(readings), self._batch_size):
            pending: list[Sequence[Reading]] = [readings[start : start + self._batch_size]]
            while pending:
                part = pending.pop(0)
                result = self._write(part)
                if result.outcome is Outcome.SPLIT and len(part) > 1:
                    older, newer = split_batch(part)
                    pending[:0] = [older, newer]
                elif result.outcome is not Outcome.ACK:
                    return result
        return None

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The delivery part of ``filamentctl status`` (JSON-ready)."""
        counters = self._history.counters()
        backlog = self._history.backlog_count(self._name)
        oldest = self._history.oldest_unsent_ns(self._name)
        now = self._clock()
        with self._state_lock:
            retry_at = self._retry_at
            alert = dict(self._alert) if self._alert else None
            out: dict[str, Any] = {
                "backend": self._name,
                "connected": self._connected,
                "backlog": backlog,
                "oldest_unsent_age_s": (
                    None if oldest is None else max(0.0, (self._wall_ns() - oldest) / 1e9)
                ),
                "written": counters["written"],
                "dropped": counters["dropped"],
                "rejected": counters["rejected"],
                "dead_letter": counters["dead_letter"],
                "last_error": self._last_error,
                "next_retry_s": None if retry_at is None else max(0.0, retry_at - now),
                "consecutive_failures": self._failures,
                "errors_total": self._errors_total,
                "alert": alert,
                "last_success": (
                    None if self._last_success_ns is None else iso_utc(self._last_success_ns)
                ),
            }
        return out


# What the user's alert command inherits from the service's environment: enough to run a shell
# command, and never the service's secrets (config key, Vault tokens, FILAMENTCTL_* overrides).
ALERT_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SHELL")


def _alert_environment(details: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ALERT_ENV_KEEP}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**env, **details}


PREVIEW_POINTS = 3


def _log_preview(backend: str, batch: Sequence[Reading]) -> None:
    """``--debug``: what is about to be written (readings only: no URL, no credentials)."""
    import json

    log.debug(
        "batch ready for %s: %d readings, #%d-#%d",
        backend,
        len(batch),
        batch[0].seq,
        batch[-1].seq,
    )
    shown = list(batch[:PREVIEW_POINTS])
    if len(batch) > PREVIEW_POINTS:
        shown.append(batch[-1])
    for r in shown:
        log.debug("  #%d %s %s", r.seq, iso_utc(r.time_ns), json.dumps(r.fields()))


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


def _raised(backend: str, method: str, exc: Exception) -> WriteResult:
    """A sink method raised: a RETRY result naming the exception (the data stays)."""
    log.debug("%s.%s raised", backend, method, exc_info=True)
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return WriteResult(Outcome.RETRY, None, f"{type(exc).__name__}: {text}".rstrip(": "))


def _describe(result: WriteResult) -> str:
    """One line for logs and status: HTTP status (if any) and the sink's message."""
    text = result.message or result.outcome.value
    return f"HTTP {result.status}: {text}" if result.status is not None else text
