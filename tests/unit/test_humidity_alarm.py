"""The desiccant alarm rule: humidity above a level for a duration fires once, never before."""

from __future__ import annotations

import pytest

from filamentctl.core.humidity_alarm import HYSTERESIS_RH, HumidityAlarm

# (seconds, %RH) readings -> the events they cause, as (seconds, kind); level 40 %, 5 s.
CASES: list[tuple[str, list[tuple[float, float]], list[tuple[float, str]]]] = [
    ("dry box never fires", [(t, 30.0) for t in range(0, 20)], []),
    (
        "70 % from the start: fires at 5 s exactly, not before, and only once",
        [(t / 2, 70.0) for t in range(0, 40)],
        [(5.0, "raised")],
    ),
    ("at the level is not above it", [(t, 40.0) for t in range(0, 20)], []),
    (
        "a dip to the level restarts the count",
        [(0, 70.0), (4, 70.0), (4.5, 40.0), (5, 70.0), (9.5, 70.0), (10, 70.0)],
        [(10.0, "raised")],
    ),
    (
        "wobbling just under the level after firing does not re-arm",
        [(0, 50.0), (5, 50.0), (6, 39.0), (7, 50.0), (20, 50.0)],
        [(5.0, "raised")],
    ),
    (
        f"falling {HYSTERESIS_RH} % below the level re-arms; the next wet spell fires again",
        [(0, 50.0), (5, 50.0), (6, 37.0), (7, 50.0), (11, 50.0), (12, 50.0)],
        [(5.0, "raised"), (6.0, "cleared"), (12.0, "raised")],
    ),
    ("NaN is ignored", [(0, 70.0), (3, float("nan")), (5, 70.0)], [(5.0, "raised")]),
    (
        "a clock step back restarts the count rather than firing early",
        [(100, 70.0), (90, 70.0), (94, 70.0), (95, 70.0)],
        [(95.0, "raised")],
    ),
]


@pytest.mark.parametrize(
    ("readings", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_alarm_fires_once_after_the_duration(
    readings: list[tuple[float, float]], expected: list[tuple[float, str]]
) -> None:
    alarm = HumidityAlarm(40.0, 5.0)
    events = []
    for now, rh in readings:
        event = alarm.observe(rh, now)
        if event is not None:
            events.append((now, event.kind))
    assert events == expected


def test_no_event_before_the_duration_even_one_reading_short() -> None:
    alarm = HumidityAlarm(40.0, 5.0)
    assert alarm.observe(70.0, 1000.0) is None
    assert alarm.observe(70.0, 1004.999) is None
    assert alarm.state() == "above"
    event = alarm.observe(70.0, 1005.0)
    assert event is not None and event.kind == "raised"
    assert event.since == 1000.0 and event.at == 1005.0 and event.humidity == 70.0
    assert alarm.state() == "alarmed"


def test_zero_level_is_off() -> None:
    alarm = HumidityAlarm(0.0, 5.0)
    assert [alarm.observe(99.0, t) for t in range(20)] == [None] * 20
    assert alarm.state() == "off"


def test_a_restored_alarm_does_not_fire_again_while_the_box_is_wet() -> None:
    """After a restart (state stored by the service) a still-wet box stays quiet."""
    alarm = HumidityAlarm(40.0, 5.0, alarmed=True)
    assert [alarm.observe(70.0, t) for t in range(60)] == [None] * 60
    cleared = alarm.observe(30.0, 61.0)
    assert cleared is not None and cleared.kind == "cleared"


def test_reconfigure_restarts_the_count_but_keeps_a_fired_alarm() -> None:
    alarm = HumidityAlarm(40.0, 5.0)
    alarm.observe(70.0, 0.0)
    alarm.reconfigure(40.0, 10.0)
    assert alarm.observe(70.0, 6.0) is None  # counting again from 6 s
    assert alarm.observe(70.0, 15.9) is None
    event = alarm.observe(70.0, 16.0)
    assert event is not None and event.for_s == 10.0
    alarm.reconfigure(80.0, 10.0)
    assert alarm.state() == "alarmed"
    assert alarm.observe(70.0, 17.0) is not None  # 70 < 80 - 2: cleared, re-armed
