"""The table rows shared by the heater and the fan controller tests: a script of events played
against a fresh controller, and what ``status`` (or the refusal of a last request) must show.

Events: ``("read", t, value[, age])``, ``("tick", t)``, ``("req", t, mode[, until])``,
``("reset", t)`` and ``("rej", t, reason[, too_hot])`` (the reading filter rejected the sample read
at t). Time is passed in: no clocks, no sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from filamentctl.core.control import FanController, HeaterController, RequestResult

Event = tuple[Any, ...]
C = TypeVar("C", HeaterController, FanController)


@dataclass
class Row:
    events: list[Event]
    on: bool
    mode: str
    reason: str  # must appear in the final reason (or in the refusal, for refused requests)
    settings: dict[str, Any] = field(default_factory=dict)
    accepted: bool | None = None  # for a final request: accepted or refused


def play(
    make: Callable[..., C], row_settings: dict[str, Any], events: list[Event]
) -> tuple[C, Any]:
    """A controller from ``make(**row_settings)`` after ``events``, and the last step's result."""
    ctl = make(**row_settings)
    last: Any = None
    for event in events:
        kind, t, *args = event
        if kind == "read":
            last = ctl.observe(args[0], args[1] if len(args) > 1 else 0.0, t)
        elif kind == "tick":
            last = ctl.tick(t)
        elif kind == "req":
            last = ctl.request(args[0], args[1] if len(args) > 1 else None, t)
        elif kind == "reset":
            last = ctl.reset(t)
        elif kind == "rej":
            last = ctl.reject(args[0], t, over_temperature=len(args) > 1 and args[1])
        else:  # pragma: no cover - a typo in a table
            raise AssertionError(kind)
    return ctl, last


def check(make: Callable[..., C], row: Row) -> tuple[C, Any]:
    """Play ``row`` and assert the relay state, the mode and the reason it names."""
    ctl, last = play(make, row.settings, row.events)
    status = ctl.status(row.events[-1][1])
    if isinstance(last, RequestResult):
        if row.accepted is not None:
            assert last.accepted is row.accepted, last.reason
        shown = last.reason
    else:
        assert row.accepted is None, "accepted= only applies when the last event is a request"
        shown = status.reason
    assert (status.on, status.mode) == (row.on, row.mode), status.reason
    assert row.reason in shown, shown
    return ctl, last


def rows(table: dict[str, Row]) -> pytest.MarkDecorator:
    """Parametrize a test over ``table``'s rows, named by their keys."""
    return pytest.mark.parametrize("row", list(table.values()), ids=list(table))
