"""Sending the backlog: one drain step, and what each answer of the sink does to the backlog.

:meth:`BatchSender.drain` is the one step every delivery path takes (the worker's cycle, its last
drain at stop, a flush): given the oldest waiting batch, it sends it with :meth:`Sink.write`, or,
with a :class:`PipelinedSink`, drains batch after batch with one in flight
(:class:`PipelinedDrain`). Per batch the sink's :class:`~filamentctl.core.outcome.Outcome`
decides: ACK advances the cursor, SPLIT halves and resends, REJECT moves the batch to the
dead-letter table; RETRY and AUTH keep everything and are returned to the caller, which backs off.
A sink that raises counts as RETRY (a bug in a sink must neither stop delivery nor lose data).
Call everything here with the worker's send lock held: one batch in flight per backend.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import starmap
from typing import TYPE_CHECKING

from filamentctl.core.backoff import split_batch
from filamentctl.core.outcome import Outcome, WriteResult
from filamentctl.core.reading import Reading, ReadingRow, iso_utc
from filamentctl.service.alerts import Emit
from filamentctl.sinks.base import PipelinedSink, Sink

if TYPE_CHECKING:
    from filamentctl.store.history import History

log = logging.getLogger("filamentctl.delivery")

PREVIEW_POINTS = 3  # readings of each batch that --debug shows


def _never() -> bool:
    return False


def _nothing() -> None:
    pass


@dataclass
class Moved:
    """What one delivery run moved out of the backlog."""

    delivered: int = 0
    rejected: int = 0


class BatchSender:
    """Sends ``history``'s backlog to ``sink`` in batches of ``batch_size`` and settles answers.

    ``succeeded(reached_backend_only)`` is told of every answer that is not a failure (a dead
    letter reached the backend too, but delivered nothing); ``emit`` gets ``("rejected", ...)``.
    """

    def __init__(
        self,
        history: History,
        sink: Sink,
        batch_size: int,
        *,
        succeeded: Callable[[bool], None],
        emit: Emit,
    ) -> None:
        self.history = history
        self.sink = sink
        self.name = str(sink.name)
        self.batch_size = batch_size
        self._succeeded = succeeded
        self._emit = emit
        # Decided once: the sink cannot change its kind.
        self._pipelined: PipelinedSink | None = sink if isinstance(sink, PipelinedSink) else None

    def next_batch(self, upto: int | None = None) -> list[ReadingRow]:
        """The oldest waiting readings (up to ``batch_size``, none newer than seq ``upto``)."""
        return self.history.backlog_rows(self.name, self.batch_size, upto=upto)

    def drain(
        self,
        first: list[ReadingRow],
        moved: Moved,
        *,
        upto: int | None = None,
        full_only: bool = False,
        should_stop: Callable[[], bool] = _never,
        after_batch: Callable[[], None] = _nothing,
    ) -> WriteResult | None:
        """Send ``first`` (from :meth:`next_batch`) — and, with a pipelined sink, what follows.

        A pipelined sink drains on until the backlog (up to seq ``upto``) is empty, only a
        partial batch is left and ``full_only``, or ``should_stop()`` (asked before each new
        batch); with ``full_only`` a partial ``first`` goes out as one plain write. Returns the
        RETRY/AUTH result that stopped it (everything from that batch on stays in the backlog),
        else None. ``after_batch`` runs after each batch was settled. Raises what the history
        raises (e.g. a full disk while recording an ack): what was not recorded is resent later.
        """
        sink = self._pipelined
        if sink is not None and (not full_only or len(first) >= self.batch_size):
            run = PipelinedDrain(
                self,
                sink,
                moved,
                upto=upto,
                full_only=full_only,
                should_stop=should_stop,
                after_batch=after_batch,
            )
            return run.run(first)
        failure = self.deliver(list(starmap(Reading, first)), moved)
        after_batch()
        return failure

    def deliver(self, batch: Sequence[Reading], moved: Moved) -> WriteResult | None:
        """Send one batch and settle the answer; None when all of it left the backlog.

        Returns the RETRY/AUTH result that stopped it otherwise (earlier parts stay acked).
        """
        return self.settle(batch, self.write(batch), moved)

    def settle(
        self, batch: Sequence[Reading], result: WriteResult, moved: Moved
    ) -> WriteResult | None:
        """Act on the sink's answer for ``batch`` (see :meth:`deliver`)."""
        if result.outcome is Outcome.ACK:
            self.acked(batch[-1].seq, len(batch), moved)
            return None
        if result.outcome is Outcome.SPLIT:
            if len(batch) == 1:
                message = result.message or "too large"
                self._dead_letter(batch, result.status, f"single reading {message}", moved)
                return None
            older, newer = split_batch(batch)
            log.debug("%s: batch of %d too large, splitting", self.name, len(batch))
            failure = self.deliver(older, moved)
            if failure is not None:
                return failure
            return self.deliver(newer, moved)
        if result.outcome is Outcome.REJECT:
            self._dead_letter(batch, result.status, result.message, moved)
            return None
        return result

    def acked(self, last_seq: int, count: int, moved: Moved) -> None:
        """The backend took the ``count`` readings up to ``last_seq``: the cursor moves on."""
        self.history.ack(self.name, last_seq, count)
        moved.delivered += count
        self._succeeded(False)

    def write(self, batch: Sequence[Reading]) -> WriteResult:
        """One :meth:`Sink.write`; a sink that raises answers RETRY."""
        if log.isEnabledFor(logging.DEBUG) and batch:
            log_preview(self.name, batch)
        try:
            return self.sink.write(batch)
        except Exception as exc:  # a sink bug must not stop delivery or lose data: retry
            return raised(self.name, "write", exc)

    def write_all(self, readings: Sequence[Reading]) -> WriteResult | None:
        """Send readings from outside the backlog (dead-letter replays): in batches, halving on
        SPLIT; the first answer that is neither ACK nor SPLIT is returned, else None."""
        for start in range(0, len(readings), self.batch_size):
            pending: list[Sequence[Reading]] = [readings[start : start + self.batch_size]]
            while pending:
                part = pending.pop(0)
                result = self.write(part)
                if result.outcome is Outcome.SPLIT and len(part) > 1:
                    older, newer = split_batch(part)
                    pending[:0] = [older, newer]
                elif result.outcome is not Outcome.ACK:
                    return result
        return None

    def _dead_letter(
        self, batch: Sequence[Reading], status: int | None, error: str, moved: Moved
    ) -> None:
        entry = self.history.reject(self.name, batch, status, error or "rejected")
        moved.rejected += len(batch)
        log.warning(
            "%s rejected %d readings (seq %d-%d, HTTP %s: %s); moved to dead-letter entry %d",
            self.name,
            len(batch),
            batch[0].seq,
            batch[-1].seq,
            status,
            error,
            entry,
        )
        # The backend answered, so the connection itself is fine.
        self._succeeded(True)
        self._emit(
            "rejected",
            {"backend": self.name, "count": len(batch), "status": status, "error": error},
        )


