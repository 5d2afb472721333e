"""The retry schedule: exponential, capped, up to 10 % jitter, never shorter than Retry-After."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filamentctl.core.backoff import backoff_delay, retry_delay, split_batch


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (50, 30.0), (10_000, 30.0)],
)
def test_delay_doubles_per_failure_up_to_the_maximum(failures: int, expected: float) -> None:
    assert backoff_delay(failures, base=2.0, maximum=30.0, rand=0.0) == pytest.approx(expected)


def test_no_failure_means_no_wait() -> None:
    assert backoff_delay(0, base=2.0, maximum=30.0, rand=0.9) == 0.0


def test_jitter_adds_at_most_ten_percent() -> None:
    assert backoff_delay(3, base=1.0, maximum=60.0, rand=0.5) == pytest.approx(4.0 * 1.05)
    assert backoff_delay(3, base=1.0, maximum=60.0, rand=0.999) < 4.0 * 1.1


@given(
    failures=st.integers(min_value=1, max_value=5000),
    base=st.floats(min_value=0.01, max_value=100.0),
    maximum=st.floats(min_value=0.01, max_value=3600.0),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_delay_never_shrinks_with_more_failures_and_stays_under_the_cap_plus_jitter(
    failures: int, base: float, maximum: float, rand: float
) -> None:
    # Properties only: the exact schedule is the table above (the oracle), not a formula here.
    delay = backoff_delay(failures, base, maximum, rand)
    assert backoff_delay(failures - 1, base, maximum, rand) <= delay
    assert min(base, maximum) <= delay <= maximum * 1.1 + 1e-9


def test_retry_after_longer_than_backoff_is_honoured() -> None:
    assert retry_delay(1, base=1.0, maximum=60.0, rand=0.0, retry_after_s=42.0) == 42.0


def test_backoff_longer_than_retry_after_wins() -> None:
    assert retry_delay(6, base=1.0, maximum=60.0, rand=0.0, retry_after_s=3.0) == 32.0


def test_retry_after_is_capped_at_ten_minutes() -> None:
    assert retry_delay(1, base=1.0, maximum=60.0, rand=0.0, retry_after_s=86_400.0) == 600.0


def test_without_retry_after_the_backoff_applies() -> None:
    assert retry_delay(2, base=1.0, maximum=60.0, rand=0.0) == 2.0


def test_split_keeps_order_and_every_item() -> None:
    older, newer = split_batch([1, 2, 3, 4, 5])
    assert list(older) == [1, 2, 3]
    assert list(newer) == [4, 5]


def test_single_item_cannot_be_split() -> None:
    with pytest.raises(ValueError):
        split_batch([1])
