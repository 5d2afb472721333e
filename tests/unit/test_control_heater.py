"""The heater controller, rule by rule, as tables of (events → what the user would see).

Each row plays a short script of events against a fresh controller and checks the relay state,
the mode and the reason that ``status`` would show. Time is passed in: no clocks, no sleeps.

Default settings in these tables: band 18–22 °C, cutoff 40 °C, min cycle 30 s, max ON 3600 s,
runaway +2 °C within 300 s (checked only below 20 °C), readings stale after 30 s.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import pytest

from filamentctl.core import schema
from filamentctl.core.control import (
    HeaterController,
    HeaterSettings,
    HeaterState,
    Observation,
    RequestResult,
    decide_heater,
)
from tests.unit import control_table as table
from tests.unit.control_table import Event, Row, rows

BASE = HeaterSettings(
    enabled=True,
    min_temp_c=18.0,
    max_temp_c=22.0,
    cutoff_temp_c=40.0,
    min_cycle_s=30.0,
    max_on_s=3600.0,
    runaway_gain_c=2.0,
    runaway_window_s=300.0,
    stale_after_s=30.0,
)
LATCH_HINT = "(latched; run 'filamentctl heater reset')"
NAN = math.nan


def heater(**overrides: Any) -> HeaterController:
    return HeaterController(replace(BASE, **overrides), now=0.0)


def play(row_settings: dict[str, Any], events: list[Event]) -> tuple[HeaterController, Any]:
    return table.play(heater, row_settings, events)


def check(row: Row) -> tuple[HeaterController, Any]:
    return table.check(heater, row)


# --------------------------------------------------------------------------- hysteresis

HYSTERESIS = {
    "no reading yet: OFF, waiting": Row(
        [("tick", 1)], False, "auto", "waiting for the first reading"
    ),
    "below min turns ON": Row([("read", 0, 17.9)], True, "auto", "auto: 17.9 °C < 18.0 °C"),
    "equal to min never switches ON": Row(
        [("read", 0, 18.0)], False, "auto", "auto: 18.0 °C within 18.0–22.0 °C, staying OFF"
    ),
    "inside band from OFF stays OFF": Row([("read", 0, 20.0)], False, "auto", "staying OFF"),
    "inside band from ON stays ON": Row(
        [("read", 0, 17.0), ("read", 40, 20.0)], True, "auto", "staying ON"
    ),
    "above max turns OFF": Row(
        [("read", 0, 17.0), ("read", 40, 22.1)], False, "auto", "auto: 22.1 °C > 22.0 °C"
    ),
    "equal to max never switches OFF": Row(
        [("read", 0, 17.0), ("read", 40, 22.0)],
        True,
        "auto",
        "auto: 22.0 °C within 18.0–22.0 °C, staying ON",
    ),
    "back below min after cooling turns ON again": Row(
        [("read", 0, 17.0), ("read", 40, 22.5), ("read", 100, 17.5)], True, "auto", "17.5 °C < 18"
    ),
}


@rows(HYSTERESIS)
def test_hysteresis(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- stale / invalid

STALE = {
    "reading older than stale_after turns OFF on a timer": Row(
        [("read", 0, 17.0), ("tick", 31)], False, "fault", "safety: reading 31 s old"
    ),
    "reading exactly stale_after old is still fresh": Row(
        [("read", 0, 17.0), ("tick", 30)], True, "auto", "17.0 °C < 18.0 °C"
    ),
    "a reading that arrives already old turns OFF": Row(
        [("read", 0, 17.0), ("read", 40, 17.0, 45.0)], False, "fault", "safety: reading 45 s old"
    ),
    "stale switch-off ignores min cycle": Row(
        [("read", 0, 17.0), ("tick", 31)],
        False,
        "fault",
        "safety: reading 31 s old",
        settings={"min_cycle_s": 600.0},
    ),
    "no reading at all for stale_after is a fault": Row(
        [("tick", 31)], False, "fault", "safety: no reading for 31 s"
    ),
    "NaN reading turns OFF at once": Row(
        [("read", 0, 17.0), ("read", 5, NAN)], False, "fault", "safety: invalid reading (nan)"
    ),
    "infinite reading turns OFF at once": Row(
        [("read", 0, 17.0), ("read", 5, math.inf)], False, "fault", "invalid reading (inf)"
    ),
    "NaN switch-off ignores min cycle": Row(
        [("read", 0, 17.0), ("read", 5, NAN)],
        False,
        "fault",
        "invalid reading",
        settings={"min_cycle_s": 600.0},
    ),
    "fresh reading recovers automatically": Row(
        [("read", 0, 17.0), ("tick", 31), ("read", 100, 17.0)], True, "auto", "17.0 °C < 18.0 °C"
    ),
    "recovery after NaN": Row(
        [("read", 0, 17.0), ("read", 5, NAN), ("read", 50, 17.0)], True, "auto", "< 18.0 °C"
    ),
    "recovery still honours min cycle after the safety switch-off": Row(
        [("read", 0, 17.0), ("tick", 31), ("read", 40, 17.0)],
        False,
        "auto",
        "min cycle: holding OFF for 21 s (auto: 17.0 °C < 18.0 °C)",
    ),
}


@rows(STALE)
def test_stale_and_invalid_readings(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- cutoff latch

CUTOFF = {
    "at cutoff: OFF and latched": Row(
        [("read", 0, 40.0)], False, "fault", f"safety: 40.0 °C ≥ cutoff 40.0 °C {LATCH_HINT}"
    ),
    "just below cutoff: no latch": Row(
        [("read", 0, 39.9)], False, "auto", "auto: 39.9 °C > 22.0 °C"
    ),
    "above cutoff while ON: OFF at once despite min cycle": Row(
        [("read", 0, 17.0), ("read", 5, 41.0)],
        False,
        "fault",
        "41.0 °C ≥ cutoff 40.0 °C",
        settings={"min_cycle_s": 600.0},
    ),
    "latch holds after the box cools": Row(
        [("read", 0, 41.0), ("read", 100, 17.0)], False, "fault", "41.0 °C ≥ cutoff 40.0 °C"
    ),
    "latch holds through stale readings": Row(
        [("read", 0, 41.0), ("tick", 100), ("read", 200, 17.0)], False, "fault", LATCH_HINT
    ),
    "reset after cooling restores auto at once": Row(
        [("read", 0, 41.0), ("read", 100, 17.0), ("reset", 101)],
        True,
        "auto",
        "fault cleared; auto: 17.0 °C < 18.0 °C",
        accepted=True,
    ),
    "reset refused while still above cutoff": Row(
        [("read", 0, 41.0), ("reset", 1)],
        False,
        "fault",
        "cannot reset: temperature 41.0 °C is still ≥ cutoff 40.0 °C",
        accepted=False,
    ),
    "reset refused while exactly at cutoff": Row(
        [("read", 0, 40.0), ("reset", 1)], False, "fault", "still ≥ cutoff", accepted=False
    ),
    "reset refused when the last (stale) reading was still hot": Row(
        [("read", 0, 41.0), ("reset", 100)], False, "fault", "still ≥ cutoff", accepted=False
    ),
    "reset with nothing latched is a harmless no-op": Row(
        [("read", 0, 20.0), ("reset", 1)],
        False,
        "auto",
        "heater has no latched fault; nothing to reset",
        accepted=True,
    ),
    "reset while readings are stale clears the latch but stays OFF": Row(
        [("read", 0, 41.0), ("read", 10, 30.0), ("reset", 100)],
        False,
        "fault",
        "fault cleared; safety: reading 90 s old",
        accepted=True,
    ),
    "heater on refused while latched": Row(
        [("read", 0, 41.0), ("read", 10, 17.0), ("req", 11, "on")],
        False,
        "fault",
        "heater is latched off by a safety fault: 41.0 °C ≥ cutoff 40.0 °C; "
        "run 'filamentctl heater reset' first",
        accepted=False,
    ),
    "heater off accepted while latched, mode stays fault": Row(
        [("read", 0, 41.0), ("req", 1, "off")], False, "fault", LATCH_HINT, accepted=True
    ),
}


@rows(CUTOFF)
def test_cutoff_latch_and_reset(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- runaway

RUNAWAY = {
    "no rise within the window while ON: latched": Row(
        [("read", 0, 15.0), ("read", 299, 16.0), ("read", 300, 16.0)],
        False,
        "fault",
        f"safety: runaway: heater ON but 15.0 → 16.0 °C in 5m "
        f"(needs +2.0 °C within 5m) {LATCH_HINT}",
    ),
    "still inside the window: keeps heating": Row(
        [("read", 0, 15.0), ("read", 299, 16.0)], True, "auto", "auto: 16.0 °C < 18.0 °C"
    ),
    "falling temperature while ON: latched": Row(
        [("read", 0, 15.0), ("read", 300, 14.0)], False, "fault", "runaway"
    ),
    "runaway found on a timer tick too": Row(
        [("read", 0, 15.0), ("read", 290, 15.5), ("tick", 300)], False, "fault", "runaway"
    ),
    "a rise of the gain starts a new window": Row(
        [("read", 0, 15.0), ("read", 200, 17.0), ("read", 450, 17.5)], True, "auto", "< 18.0"
    ),
    "the new window also expires": Row(
        [("read", 0, 15.0), ("read", 200, 17.0), ("read", 480, 17.5), ("read", 500, 17.5)],
        False,
        "fault",
        "17.0 → 17.5 °C",
    ),
    "near the target (within the gain of max) auto control pauses the check": Row(
        [("read", 0, 17.0), ("read", 100, 20.5), ("read", 1000, 20.5)],
        True,
        "auto",
        "staying ON",
    ),
    "a manual ON is checked even near the target (a sensor fallen out reads flat)": Row(
        [("read", 0, 17.0), ("req", 1, "on"), ("read", 100, 20.5), ("read", 1000, 20.5)],
        False,
        "fault",
        "runaway",
    ),
    "not checked while the heater is OFF": Row(
        [("read", 0, 19.0), ("read", 290, 19.0), ("read", 580, 19.0), ("read", 870, 19.0)],
        False,
        "auto",
        "staying OFF",
    ),
    "each ON period starts a fresh window": Row(
        [("read", 0, 15.0), ("read", 100, 22.5), ("read", 200, 15.0), ("read", 450, 15.5)],
        True,
        "auto",
        "< 18.0",
    ),
    "manual ON is subject to runaway and is cancelled by the latch": Row(
        [("read", 0, 19.0), ("req", 1, "on"), ("read", 290, 19.0), ("read", 301, 19.0)],
        False,
        "fault",
        "runaway: heater ON but 19.0 → 19.0 °C in 5m",
    ),
    "reset after runaway resumes auto with a fresh window": Row(
        [
            ("read", 0, 15.0),
            ("read", 300, 15.0),
            ("read", 390, 15.0),
            ("reset", 400),
            ("read", 650, 15.0),
        ],
        True,
        "auto",
        "auto: 15.0 °C < 18.0 °C",
    ),
    "heater on refused while runaway latched": Row(
        [("read", 0, 15.0), ("read", 300, 15.0), ("req", 301, "on")],
        False,
        "fault",
        "latched off by a safety fault: runaway",
        accepted=False,
    ),
}


@rows(RUNAWAY)
def test_runaway(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- max on-time

LONG = {"max_on_s": 600.0, "min_cycle_s": 60.0, "runaway_window_s": 100_000.0}
MAX_ON = {
    "one ON period is capped at max_on_s: forced rest, not a latch": Row(
        [("read", 0, 15.0), ("read", 599, 15.0), ("read", 600, 15.0)],
        False,
        "auto",
        "safety: ON for 10m (heater.max_on_s); resting OFF for 60 s",
        settings=LONG,
    ),
    "just before max_on_s it stays ON": Row(
        [("read", 0, 15.0), ("read", 599, 15.0)], True, "auto", "< 18.0", settings=LONG
    ),
    "stays OFF while resting": Row(
        [("read", 0, 15.0), ("read", 600, 15.0), ("read", 630, 15.0)],
        False,
        "auto",
        "safety: resting OFF for 30 s after 10m ON (heater.max_on_s)",
        settings=LONG,
    ),
    "normal control resumes after the rest": Row(
        [("read", 0, 15.0), ("read", 600, 15.0), ("read", 660, 15.0)],
        True,
        "auto",
        "auto: 15.0 °C < 18.0 °C",
        settings=LONG,
    ),
    "max on-time switch-off ignores a longer min cycle": Row(
        [("read", 0, 15.0), ("read", 600, 15.0)],
        False,
        "auto",
        "heater.max_on_s",
        settings={**LONG, "min_cycle_s": 1000.0},
    ),
    "found on a timer tick between readings": Row(
        [("read", 0, 15.0), ("read", 590, 15.0), ("tick", 600)],
        False,
        "auto",
        "heater.max_on_s",
        settings=LONG,
    ),
    "manual ON is capped too": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("read", 590, 20.0), ("tick", 601)],
        False,
        "manual",
        "safety: ON for 10m (heater.max_on_s)",
        settings=LONG,
    ),
    "manual ON resumes after the rest": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("read", 601, 20.0), ("read", 661, 20.0)],
        True,
        "manual",
        "manual on",
        settings=LONG,
    ),
    "with min_cycle_s 0 the rest still lasts MAX_ON_REST_S (a cap, not a blip)": Row(
        [("read", 0, 15.0), ("read", 600, 15.0), ("read", 630, 15.0), ("read", 659, 15.0)],
        False,
        "auto",
        "resting OFF",
        settings={**LONG, "min_cycle_s": 0.0},
    ),
    "heater on refused while resting": Row(
        [("read", 0, 15.0), ("read", 600, 15.0), ("req", 610, "on")],
        False,
        "auto",
        "heater is resting after 10m ON (heater.max_on_s); try again in 50 s",
        settings=LONG,
        accepted=False,
    ),
}


@rows(MAX_ON)
def test_max_on_time(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- min cycle

MIN_CYCLE = {
    "the first switch after start is never held": Row(
        [("read", 0, 17.0)], True, "auto", "< 18.0", settings={"min_cycle_s": 600.0}
    ),
    "switching OFF is never held (an OFF is immediate; min cycle only delays ON)": Row(
        [("read", 0, 17.0), ("read", 10, 22.5)], False, "auto", "auto: 22.5 °C > 22.0 °C"
    ),
    "switching ON too soon is held": Row(
        [("read", 0, 17.0), ("read", 40, 22.5), ("read", 50, 17.0)],
        False,
        "auto",
        "min cycle: holding OFF for 20 s (auto: 17.0 °C < 18.0 °C)",
    ),
    "a manual OFF right after an ON is immediate, even with a 600 s min cycle": Row(
        [("read", 0, 17.0), ("req", 10, "off")],
        False,
        "manual",
        "manual off",
        settings={"min_cycle_s": 600.0},
        accepted=True,
    ),
    "a manual ON right after an OFF waits for min cycle": Row(
        [("read", 0, 17.0), ("req", 10, "off"), ("req", 20, "on")],
        False,
        "manual",
        "min cycle: holding OFF for 20 s (manual on)",
        accepted=True,
    ),
    "the held manual ON applies once min cycle has passed": Row(
        [("read", 0, 17.0), ("req", 10, "off"), ("req", 20, "on"), ("read", 40, 17.0)],
        True,
        "manual",
        "manual on",
    ),
    "zero min cycle switches at once": Row(
        [("read", 0, 17.0), ("read", 1, 22.5)],
        False,
        "auto",
        "> 22.0",
        settings={"min_cycle_s": 0.0},
    ),
    "safety switch-off (cutoff) is not held": Row(
        [("read", 0, 17.0), ("read", 1, 45.0)], False, "fault", "cutoff"
    ),
}


@rows(MIN_CYCLE)
def test_min_cycle(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- rejected readings

REJECTED = {
    "a rejected reading switches an ON heater OFF at that read, whatever min cycle says": Row(
        [("read", 0, 17.0), ("rej", 1, "not a number")],
        False,
        "fault",
        "safety: reading rejected (not a number)",
        settings={"min_cycle_s": 600.0},
    ),
    "it stays OFF on timer ticks until a reading is accepted": Row(
        [("read", 0, 17.0), ("rej", 1, "implausible jump"), ("tick", 5)],
        False,
        "fault",
        "reading rejected (implausible jump)",
    ),
    "a manual ON stays subject to it": Row(
        [("read", 0, 17.0), ("req", 1, "on"), ("rej", 2, "not a number")],
        False,
        "fault",
        "reading rejected",
    ),
    "the next accepted reading may switch it back ON": Row(
        [("read", 0, 17.0), ("rej", 1, "not a number"), ("read", 2, 17.0)],
        True,
        "auto",
        "auto: 17.0 °C < 18.0 °C",
        settings={"min_cycle_s": 0.0},
    ),
    "... but not before min cycle has passed": Row(
        [("read", 0, 17.0), ("rej", 1, "not a number"), ("read", 2, 17.0)],
        False,
        "auto",
        "min cycle: holding OFF",
    ),
    "a manual ON is refused while the latest sample is rejected": Row(
        [("read", 0, 17.0), ("rej", 1, "not a number"), ("req", 2, "on")],
        False,
        "fault",
        "reading rejected",
        accepted=False,
    ),
    "a sample too hot for the sensor latches like the cutoff": Row(
        [("read", 0, 17.0), ("rej", 1, "reading 90.0 °C above the sensor's range", True)],
        False,
        "fault",
        f"over-temperature: reading 90.0 °C above the sensor's range {LATCH_HINT}",
    ),
    "... also when the heater was already OFF, and it stays latched": Row(
        [("read", 0, 30.0), ("rej", 1, "too hot", True), ("read", 2, 19.0)],
        False,
        "fault",
        f"over-temperature: too hot {LATCH_HINT}",
    ),
    "... but not on a disabled heater": Row(
        [("read", 0, 30.0), ("rej", 1, "too hot", True)],
        False,
        "auto",
        "disabled",
        settings={"enabled": False},
    ),
}


@rows(REJECTED)
def test_rejected_readings(row: Row) -> None:
    check(row)


def test_a_latch_restored_at_start_keeps_the_heater_off_until_reset() -> None:
    ctl = HeaterController(BASE, now=0.0, latched="runaway: 15.0 → 15.0 °C in 5m")
    assert ctl.status(0.0).latched == "runaway: 15.0 → 15.0 °C in 5m"
    for decision in (ctl.tick(1.0), ctl.observe(17.0, 0.0, 2.0), ctl.request("on", None, 3.0)):
        on = decision.on if not isinstance(decision, RequestResult) else decision.decision.on
        assert on is False
    assert ctl.status(3.0).mode == "fault"
    result = ctl.reset(4.0)
    assert result.accepted and ctl.status(4.0).latched is None
    assert ctl.observe(17.0, 0.0, 40.0).on is True  # normal control again after the reset


# --------------------------------------------------------------------------- overrides

OVERRIDES = {
    "manual on inside the band": Row(
        [("read", 0, 20.0), ("req", 1, "on")], True, "manual", "manual on", accepted=True
    ),
    "manual on above max": Row([("read", 0, 25.0), ("req", 1, "on")], True, "manual", "manual on"),
    "manual off below min": Row(
        [("read", 0, 17.0), ("read", 99, 17.0), ("req", 100, "off")],
        False,
        "manual",
        "manual off",
        accepted=True,
    ),
    "manual on with expiry shows the time left": Row(
        [("read", 0, 20.0), ("req", 1, "on", 5401.0)], True, "manual", "manual on for 1h30m"
    ),
    "override is kept until it expires": Row(
        [("read", 0, 25.0), ("req", 1, "on", 61.0), ("read", 60, 25.0)], True, "manual", "manual on"
    ),
    "expired override returns to auto and re-evaluates": Row(
        [("read", 0, 25.0), ("req", 1, "on", 61.0), ("read", 61, 25.0)],
        False,
        "auto",
        "manual on expired; auto: 25.0 °C > 22.0 °C",
    ),
    "expiry is noticed on a timer tick without a new reading": Row(
        [("read", 0, 25.0), ("req", 1, "on", 40.0), ("read", 35, 25.0), ("tick", 40)],
        False,
        "auto",
        "manual on expired",
    ),
    "expired override inside the band leaves the heater as it is": Row(
        [("read", 0, 20.0), ("req", 1, "on", 61.0), ("read", 61, 20.0)],
        True,
        "auto",
        "manual on expired; auto: 20.0 °C within 18.0–22.0 °C, staying ON",
    ),
    "auto re-evaluates at once (manual off → auto below min → ON)": Row(
        [
            ("read", 0, 17.0),
            ("read", 99, 17.0),
            ("req", 100, "off"),
            ("read", 199, 17.0),
            ("req", 200, "auto"),
        ],
        True,
        "auto",
        "auto: 17.0 °C < 18.0 °C",
        accepted=True,
    ),
    "auto re-evaluates at once (manual on → auto above max → OFF)": Row(
        [("read", 0, 25.0), ("req", 1, "on"), ("read", 99, 25.0), ("req", 100, "auto")],
        False,
        "auto",
        "auto: 25.0 °C > 22.0 °C",
        accepted=True,
    ),
}


@rows(OVERRIDES)
def test_overrides(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- manual ON vs safety

MANUAL_VS_SAFETY = {
    "manual on refused before the first reading": Row(
        [("req", 1, "on")], False, "auto", "no reading so far", accepted=False
    ),
    "manual on refused with a stale reading": Row(
        [("read", 0, 20.0), ("req", 31, "on")],
        False,
        "fault",
        "heater cannot be switched on: reading 31 s old",
        accepted=False,
    ),
    "manual on refused with a NaN reading": Row(
        [("read", 0, 20.0), ("read", 1, NAN), ("req", 2, "on")],
        False,
        "fault",
        "invalid reading (nan)",
        accepted=False,
    ),
    "manual on goes OFF when readings go stale": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("tick", 31)],
        False,
        "fault",
        "safety: reading 31 s old",
    ),
    "manual on goes OFF on a NaN reading": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("read", 5, NAN)], False, "fault", "invalid reading"
    ),
    "manual on survives a stale episode and resumes": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("tick", 31), ("read", 100, 20.0)],
        True,
        "manual",
        "manual on",
    ),
    "manual on goes OFF and latches at the cutoff": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("read", 5, 41.0)],
        False,
        "fault",
        "41.0 °C ≥ cutoff 40.0 °C",
    ),
    "the cutoff latch cancels the manual on: after reset it is auto": Row(
        [("read", 0, 20.0), ("req", 1, "on"), ("read", 5, 41.0), ("read", 50, 25.0), ("reset", 51)],
        False,
        "auto",
        "fault cleared; auto: 25.0 °C > 22.0 °C",
        accepted=True,
    ),
    "a manual off survives the latch and the reset": Row(
        [
            ("read", 0, 17.0),
            ("req", 1, "off"),
            ("read", 5, 41.0),
            ("read", 50, 17.0),
            ("reset", 51),
        ],
        False,
        "manual",
        "fault cleared; manual off",
        accepted=True,
    ),
    "disabled heater refuses manual on": Row(
        [("read", 0, 17.0), ("req", 1, "on")],
        False,
        "auto",
        "heater is disabled (heater.enabled = false)",
        settings={"enabled": False},
        accepted=False,
    ),
    "disabled heater stays OFF whatever the reading": Row(
        [("read", 0, 17.0)], False, "auto", "disabled", settings={"enabled": False}
    ),
}


@rows(MANUAL_VS_SAFETY)
def test_manual_on_is_subject_to_every_safety_rule(row: Row) -> None:
    check(row)


# --------------------------------------------------------------------------- the rest


@pytest.mark.parametrize(
    ("mode", "until", "complaint"),
    [
        ("heat", None, "unknown mode 'heat'"),
        ("ON", None, "unknown mode"),
        ("auto", 100.0, "only applies to 'on' or 'off'"),
        ("on", 10.0, "must expire in the future"),
        ("on", 5.0, "must expire in the future"),
        ("off", math.nan, "must expire in the future"),
    ],
)
def test_invalid_requests_are_usage_errors(mode: str, until: float | None, complaint: str) -> None:
    ctl, _ = play({}, [("read", 0, 20.0)])
    with pytest.raises(ValueError, match=complaint):
        ctl.request(mode, until, 10.0)


def test_decisions_report_changes_only_when_the_relay_switches() -> None:
    ctl = HeaterController(BASE, now=0.0)
    changes = [
        ctl.observe(t, 0.0, now).changed
        for now, t in [(0, 17.0), (1, 17.0), (40, 22.5), (41, 22.5), (42, 20.0)]
    ]
    assert changes == [True, False, True, False, False]


def test_pure_step_does_not_mutate_the_given_state() -> None:
    state = HeaterState.initial(0.0)
    decision = decide_heater(BASE, state, Observation(17.0), 1.0)
    assert decision.on and decision.state.on
    assert state == HeaterState.initial(0.0)


def test_wall_clock_expiry_text_comes_from_the_shell() -> None:
    ctl = HeaterController(BASE, now=0.0, format_until=lambda until, now: "until 14:05")
    ctl.observe(20.0, 0.0, 0.0)
    assert ctl.request("on", 3600.0, 1.0).reason == "manual on until 14:05"


def test_status_shows_mode_override_expiry_latch_and_thresholds() -> None:
    ctl, _ = play({}, [("read", 0, 20.0), ("req", 10, "on", 610.0)])
    status = ctl.status(110.0).to_dict()
    assert status["on"] is True and status["mode"] == "manual"
    assert (status["override"], status["override_until"]) == ("on", 610.0)
    assert status["override_remaining_s"] == 500.0
    assert status["latched"] is None
    assert status["thresholds"]["min_temp_c"] == 18.0
    assert status["thresholds"]["cutoff_temp_c"] == 40.0

    ctl.observe(45.0, 0.0, 120.0)
    status = ctl.status(120.0).to_dict()
    assert status["latched"] == "45.0 °C ≥ cutoff 40.0 °C"
    assert (status["on"], status["mode"], status["override"]) == (False, "fault", None)


def test_changed_thresholds_apply_at_once() -> None:
    ctl, _ = play({}, [("read", 0, 19.0)])
    assert not ctl.status(1.0).on
    decision = ctl.reconfigure(replace(BASE, min_temp_c=19.5, max_temp_c=23.0), 1.0)
    assert decision.on and decision.reason == "auto: 19.0 °C < 19.5 °C"


def test_settings_come_from_the_schema_keys() -> None:
    values = schema.defaults()
    values.update({"heater.enabled": True, "heater.min_cycle_s": 45.0, "sensor.stale_after": 20.0})
    settings = HeaterSettings.from_settings(values)
    assert settings.enabled is True
    assert (settings.min_cycle_s, settings.stale_after_s) == (45.0, 20.0)
    assert settings.max_on_s == values["heater.max_on_s"]


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"heater.min_temp_c": 22.0}, "heater.min_temp_c (22) must be below heater.max_temp_c"),
        (
            {"heater.cutoff_temp_c": 22.0},
            "heater.max_temp_c (22) must be below heater.cutoff_temp_c (22)",
        ),
        ({"heater.max_on_s": 0}, "heater.max_on_s must be > 0"),
        ({"heater.runaway_gain_c": 0}, "heater.runaway_gain_c must be > 0"),
        ({"heater.runaway_window_s": -1}, "heater.runaway_window_s must be > 0"),
        ({"heater.min_cycle_s": -1}, "heater.min_cycle_s must be >= 0"),
        ({"sensor.stale_after": 0}, "sensor.stale_after must be > 0"),
        ({"heater.max_on_s": "an hour"}, "heater.max_on_s: invalid duration"),
    ],
)
def test_inconsistent_settings_are_refused_in_one_line(
    changes: dict[str, Any], complaint: str
) -> None:
    values = {
        **schema.defaults(),
        "heater.min_temp_c": 18.0,
        "heater.max_temp_c": 22.0,
        "heater.cutoff_temp_c": 40.0,
        **changes,
    }
    with pytest.raises(ValueError, match=re.escape(complaint)) as info:
        HeaterSettings.from_settings(values)
    assert "\n" not in str(info.value)


def test_missing_key_is_named() -> None:
    values = schema.defaults()
    del values["heater.max_on_s"]
    with pytest.raises(ValueError, match="missing setting heater.max_on_s"):
        HeaterSettings.from_settings(values)
