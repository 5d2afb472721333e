"""The audit trail of requests that change something, with who sent them, rate-limited.

Every ``heater.set``, ``heater.reset``, ``fan.set``, ``fan.reset`` and ``config.reload`` is logged
with the peer's pid and uid (from the socket's credentials). A client looping over requests must
not be able to flood the journal (SD-card wear, real events drowned): per operation, at most
``burst`` lines in any ``window_s``; the rest are counted and summarised in one line when the
window ends. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


class AuditLog:
    """``record(op, peer, text)`` logs ``text (peer …)`` at INFO within the rate limit."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        clock: Callable[[], float] = time.monotonic,
        burst: int = 5,
        window_s: float = 10.0,
    ) -> None:
        self._log = logger
        self._clock = clock
        self._burst = burst
        self._window_s = window_s
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def record(self, op: str, peer: object, text: str) -> None:
        """Log one request (or count it, past the limit)."""
        now = self._clock()
        with self._lock:
            window = self._roll(op, now)
            if window.logged < self._burst:
                window.logged += 1
                self._log.info("%s (peer %s)", text, peer)
            else:
                window.suppressed += 1

    def flush(self) -> None:
        """Summarise windows that have ended (the control timer calls this often)."""
        now = self._clock()
        with self._lock:
            for op in list(self._windows):
                if now - self._windows[op].started >= self._window_s:
                    self._roll(op, now)
                    del self._windows[op]

    def _roll(self, op: str, now: float) -> _Window:
        window = self._windows.get(op)
        if window is not None and now - window.started < self._window_s:
            return window
        if window is not None and window.suppressed:
            self._log.info(
                "%d more %s request(s) not logged (more than %d in %.0f s)",
                window.suppressed,
                op,
                self._burst,
                self._window_s,
            )
        fresh = _Window(now)
        self._windows[op] = fresh
        return fresh
