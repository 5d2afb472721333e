"""``core.health.problems``: what ``status --check`` reports, one row per kind of problem."""

from __future__ import annotations

from typing import Any

import pytest

from filamentctl.core.health import problems

THRESHOLDS = {"stale_after_s": 30.0}
HEALTHY: dict[str, Any] = {
    "reading": {"age_s": 2.0, "temperature_c": 45.0},
    "sensor": {"health": "OK"},
    "heater": {"enabled": True, "mode": "auto", "latched": None, "thresholds": THRESHOLDS},
    "fan": {"enabled": True, "mode": "auto", "latched": None, "thresholds": THRESHOLDS},
    "storage": {"alert": None, "history_error": None},
}


def with_(section: str, **values: Any) -> dict[str, Any]:
    return {**HEALTHY, section: {**HEALTHY[section], **values}}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (HEALTHY, []),
        (with_("sensor", health="DEGRADED"), []),  # readings still arrive
        ({}, ["no reading yet"]),
        ({**HEALTHY, "reading": None}, ["no reading yet"]),
        (with_("reading", age_s=31.0), ["reading stale (31 s old, limit 30 s)"]),
        (
            with_("sensor", health="FAULT", last_error="no answer on I2C"),
            ["sensor FAULT: no answer on I2C"],
        ),
        (
            with_("heater", mode="fault", latched="cutoff 60.0 °C"),
            ["heater latched: cutoff 60.0 °C (clear with 'filamentctl heater reset')"],
        ),
        # A latch is reported even when the relay is disabled now: it waits for a person.
        (
            with_("heater", enabled=False, latched="runaway"),
            ["heater latched: runaway (clear with 'filamentctl heater reset')"],
        ),
        (
            with_("fan", mode="fault", reason="reading stale"),
            ["fan in safety fault: reading stale"],
        ),
        (with_("fan", enabled=False, mode="fault"), []),  # a disabled fan is not a problem
        (
            with_("storage", alert={"kind": "auth", "message": "401 from the database"}),
            ["delivery alert (auth): 401 from the database"],
        ),
        (with_("storage", alert="backlog over 1000"), ["delivery alert: backlog over 1000"]),
        (
            with_("storage", history_error="disk full"),
            ["local history failing: disk full"],
        ),
        # Odd sections are skipped, never raised on.
        ({**HEALTHY, "heater": "?", "storage": 3, "sensor": None}, []),
    ],
)
def test_problems(status: dict[str, Any], expected: list[str]) -> None:
    assert problems(status) == expected
