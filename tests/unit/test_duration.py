"""Durations as users type them (``--for 1h30m``) and as the CLI shows them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filamentctl.core.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("45", 45),
        ("0", 0),
        ("2.5", 2.5),
        ("1.5h", 5400),
        (".5m", 30),
        ("1d2h3m4s", 93784),
        ("1h 30m", 5400),
        ("  2H ", 7200),
        ("10 m", 600),
    ],
)
def test_accepted_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("-5m", "invalid duration"),
        ("-5", "invalid duration"),
        ("abc", "invalid duration"),
        ("5x", "unknown unit 'x'"),
        ("30m1h", "largest to smallest"),
        ("1h1h", "largest to smallest"),
        ("1h30", "invalid duration"),
        ("h", "invalid duration"),
        ("1..5s", "invalid duration"),
    ],
)
def test_rejected_durations_say_what_is_accepted_in_one_line(text: str, complaint: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    message = str(info.value)
    assert complaint in message
    assert "1h30m" in message  # the hint
    assert "\n" not in message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.2, "0.2s"),
        (2.5, "2.5s"),
        (45, "45s"),
        (59.6, "1m"),
        (90, "1m30s"),
        (5400, "1h30m"),
        (7200, "2h"),
        (86400, "1d"),
        (93784, "1d2h3m4s"),
    ],
)
def test_format_is_compact_largest_unit_first(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_format_refuses_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        format_duration(bad)


@given(st.integers(min_value=0, max_value=400 * 86400))
def test_formatted_whole_seconds_parse_back_to_the_same_value(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
