"""Retry schedule and batch splitting for the delivery engine (pure: time and randomness come in).

``backoff_delay`` is ``min(base·2^(n−1), maximum)`` plus 0–10 % jitter, where ``n`` is the number
of consecutive failures; ``retry_delay`` combines it with a server's ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

JITTER = 0.10  # up to 10 % on top, so many boxes that failed together do not retry together
RETRY_AFTER_CAP_S = 600.0  # a Retry-After beyond 10 minutes is treated as 10 minutes
_MAX_EXPONENT = 62  # 2**62 already exceeds any sane maximum; avoids float overflow for huge n


def backoff_delay(failures: int, base: float, maximum: float, rand: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures (0 failures: no wait).

    ``rand`` is a number in [0, 1) supplied by the caller; it scales the jitter (0 → none,
    just under 1 → almost +10 %). Negative ``base``/``maximum`` are treated as 0.
    """
    if failures <= 0:
        return 0.0
    exponent = min(failures - 1, _MAX_EXPONENT)
    delay = min(max(base, 0.0) * float(2**exponent), max(maximum, 0.0))
    jitter = min(max(rand, 0.0), 1.0) * JITTER
    return delay * (1.0 + jitter)


def retry_delay(
    failures: int,
    base: float,
    maximum: float,
    rand: float,
    retry_after_s: float | None = None,
) -> float:
    """The wait before the next attempt: the backoff, but at least the server's ``Retry-After``.

    ``Retry-After`` is capped at 600 s so a hostile or broken server cannot park delivery for
    hours; a negative value counts as 0.
    """
    delay = backoff_delay(failures, base, maximum, rand)
    if retry_after_s is None:
        return delay
    return max(delay, min(max(retry_after_s, 0.0), RETRY_AFTER_CAP_S))


def split_batch(batch: Sequence[T]) -> tuple[Sequence[T], Sequence[T]]:
    """Halve a batch that the backend found too large, keeping order (first half is the older).

    Fails with ``ValueError`` for a batch of fewer than two items: it cannot be split, so the
    caller has to dead-letter it instead.
    """
    if len(batch) < 2:
        raise ValueError("a batch of fewer than two items cannot be split")
    middle = (len(batch) + 1) // 2
    return batch[:middle], batch[middle:]
