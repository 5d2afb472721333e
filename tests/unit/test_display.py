"""Text for people shared by the CLI and the dashboard."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from filamentctl import display


@pytest.fixture
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_a_latch_shows_since_when_with_a_date_and_its_cause(utc: None) -> None:
    relay = {
        "latched": "61.2 °C ≥ cutoff 60.0 °C",
        "latched_since": "2026-11-30T14:05:33.123456Z",
    }
    assert display.latch(relay) == "latched since 2026-11-30 14:05, cause: 61.2 °C ≥ cutoff 60.0 °C"


@pytest.mark.parametrize("relay", [{}, {"latched": None}, None, "x"])
def test_no_latch_no_text(relay: object) -> None:
    assert display.latch(relay) is None


def test_counts_take_the_plural_unless_one() -> None:
    assert [display.plural(n, "reading") for n in (0, 1, 2)] == [
        "0 readings",
        "1 reading",
        "2 readings",
    ]
