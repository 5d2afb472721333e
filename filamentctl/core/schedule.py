"""When the sampler reads next: a fixed-rate schedule that nothing can park.

Pure: the caller passes its clock readings in. The service's sampler asks :func:`read_wait_s`
how long to sleep (in slices, so a live reload is noticed) and :func:`next_slot` where the next
slot of the fixed-rate schedule lies after a read.
"""

from __future__ import annotations

import math


def next_slot(previous: float, now: float, interval: float) -> float:
    """The slot after ``previous``: ``previous + interval``, re-anchored at ``now + interval``
    when that lies in the past (a slow read: no burst to catch up) or more than one interval
    ahead (the clock jumped back, or the interval just got shorter)."""
    slot = previous + interval
    if not now <= slot <= now + interval:
        slot = now + interval
    return slot


def read_wait_s(
    next_at: float, last_read_at: float, interval: float, now: float, waited: float = 0.0
) -> float:
    """Seconds still to sleep before the next read; 0 means read now.

    ``next_at`` is the schedule's slot, ``last_read_at`` when the last read started (same clock
    as ``now``), ``waited`` how many seconds the sampler has already slept since that read (real
    seconds, counted by the caller). The answer is never more than what is left of one
    ``interval``, whatever the clock says: a reload that shortens the interval applies at once,
    and a clock that jumps back (or a hand clock that stands still) cannot keep the sampler
    asleep for more than one interval. Non-finite input means read now.
    """
    due = min(next_at, last_read_at + interval)
    wait = min(due - now, interval - waited)
    return wait if math.isfinite(wait) and wait > 0 else 0.0