class PipelinedDrain:
    """One run of a pipelined backlog drain: batch N+1 is fetched and encoded while the backend
    stores batch N, and sent as soon as N was acknowledged.

    Acks stay strictly in order and nothing is sent past a failure: any other answer for N is
    settled on its own (a 413 resends halves with plain writes, a 400 dead-letters it) before the
    prepared batch goes out. A run is used once (see :meth:`BatchSender.drain`).
    """

    def __init__(
        self,
        sender: BatchSender,
        sink: PipelinedSink,
        moved: Moved,
        *,
        upto: int | None,
        full_only: bool,
        should_stop: Callable[[], bool],
        after_batch: Callable[[], None],
    ) -> None:
        self._sender = sender
        self._sink = sink
        self._moved = moved
        self._upto = upto
        self._full_only = full_only
        self._should_stop = should_stop
        self._after_batch = after_batch
        self._debug = log.isEnabledFor(logging.DEBUG)
        self._in_flight: list[ReadingRow] | None = None  # sent, its answer not yet read
        self._last_sent = 0  # the highest seq sent so far: the next batch starts after it
        # The next batch, prepared while the one in flight is being stored.
        self._rows: list[ReadingRow] = []
        self._body = b""
        self._failed: WriteResult | None = None  # preparing it failed (a sink bug)

    def run(self, first: list[ReadingRow]) -> WriteResult | None:
        """Drain, starting with ``first``; the RETRY/AUTH result that stopped it, else None."""
        try:
            self._prepare(first)
            while True:
                sent, self._in_flight = self._in_flight, None
                if sent is not None:
                    failure = self._settle(sent)
                    if failure is not None:
                        return failure
                    if self._in_flight is not None:  # the prepared batch left with the ack
                        self._prepare(None)
                        continue
                if self._failed is not None:
                    return self._failed
                if not self._rows:
                    return None
                self._send()
                self._prepare(None)
        finally:
            if self._in_flight is not None:  # an error (e.g. the ack's disk write): never read
                self._sink.abort()

    def _prepare(self, rows: list[ReadingRow] | None) -> None:
        """Fetch (unless ``rows`` were fetched already) and encode the next batch; none once the
        run should stop, or when only a partial batch is left and ``full_only``."""
        self._body, self._failed = b"", None
        if self._should_stop():
            rows = []
        elif rows is None:
            rows = self._sender.history.backlog_rows(
                self._sender.name, self._sender.batch_size, after=self._last_sent, upto=self._upto
            )
        if self._full_only and len(rows) < self._sender.batch_size:
            rows = []
        self._rows = rows
        if not rows:
            return
        if self._debug:
            log_preview(self._sender.name, list(starmap(Reading, rows)))
        try:
            self._body = self._sink.prepare(rows)
        except Exception as exc:  # a sink bug must not lose data: retry later
            self._failed = raised(self._sender.name, "prepare", exc)

    def _send(self) -> None:
        """Put the prepared batch on the wire."""
        self._sink.send_prepared(self._body)
        self._in_flight, self._last_sent = self._rows, self._rows[-1][1]

    def _settle(self, sent: list[ReadingRow]) -> WriteResult | None:
        """Read the answer for ``sent`` (the batch that was in flight) and act on it; on an ACK
        the prepared batch (if any) is sent first, so the backend works while the ack is written
        to disk."""
        result = self._receive()
        if result.outcome is Outcome.ACK:
            if self._rows and self._failed is None:
                self._send()
            self._sender.acked(sent[-1][1], len(sent), self._moved)
            self._after_batch()
            return None
        # Nothing after ``sent`` is on the wire: settle it on its own.
        failure = self._sender.settle(list(starmap(Reading, sent)), result, self._moved)
        self._after_batch()
        return failure

    def _receive(self) -> WriteResult:
        try:
            return self._sink.receive()
        except Exception as exc:  # a sink bug must not stop delivery or lose data: retry
            self._sink.abort()
            return raised(self._sender.name, "receive", exc)


def log_preview(backend: str, batch: Sequence[Reading]) -> None:
    """``--debug``: what is about to be written (readings only: no URL, no credentials)."""
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


def raised(backend: str, method: str, exc: Exception) -> WriteResult:
    """A sink method raised: a RETRY result naming the exception (the data stays)."""
    log.debug("%s.%s raised", backend, method, exc_info=True)
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return WriteResult(Outcome.RETRY, None, f"{type(exc).__name__}: {text}".rstrip(": "))


def describe(result: WriteResult) -> str:
    """One line for logs and status: HTTP status (if any) and the sink's message."""
    text = result.message or result.outcome.value
    return f"HTTP {result.status}: {text}" if result.status is not None else text
