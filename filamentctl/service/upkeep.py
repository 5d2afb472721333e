"""Keeping the local history in bounds: reporting the backlog cap's drops, and retention.

Every commit applies ``storage.max_backlog`` itself (in the transaction that adds the readings);
:class:`BacklogUpkeep` reports what it dropped once per episode, re-applies a cap lowered while
running, and deletes delivered readings older than ``storage.retention_days`` every
:data:`RETENTION_INTERVAL_S`. The delivery thread runs it; with no database configured the
service's sampler schedules retention itself, on the same interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from filamentctl.service.alerts import Emit

if TYPE_CHECKING:
    from filamentctl.store.history import History

log = logging.getLogger("filamentctl.delivery")

CAP_CHECK_INTERVAL_S = 10.0  # how often drops by the backlog cap are reported (commits apply it)
RETENTION_INTERVAL_S = 3600.0  # how often old delivered readings are deleted


class BacklogUpkeep:
    """The cap reports and retention for one sink's backlog; call :meth:`run` from one thread.

    ``emit`` gets ``("dropped", {"backend", "dropped"})`` when an episode of drops starts.
    """

    def __init__(
        self,
        history: History,
        backend: str,
        *,
        emit: Emit,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._history = history
        self._backend = backend
        self._emit = emit
        self._wall_ns = wall_clock_ns
        self._dropping = False  # in an episode of drops (reported, not yet back under the cap)
        # Both due at the first run.
        self._next_cap_check = float("-inf")
        self._next_retention = float("-inf")

    def restart(self) -> None:
        """Make both checks due at the next :meth:`run` (the worker (re)starts)."""
        self._next_cap_check = self._next_retention = float("-inf")

    def run(self, now: float) -> float:
        """Do what is due at ``now`` (monotonic seconds); returns when the next check is due.

        Raises what the history raises (the caller retries with backoff).
        """
        periodic = now >= self._next_cap_check
        if periodic:
            self._next_cap_check = now + CAP_CHECK_INTERVAL_S
        self._report_cap(periodic)
        if now >= self._next_retention:
            self._next_retention = now + RETENTION_INTERVAL_S
            removed = self._history.apply_retention(self._wall_ns())
            if removed:
                log.info("retention removed %d old readings from the local history", removed)
        return min(self._next_cap_check, self._next_retention)

    def _report_cap(self, periodic: bool) -> None:
        """Report the cap's drops once per episode, on the first run after a drop (each commit
        applies the cap itself and wakes the delivery thread). ``periodic``: also apply a cap
        lowered while running, and see whether the episode ended — once the backlog is back under
        the cap, i.e. delivery caught up, not merely when no commit came since the last look."""
        if periodic:
            self._history.enforce_cap(self._backend)
        dropped = self._history.take_cap_drops(self._backend)
        if dropped and not self._dropping:
            self._dropping = True
            # Reported once per episode; the running total is in status()["dropped"].
            log.warning(
                "backlog for %s exceeded storage.max_backlog=%d: dropped the %d oldest unsent "
                "readings (further drops are counted in status)",
                self._backend,
                self._history.max_backlog,
                dropped,
            )
            self._emit("dropped", {"backend": self._backend, "dropped": dropped})
        elif (
            periodic
            and self._dropping
            and not dropped
            and self._history.backlog_count(self._backend) < self._history.max_backlog
        ):
            self._dropping = False
            log.info("backlog for %s is back under storage.max_backlog", self._backend)
