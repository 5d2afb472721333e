"""The exhaust-fan controller, rule by rule, as tables of (events → what the user would see).

Default settings in these tables: band 40–60 %RH, min cycle 30 s, fault state OFF, readings
stale after 30 s. Time is passed in: no clocks, no sleeps.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from filamentctl.core import schema
from filamentctl.core.control import FanController, FanSettings
from tests.unit import control_table as table
from tests.unit.control_table import Event, Row, rows

BASE = FanSettings(
    enabled=True,
    min_humidity=40.0,
    max_humidity=60.0,
    min_cycle_s=30.0,
    on_fault=False,
    stale_after_s=30.0,
)
FAULT_ON = {"on_fault": True}
NAN = math.nan


def fan(**overrides: Any) -> FanController:
    return FanController(replace(BASE, **overrides), now=0.0)


def play(row_settings: dict[str, Any], events: list[Event]) -> tuple[FanController, Any]:
    return table.play(fan, row_settings, events)


def check(row: Row) -> None:
    table.check(fan, row)


HYSTERESIS = {
    "no reading yet: OFF, waiting": Row(
        [("tick", 1)], False, "auto", "waiting for the first reading"
    ),
    "above max turns ON": Row([("read", 0, 60.1)], True, "auto", "auto: 60.1 % > 60.0 %"),
    "equal to max never switches ON": Row(
        [("read", 0, 60.0)], False, "auto", "auto: 60.0 % within 40.0–60.0 %, staying OFF"
    ),
    "inside band from OFF stays OFF": Row([("read", 0, 50.0)], False, "auto", "staying OFF"),
    "inside band from ON stays ON": Row(
        [("read", 0, 70.0), ("read", 40, 50.0)], True, "auto", "staying ON"
    ),
    "below min turns OFF": Row(
        [("read", 0, 70.0), ("read", 40, 39.9)], False, "auto", "auto: 39.9 % < 40.0 %"
    ),
    "equal to min never switches OFF": Row(
        [("read", 0, 70.0), ("read", 40, 40.0)], True, "auto", "40.0 % within 40.0–60.0 %"
    ),
}


@rows(HYSTERESIS)
def test_hysteresis(row: Row) -> None:
    check(row)


FAULT_STATE = {
    "stale reading: fan to its fault state (OFF)": Row(
        [("read", 0, 70.0), ("tick", 31)],
        False,
        "fault",
        "safety: reading 31 s old (limit 30 s); fan OFF (fan.on_fault)",
    ),
    "stale reading: fan to its fault state (ON)": Row(
        [("read", 0, 50.0), ("tick", 31)],
        True,
        "fault",
        "fan ON (fan.on_fault)",
        settings=FAULT_ON,
    ),
    "exactly stale_after old is still fresh": Row(
        [("read", 0, 70.0), ("tick", 30)], True, "auto", "> 60.0 %"
    ),
    "fault state ignores min cycle": Row(
        [("read", 0, 70.0), ("read", 5, NAN)],
        False,
        "fault",
        "invalid reading (nan)",
        settings={"min_cycle_s": 600.0},
    ),
    "fault state ON ignores min cycle too": Row(
        [("read", 0, 70.0), ("read", 40, 30.0), ("read", 45, NAN)],
        True,
        "fault",
        "fan ON (fan.on_fault)",
        settings=FAULT_ON,
    ),
    "no reading for stale_after is a fault": Row(
        [("tick", 31)], True, "fault", "safety: no reading for 31 s", settings=FAULT_ON
    ),
    "fresh readings recover automatically": Row(
        [("read", 0, 70.0), ("tick", 31), ("read", 100, 70.0)], True, "auto", "70.0 % > 60.0 %"
    ),
    "recovery honours min cycle after the fault switch": Row(
        [("read", 0, 70.0), ("tick", 31), ("read", 40, 70.0)],
        False,
        "auto",
        "min cycle: holding OFF for 21 s (auto: 70.0 % > 60.0 %)",
    ),
    "fault state overrides a manual on": Row(
        [("read", 0, 50.0), ("req", 1, "on"), ("tick", 31)],
        False,
        "fault",
        "fan OFF (fan.on_fault)",
    ),
    "manual on resumes when readings recover": Row(
        [("read", 0, 50.0), ("req", 1, "on"), ("tick", 31), ("read", 70, 50.0)],
        True,
        "manual",
        "manual on",
    ),
    "manual on refused when it contradicts the fault state": Row(
        [("read", 0, 50.0), ("req", 31, "on")],
        False,
        "fault",
        "fan is held OFF (fan.on_fault) because of reading 31 s old",
        accepted=False,
    ),
    "manual off refused when the fault state is ON": Row(
        [("read", 0, 50.0), ("req", 31, "off")],
        True,
        "fault",
        "fan is held ON (fan.on_fault)",
        settings=FAULT_ON,
        accepted=False,
    ),
    "a request matching the fault state is accepted": Row(
        [("read", 0, 50.0), ("req", 31, "off")], False, "fault", "fan OFF", accepted=True
    ),
}


@rows(FAULT_STATE)
def test_fault_state(row: Row) -> None:
    check(row)


MIN_CYCLE = {
    "switching OFF is never held (min cycle only delays ON)": Row(
        [("read", 0, 70.0), ("read", 10, 30.0)], False, "auto", "auto: 30.0 % < 40.0 %"
    ),
    "switching ON too soon is held": Row(
        [("read", 0, 70.0), ("read", 40, 30.0), ("read", 50, 70.0)],
        False,
        "auto",
        "min cycle: holding OFF for 20 s",
    ),
    "a manual OFF is immediate": Row(
        [("read", 0, 70.0), ("req", 10, "off")], False, "manual", "manual off", accepted=True
    ),
    "a manual ON right after an OFF waits for min cycle": Row(
        [("read", 0, 30.0), ("read", 40, 70.0), ("req", 50, "off"), ("req", 55, "on")],
        False,
        "manual",
        "min cycle: holding OFF for 25 s (manual on)",
        accepted=True,
    ),
}


@rows(MIN_CYCLE)
def test_min_cycle(row: Row) -> None:
    check(row)


REJECTED = {
    "a rejected reading puts the fan in its fault state at that read": Row(
        [("read", 0, 70.0), ("rej", 1, "not a number")],
        False,
        "fault",
        "safety: reading rejected (not a number); fan OFF (fan.on_fault)",
        settings={"min_cycle_s": 600.0},
    ),
    "... ON when fan.on_fault is on": Row(
        [("read", 0, 30.0), ("rej", 1, "implausible jump"), ("tick", 3)],
        True,
        "fault",
        "fan ON (fan.on_fault)",
        settings={"on_fault": True, "min_cycle_s": 0.0},
    ),
    "the next accepted reading returns it to normal control": Row(
        [("read", 0, 70.0), ("rej", 1, "not a number"), ("read", 2, 70.0)],
        True,
        "auto",
        "auto: 70.0 % > 60.0 %",
        settings={"min_cycle_s": 0.0},
    ),
}


@rows(REJECTED)
def test_rejected_readings(row: Row) -> None:
    check(row)


OVERRIDES = {
    "manual on inside the band": Row(
        [("read", 0, 50.0), ("req", 1, "on")], True, "manual", "manual on", accepted=True
    ),
    "manual on before the first reading is allowed": Row(
        [("req", 1, "on")], True, "manual", "manual on", accepted=True
    ),
    "manual off above max": Row(
        [("read", 0, 70.0), ("read", 39, 70.0), ("req", 40, "off")], False, "manual", "manual off"
    ),
    "override kept until expiry": Row(
        [("read", 0, 50.0), ("req", 1, "on", 61.0), ("read", 60, 50.0)],
        True,
        "manual",
        "manual on for 1s",
    ),
    "expired override returns to auto and re-evaluates": Row(
        [("read", 0, 30.0), ("req", 1, "on", 61.0), ("read", 61, 30.0)],
        False,
        "auto",
        "manual on expired; auto: 30.0 % < 40.0 %",
    ),
    "expiry noticed on a timer tick": Row(
        [("read", 0, 30.0), ("req", 1, "on", 40.0), ("read", 35, 30.0), ("tick", 40)],
        False,
        "auto",
        "manual on expired",
    ),
    "auto re-evaluates at once": Row(
        [
            ("read", 0, 70.0),
            ("req", 1, "off"),
            ("read", 40, 70.0),
            ("read", 80, 70.0),
            ("req", 81, "auto"),
        ],
        True,
        "auto",
        "auto: 70.0 % > 60.0 %",
        accepted=True,
    ),
    "reset is a harmless no-op": Row(
        [("read", 0, 70.0), ("reset", 1)],
        True,
        "auto",
        "fan has no latched fault; nothing to reset",
        accepted=True,
    ),
    "disabled fan stays OFF": Row(
        [("read", 0, 90.0)], False, "auto", "disabled (fan.enabled = false)", {"enabled": False}
    ),
    "disabled fan refuses manual on": Row(
        [("read", 0, 90.0), ("req", 1, "on")],
        False,
        "auto",
        "fan is disabled",
        {"enabled": False},
        accepted=False,
    ),
}


@rows(OVERRIDES)
def test_overrides(row: Row) -> None:
    check(row)


def test_status_shows_thresholds_and_override() -> None:
    ctl, _ = play(FAULT_ON, [("read", 0, 50.0), ("req", 1, "off", 101.0)])
    status = ctl.status(51.0).to_dict()
    assert (status["on"], status["mode"], status["override"]) == (False, "manual", "off")
    assert (status["override_until"], status["override_remaining_s"]) == (101.0, 50.0)
    assert status["latched"] is None
    assert status["thresholds"]["max_humidity"] == 60.0
    assert status["thresholds"]["on_fault"] == "on"


@pytest.mark.parametrize(("text", "on"), [("off", False), ("on", True), ("ON", True)])
def test_settings_come_from_the_schema_keys(text: str, on: bool) -> None:
    values = {**schema.defaults(), "fan.on_fault": text, "fan.enabled": True}
    settings = FanSettings.from_settings(values)
    assert settings.on_fault is on and settings.enabled is True
    assert settings.stale_after_s == values["sensor.stale_after"]


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        (
            {"fan.min_humidity": 60.0, "fan.max_humidity": 60.0},
            r"fan.min_humidity \(60\) must be below fan.max_humidity \(60\)",
        ),
        ({"fan.max_humidity": 101.0}, "within 0-100 %RH"),
        ({"fan.on_fault": "maybe"}, "fan.on_fault must be 'on' or 'off'"),
        ({"fan.min_cycle_s": -1}, "fan.min_cycle_s must be >= 0"),
    ],
)
def test_inconsistent_settings_are_refused(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        FanSettings.from_settings({**schema.defaults(), **changes})
