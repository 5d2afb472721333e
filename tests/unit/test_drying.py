"""The drying core: profiles, the cap, the vent schedule, the plateau rule and the water estimate.

Table tests on synthetic readings: each series is what the sensor would report during a session
(AH in g/m³, one reading every 10 s) with the vent schedule's drops in it, so the tests exercise
the same closed-box trend the service uses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from filamentctl.core import drying
from filamentctl.core.drying import (
    AboveCap,
    DryingError,
    DryingSession,
    DryingSettings,
    Point,
    SessionState,
    UnknownMaterial,
    closed_trend,
    end_reason,
    in_vent,
    is_plateau,
    load_profiles,
    plan_session,
    vent_drop,
)

HOUR = 3600.0
T0 = 1_790_000_000.0
EVERY, VENT = 600.0, 60.0
SETTINGS = DryingSettings()  # the schema's defaults: cap 50 °C, window 1 h, ±1 g/m³/h


# --------------------------------------------------------------------------- profiles


def test_every_required_material_has_a_profile() -> None:
    names = {p.name for p in drying.BUILTIN}
    assert {"PLA", "PETG", "ABS", "ASA", "TPU", "PA", "PC", "PVA", "PETG-CF", "PA-CF"} <= names
    for p in drying.BUILTIN:
        assert drying.MIN_TARGET_C <= p.temp_c <= 120
        assert 0 < p.min_s <= p.max_s


@pytest.mark.parametrize("name", ["pla", "PLA", " Pla ", "pLa"])
def test_names_are_case_insensitive(name: str) -> None:
    assert drying.find_profile(load_profiles(), name).name == "PLA"


def test_nylon_is_pa() -> None:
    assert drying.find_profile(load_profiles(), "nylon").name == "PA"


def test_an_unknown_material_lists_the_profiles() -> None:
    with pytest.raises(UnknownMaterial) as info:
        drying.find_profile(load_profiles(), "unobtainium")
    message = str(info.value)
    assert "'unobtainium'" in message
    assert all(p.name in message for p in drying.BUILTIN)
    assert "\n" not in message


def test_user_profiles_add_and_change() -> None:
    profiles = load_profiles(
        {"PLA+": {"temp_c": 48, "min": "2h", "max": "5h"}, "petg": {"temp_c": 60}}
    )
    added = drying.find_profile(profiles, "pla+")
    assert (added.temp_c, added.min_s, added.max_s, added.source) == (
        48.0,
        2 * HOUR,
        5 * HOUR,
        "dry.profiles",
    )
    changed = drying.find_profile(profiles, "PETG")
    assert (changed.name, changed.temp_c, changed.max_s) == ("PETG", 60.0, 8 * HOUR)
    assert changed.source == "built-in, changed by dry.profiles"


@pytest.mark.parametrize(
    ("custom", "words"),
    [
        ({"new": {"temp_c": 50}}, "needs temp_c, min and max"),
        ({"pla": {"temp_c": 500}}, "from 30 to 120"),
        ({"pla": {"temp_c": "hot"}}, "a number"),
        ({"pla": {"min": "9h"}}, "must not exceed max"),
        ({"pla": {"max": "forever"}}, "invalid duration"),
        ({"pla": {"max": 8}}, "from 1m to 7d"),
        ({"pla": {"colour": "red"}}, "unknown field"),
        ({"pla": 55}, "must be an object"),
        ({"bad/name": {"temp_c": 50, "min": "1h", "max": "2h"}}, "letters, digits"),
    ],
)
def test_invalid_user_profiles_are_refused_with_one_line(
    custom: dict[str, Any], words: str
) -> None:
    with pytest.raises(DryingError) as info:
        load_profiles(custom)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert drying.profiles_problem(custom) is not None
    assert drying.profiles_problem({}) is None


# --------------------------------------------------------------------------- the cap


def test_a_profile_above_the_cap_runs_at_the_cap_and_says_so() -> None:
    plan = plan_session(SETTINGS, "petg")
    assert (plan.target_c, plan.profile_temp_c, plan.capped) == (50.0, 63.0, True)
    assert plan.band == (48.0, 50.0)


def test_a_profile_under_the_cap_runs_at_its_own_target() -> None:
    plan = plan_session(DryingSettings(max_temp_c=60.0, cutoff_temp_c=70.0), "pla")
    assert (plan.target_c, plan.capped) == (55.0, False)
    assert (plan.min_s, plan.max_s) == (4 * HOUR, 8 * HOUR)


def test_a_temperature_above_the_cap_is_refused_naming_the_cap() -> None:
    with pytest.raises(AboveCap) as info:
        plan_session(SETTINGS, "pla", temp_c=200)
    assert "50 °C" in str(info.value) and "dry.max_temp_c" in str(info.value)


def test_the_cap_keeps_its_margin_below_the_cutoff() -> None:
    settings = DryingSettings(max_temp_c=80.0, cutoff_temp_c=60.0)
    assert settings.cap_c == 60.0 - drying.CUTOFF_MARGIN_C
    assert "heater.cutoff_temp_c" in settings.cap_reason
    assert plan_session(settings, "abs").target_c == 55.0
    with pytest.raises(AboveCap, match="heater.cutoff_temp_c"):
        plan_session(settings, "abs", temp_c=58)


def test_for_replaces_the_maximum_time() -> None:
    plan = plan_session(SETTINGS, "pla", for_s=20.0)
    assert (plan.max_s, plan.min_s) == (20.0, 20.0)
    with pytest.raises(DryingError):
        plan_session(SETTINGS, "pla", for_s=0)


def test_no_session_when_the_cap_is_too_low_to_dry() -> None:
    with pytest.raises(DryingError, match="raise dry.max_temp_c"):
        plan_session(DryingSettings(max_temp_c=25.0), "pla")


# --------------------------------------------------------------------------- schedule


def test_the_box_vents_at_the_end_of_each_period() -> None:
    assert not in_vent(0, EVERY, VENT)
    assert not in_vent(539, EVERY, VENT)
    assert in_vent(540, EVERY, VENT) and in_vent(599, EVERY, VENT)
    assert not in_vent(600, EVERY, VENT)
    assert in_vent(1140, EVERY, VENT)


# --------------------------------------------------------------------------- the plateau rule


def session_series(
    release: Callable[[float], float],
    hours: float,
    *,
    noise: float = 0.0,
    gaps: tuple[tuple[float, float], ...] = (),
    jump_after_gap: float = 0.0,
    dt: float = 10.0,
    seed: int = 1,
) -> list[Point]:
    """Readings of a session: AH rises at ``release(t_hours)`` g/m³/h while the box is closed
    and falls back to 10 g/m³ during each vent; ``gaps`` (seconds into the session) have no
    readings; after each gap the whole level is ``jump_after_gap`` higher (a lid opened)."""
    rng = random.Random(seed)
    points: list[Point] = []
    ah, offset = 10.0, 0.0
    t = 0.0
    while t <= hours * HOUR:
        if in_vent(t, EVERY, VENT):
            ah = 10.0 + (ah - 10.0) * math.exp(-dt / 20.0)
        else:
            ah += release(t / HOUR) * dt / HOUR
        in_gap = any(a <= t < b for a, b in gaps)
        if any(b <= t < b + dt for _a, b in gaps):
            offset += jump_after_gap
        if not in_gap:
            points.append(Point(T0 + t, ah + offset + rng.gauss(0.0, noise), 50.0))
        t += dt
    return points


def trend_at(points: list[Point], hours: float) -> drying.Trend | None:
    return closed_trend(points, T0, T0 + hours * HOUR, 3600.0, EVERY, VENT)


def constant(rate: float) -> Callable[[float], float]:
    return lambda _h: rate


@pytest.mark.parametrize(
    ("case", "series", "plateau"),
    [
        ("flat", session_series(constant(0.0), 2), True),
        ("flat, slight release", session_series(constant(0.3), 2), True),
        ("still releasing", session_series(constant(5.0), 2), False),
        ("still falling", session_series(constant(-3.0), 2), False),
        ("noisy but flat", session_series(constant(0.0), 2, noise=0.08), True),
        ("too noisy to tell", session_series(constant(0.0), 2, noise=1.5), False),
        ("gap of 20 min", session_series(constant(0.0), 2, gaps=((4200, 5400),)), True),
        (
            "gap with a level jump",
            # Inside one closed stretch: the stretch splits at the gap, the jump is no trend.
            session_series(constant(0.0), 2, gaps=((4350, 4500),), jump_after_gap=3.0),
            True,
        ),
        (
            "sensor dead most of the window",
            session_series(constant(0.0), 2, gaps=((3900, 7000),)),
            False,
        ),
    ],
)
def test_the_plateau_rule(case: str, series: list[Point], plateau: bool) -> None:
    trend = trend_at(series, 2)
    assert is_plateau(trend, 1.0) is plateau, (case, trend)


def test_the_trend_measures_the_release_rate_not_the_vent_drops() -> None:
    trend = trend_at(session_series(constant(4.0), 2), 2)
    assert trend is not None
    assert trend.slope == pytest.approx(4.0, rel=0.01)
    assert trend.stretches >= 5 and trend.coverage > 0.6


def test_noise_only_delays_the_end() -> None:
    # The same slowing release, with and without noise: noise never ends a session earlier.
    def decay(h: float) -> float:
        return 8.0 * math.exp(-h / 1.2)

    def first_plateau(points: list[Point]) -> float | None:
        for minutes in range(60, 10 * 60, 5):
            if is_plateau(trend_at(points, minutes / 60), 1.0):
                return minutes / 60
        return None

    clean = first_plateau(session_series(decay, 10))
    noisy = first_plateau(session_series(decay, 10, noise=0.2))
    assert clean is not None and noisy is not None
    assert noisy >= clean


def test_no_trend_without_two_closed_stretches() -> None:
    points = session_series(constant(0.0), 0.15)
    assert trend_at(points, 0.15) is None
    assert not is_plateau(None, 1.0)


@pytest.mark.parametrize(
    ("elapsed_h", "plateau", "expected"),
    [
        (1.0, True, None),  # before the minimum time, even on a plateau
        (4.0, True, "plateau"),
        (5.0, False, None),
        (8.0, False, "time"),
        (8.0, True, "time"),  # both at once: the maximum time wins
    ],
)
def test_end_reason(elapsed_h: float, plateau: bool, expected: str | None) -> None:
    plan = plan_session(SETTINGS, "pla")
    assert end_reason(plan, elapsed_h * HOUR, plateau) == expected


# --------------------------------------------------------------------------- sessions


def new_session(points: list[Point] = (), **state: Any) -> DryingSession:  # type: ignore[assignment]
    plan = plan_session(SETTINGS, "pla")
    st = SessionState(
        id="t1",
        material=plan.material,
        target_c=plan.target_c,
        profile_temp_c=plan.profile_temp_c,
        capped=plan.capped,
        min_s=plan.min_s,
        max_s=plan.max_s,
        started_at=T0,
        **state,
    )
    return DryingSession(st, SETTINGS, points)


def run(session: DryingSession, points: list[Point], since: float = -1) -> tuple[str, float]:
    """Feed readings after ``since`` (Unix s) and check after each; (reason, time)."""
    for p in points:
        if p.t <= since:
            continue
        session.observe(p)
        reason = session.check(p.t)
        if reason is not None:
            return reason, p.t
    raise AssertionError("the session did not end")


def drying_curve(h: float) -> float:
    return 12.0 * math.exp(-h / 1.3)


def test_a_drying_spool_ends_on_the_plateau_after_the_minimum_time() -> None:
    points = session_series(drying_curve, 9, noise=0.05)
    reason, at = run(new_session(), points)
    assert reason == "plateau"
    assert 4 * HOUR <= at - T0 < 8 * HOUR


def test_a_spool_that_keeps_releasing_ends_on_the_maximum_time() -> None:
    points = session_series(constant(6.0), 9, noise=0.05)
    reason, at = run(new_session(), points)
    assert (reason, at - T0) == ("time", pytest.approx(8 * HOUR, abs=10))


def test_a_session_restarted_mid_way_ends_as_if_it_had_not_been() -> None:
    points = session_series(drying_curve, 9, noise=0.05)
    straight = new_session()
    expected = run(straight, points)

    before = new_session()
    cut = T0 + 3 * HOUR
    for p in points:
        if p.t > cut:
            break
        before.observe(p)
        assert before.check(p.t) is None
    stored = before.state.to_dict()  # what the service keeps in drying-session.json
    # After the restart: the stored state, and the readings the history kept for the window.
    kept = [p for p in points if cut - 2 * HOUR <= p.t <= cut]
    resumed = DryingSession(SessionState.from_dict(stored), SETTINGS, kept)

    assert run(resumed, points, since=cut) == expected
    assert resumed.state.water_g == pytest.approx(straight.state.water_g)
    assert resumed.state.vents_measured == straight.state.vents_measured


def test_a_restart_with_readings_missing_still_ends() -> None:
    # Down for two hours mid-session: no readings then; the session resumes and still ends.
    points = session_series(drying_curve, 9, noise=0.05, gaps=((3 * HOUR, 5 * HOUR),))
    session = new_session()
    reason, at = run(session, points)
    # Half the window must hold closed-box readings again before a plateau can count.
    assert reason == "plateau" and at - T0 >= 5 * HOUR + 0.5 * HOUR
    assert session.state.vents_done >= session.state.vents_measured + 10  # unmeasured vents


def test_stored_state_round_trips_and_rejects_damage() -> None:
    state = new_session().state
    assert SessionState.from_dict(state.to_dict()) == state
    for broken in ({}, {**state.to_dict(), "max_s": "8h"}, {**state.to_dict(), "target_c": None}):
        with pytest.raises(ValueError):
            SessionState.from_dict(broken)


# --------------------------------------------------------------------------- water


def test_each_vent_counts_the_humidity_it_removed() -> None:
    # Closed, the AH rises 6 g/m³/h for 9 minutes (+0.9 g/m³); each vent takes it back down.
    points = session_series(constant(6.0), 1)
    drop = vent_drop(points, T0, 0, EVERY, VENT)
    assert drop == pytest.approx(0.86, abs=0.08)
    session = new_session(points)
    session.measure_vents(T0 + HOUR)
    assert session.state.vents_measured == 5  # the sixth vent ends at 1 h: not measured yet
    water, spread = session.water()
    assert water == pytest.approx(5 * 0.86 * 0.05, rel=0.1)  # × 50 L
    assert 0 < spread < water


def test_a_vent_without_readings_is_not_counted() -> None:
    points = session_series(constant(6.0), 1, gaps=((300, 800),))
    assert vent_drop(points, T0, 0, EVERY, VENT) is None


def test_a_short_gap_before_a_vent_widens_the_window() -> None:
    points = session_series(constant(6.0), 1, gaps=((470, 540),))
    drop = vent_drop(points, T0, 0, EVERY, VENT)
    assert drop is not None and drop > 0.5


@pytest.mark.parametrize("dt", [5.0, 30.0, 60.0])
def test_vents_are_measured_even_with_slow_sampling(dt: float) -> None:
    # heater.enabled allows a read interval up to 60 s.
    points = session_series(constant(6.0), 1, dt=dt)
    drops = [vent_drop(points, T0, i, EVERY, VENT) for i in range(5)]
    assert all(d is not None and d > 0.5 for d in drops), drops


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"sensor.type": "dht11", "dry.max_temp_c": 55.0}, "top of the dht11 sensor's range"),
        ({"dry.vent_for": 400.0}, "at most half of dry.vent_every"),
        ({"dry.plateau_window": 900.0}, "at least twice dry.vent_every"),
    ],
)
def test_the_configuration_refuses_drying_settings_that_cannot_work(
    changes: dict[str, Any], words: str
) -> None:
    from filamentctl.core import schema

    assert schema.validate({}) == []  # the defaults are consistent, for every sensor below
    problems = schema.validate(changes)
    assert any(words in p for p in problems), problems


@pytest.mark.parametrize("sensor", ["bme280", "dht22", "dht11", "simulated"])
def test_the_default_cap_lies_within_every_sensors_range(sensor: str) -> None:
    from filamentctl.core import schema, sensors

    assert schema.defaults()["dry.max_temp_c"] <= sensors.temperature_range(sensor)[1]
    assert schema.defaults()["dry.max_temp_c"] <= (
        schema.defaults()["heater.cutoff_temp_c"] - drying.CUTOFF_MARGIN_C
    )


def test_settings_come_from_the_schema_defaults() -> None:
    from filamentctl.core import schema

    assert DryingSettings.from_settings(schema.defaults()) == DryingSettings()
    with pytest.raises(DryingError):
        DryingSettings.from_settings({**schema.defaults(), "dry.profiles": {"x": {}}})
