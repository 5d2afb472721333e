"""The sampler's schedule: fixed rate, and nothing (reload, clock jump) can park it."""

from __future__ import annotations

import pytest

from filamentctl.core.schedule import next_slot, read_wait_s


@pytest.mark.parametrize(
    ("previous", "now", "interval", "expected"),
    [
        (10.0, 10.2, 1.0, 11.0),  # on schedule: fixed rate, the read's own time not added
        (10.0, 12.5, 1.0, 13.5),  # fell behind (slow read): re-anchor, no burst
        (10.0, 5.0, 1.0, 6.0),  # the clock jumped back 5 s: re-anchor on the new clock
        (10.0, 10.05, 0.1, 10.1),  # a reload shortened the interval: the new one counts
        (10.0, 10.0, 300.0, 310.0),
    ],
)
def test_next_slot(previous: float, now: float, interval: float, expected: float) -> None:
    assert next_slot(previous, now, interval) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("next_at", "last_read", "interval", "now", "waited", "expected"),
    [
        (11.0, 10.0, 1.0, 10.1, 0.0, 0.9),  # the normal case
        (11.0, 10.0, 1.0, 11.5, 0.0, 0.0),  # late: read now
        # A live reload from 300 s to 0.1 s while asleep: due 0.1 s after the last read.
        (310.0, 10.0, 0.1, 10.05, 0.05, 0.05),
        (310.0, 10.0, 0.1, 20.0, 10.0, 0.0),
        # The clock jumped back an hour: one interval of real sleep at most, then read.
        (11.0, 10.0, 1.0, 10.0 - 3600, 0.0, 1.0),
        (11.0, 10.0, 1.0, 10.5 - 3600, 0.5, 0.5),
        (11.0, 10.0, 1.0, 11.0 - 3600, 1.0, 0.0),
        # A hand clock that stands still: the sampler still reads after one interval of sleep.
        (11.0, 10.0, 1.0, 10.0, 1.0, 0.0),
        # Nonsense (NaN/inf from a broken clock) reads now rather than sleeping for ever.
        (float("inf"), 10.0, 1.0, float("nan"), 0.0, 0.0),
    ],
)
def test_read_wait_never_exceeds_one_interval(
    next_at: float, last_read: float, interval: float, now: float, waited: float, expected: float
) -> None:
    wait = read_wait_s(next_at, last_read, interval, now, waited)
    assert wait == pytest.approx(expected)
    assert 0.0 <= wait <= interval
