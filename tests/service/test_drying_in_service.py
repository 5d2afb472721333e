"""Drying sessions in a real in-process service at accelerated time.

The service runs on a hand clock (monotonic and wall time both come from it), so hours of a
session pass in a few thousand steps: each step advances the clock, takes exactly one reading
from the simulated box (``sample_once``, as test_control_in_service does) and runs the drying
tick the control timer would run. The simulated box is the real physical model (heater, fan
vents, a spool giving off water faster when warm); relays are gpiozero's MockFactory pins.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from filamentctl import paths as _paths
from filamentctl.client import Client, ServiceError
from filamentctl.core.reading import Sample
from filamentctl.service.app import Service
from filamentctl.service.reload import apply_reload
from filamentctl.store.latch import Latch, LatchStore
from tests.helpers import settings, short_home, wait_until

HEATER_PIN = 16
STEP_S = 15.0
HOUR = 3600.0
WALL_BASE_S = 1_790_000_000.0

STORAGE = {
    "heater__enabled": True,
    "heater__gpio_pin": HEATER_PIN,
    "heater__min_temp_c": 20.0,
    "heater__max_temp_c": 22.0,
    "heater__cutoff_temp_c": 60.0,
    "fan__enabled": True,
    "fan__min_humidity": 40.0,
    "fan__max_humidity": 60.0,
    # The test takes every reading itself; the sampler's own loop sleeps for an hour.
    "sensor__read_interval": 3600.0,
    "sensor__stale_after": 7200.0,
}


class HandClock:
    """Monotonic and wall time that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def mono(self) -> float:
        return self.t

    def wall_ns(self) -> int:
        return int((WALL_BASE_S + self.t) * 1e9)


class Box:
    """A service on a hand clock in its own FILAMENTCTL_HOME; ``restart()`` keeps the home."""

    def __init__(self, home: Path, clock: HandClock, **overrides: Any) -> None:
        self.home = home
        self.clock = clock
        self.values = settings(**{**STORAGE, **overrides})
        self.factory = MockFactory()
        self.svc = self._start()
        self.previous: Sample | None = None

    def _start(self) -> Service:
        paths = _paths.resolve({"FILAMENTCTL_HOME": str(self.home)})
        svc = Service(
            self.values,
            paths,
            simulate=True,
            clock=self.clock.mono,
            wall_ns=self.clock.wall_ns,
            pin_factory=self.factory,
        )
        svc.start()
        wait_until(lambda: svc.box is not None and svc.box.reads >= 1, what="the first read")
        self.previous = svc.sample_once(None)
        return svc

    def restart(self) -> None:
        self.svc.stop(delivery_timeout=1.0)
        self.factory = MockFactory()
        self.svc = self._start()

    def step(self, seconds: float = STEP_S) -> None:
        self.clock.t += seconds
        self.previous = self.svc.sample_once(self.previous)
        self.svc.drying.tick()

    def run_until_ended(self, limit_s: float) -> dict[str, Any]:
        """Step until the session ends (at most ``limit_s`` of box time); its history record."""
        end = self.clock.t + limit_s
        while self.svc.drying.session is not None and self.clock.t < end:
            self.step()
        assert self.svc.drying.session is None, "the session did not end"
        return self.call("dry.history")[-1]

    def call(self, op: str, **args: Any) -> Any:
        with Client.connect(self.svc.paths.socket, timeout=5.0) as client:
            return client.call(op, args)

    def stop(self) -> None:
        self.svc.stop(delivery_timeout=1.0)


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def box(home: Path) -> Iterator[Box]:
    b = Box(home, HandClock())
    yield b
    b.stop()


def heater_band(b: Box) -> tuple[float, float]:
    th = b.svc.status()["heater"]["thresholds"]
    return th["min_temp_c"], th["max_temp_c"]


def test_a_simulated_session_ends_on_the_plateau_before_its_maximum_time(box: Box) -> None:
    water_before = float(box.svc.box.state()["filament_water_g"])
    started = box.call("dry.start", material="pla")
    assert (started["material"], started["target_c"], started["capped"]) == ("PLA", 50.0, True)
    assert heater_band(box) == (48.0, 50.0)

    record = box.run_until_ended(9 * HOUR)

    assert record["reason"] == "plateau", record
    assert 4 * HOUR <= record["duration_s"] < 8 * HOUR  # after the minimum, before the maximum
    assert heater_band(box) == (20.0, 22.0)  # back to the storage band
    assert 48.0 <= record["peak_temp_c"] < 52.0
    # The estimate is a lower bound within its stated uncertainty of what the spool lost.
    released = water_before - float(box.svc.box.state()["filament_water_g"])
    estimate, spread = record["water_removed_g"], record["water_uncertainty_g"]
    assert 0 < spread < estimate
    assert estimate - spread <= released
    assert estimate >= 0.5 * released


def test_a_spool_that_keeps_releasing_water_ends_on_the_maximum_time(box: Box) -> None:
    box.svc.box.set_filament(water_g=400.0, capacity_g=800.0)  # a big, soaked load
    box.call("dry.start", material="pla", for_s=3 * HOUR)

    record = box.run_until_ended(4 * HOUR)

    assert record["reason"] == "time", record
    assert record["duration_s"] == pytest.approx(3 * HOUR, abs=2 * STEP_S)
    assert heater_band(box) == (20.0, 22.0)
    assert record["water_removed_g"] > 1.0


def test_status_shows_the_session_the_band_the_vents_and_what_is_expected(box: Box) -> None:
    box.call("dry.start", material="PETG")
    for _ in range(int(0.5 * HOUR / STEP_S)):
        box.step()

    drying = box.call("status")["drying"]

    assert drying["material"] == "PETG"
    assert (drying["target_c"], drying["profile_temp_c"], drying["capped"]) == (50.0, 63.0, True)
    assert drying["cap_reason"] == "dry.max_temp_c"
    assert drying["band"] == {"min_temp_c": 48.0, "max_temp_c": 50.0}
    assert drying["elapsed_s"] == pytest.approx(0.5 * HOUR, abs=STEP_S)
    assert drying["expected"]["reason"] == "time"  # still giving off water
    assert drying["trend"]["slope_g_m3_h"] > drying["plateau_slope"]
    assert drying["vents_measured"] >= 2 and drying["water_removed_g"] > 0
    assert box.call("dry.status") == box.call("status")["drying"]


def test_the_fan_vents_on_the_schedule_during_a_session(box: Box) -> None:
    box.call("dry.start", material="pla")
    seen: list[tuple[float, bool, str]] = []
    for _ in range(int(1300 / STEP_S)):
        box.step()
        fan = box.svc.status()["fan"]
        seen.append((box.clock.t, fan["on"], fan["reason"]))
    on = [s for s in seen if s[1]]
    assert on and all(r == "drying: venting moist air" for _, _, r in on)
    assert any(r == "drying: box closed between vents" for _, o, r in seen if not o)
    # Two vents of about a minute each in the first ~22 minutes.
    assert 2 * 60 <= len(on) * STEP_S <= 2 * 60 + 2 * STEP_S


def test_a_session_resumes_after_a_restart_and_keeps_its_figures(home: Path) -> None:
    clock = HandClock()
    b = Box(home, clock)
    try:
        started = b.call("dry.start", material="pla")
        for _ in range(int(1.5 * HOUR / STEP_S)):
            b.step()
        before = b.call("dry.status")
        assert (
            json.loads((home / "state" / "drying-session.json").read_text())["id"]
            == (started["id"])
        )

        b.restart()
        clock.t += 60.0  # the restart took a minute
        b.step()

        after = b.call("dry.status")
        assert after["id"] == started["id"]
        assert after["elapsed_s"] == pytest.approx(before["elapsed_s"] + 60 + STEP_S, abs=1)
        assert after["water_removed_g"] >= before["water_removed_g"] > 0
        assert after["vents_measured"] >= before["vents_measured"]
        assert after["peak_temp_c"] >= before["peak_temp_c"]
        assert after["trend"] is not None  # rebuilt from the readings the history kept
        assert heater_band(b) == (48.0, 50.0)
    finally:
        b.stop()


def test_a_session_whose_maximum_time_passed_while_stopped_ends_cleanly(home: Path) -> None:
    clock = HandClock()
    b = Box(home, clock)
    try:
        b.call("dry.start", material="pla", for_s=HOUR)
        b.step()
        b.svc.stop(delivery_timeout=1.0)
        clock.t += 2 * HOUR
        b.factory = MockFactory()
        b.svc = b._start()

        assert b.svc.drying.session is None
        record = b.call("dry.history")[-1]
        assert record["reason"] == "time"
        assert record["duration_s"] == pytest.approx(HOUR)
        assert b.call("status")["drying"] is None
        assert heater_band(b) == (20.0, 22.0)
        assert not (home / "state" / "drying-session.json").exists()
    finally:
        b.stop()


def test_a_latched_fault_during_a_session_ends_it_with_reason_fault(box: Box) -> None:
    box.call("dry.start", material="pla")
    for _ in range(8):
        box.step()
    box.svc.box.set(temperature_c=61.0)  # at the 60 °C cutoff: the heater latches
    box.svc.filter.trust_next()
    box.step()

    record = box.call("dry.history")[-1]
    assert record["reason"] == "fault"
    assert "latched" in record["detail"]
    assert box.svc.status()["drying"] is None
    heater = box.svc.status()["heater"]
    assert heater["latched"] is not None and heater["on"] is False


def test_a_session_resumed_while_latched_ends_with_reason_fault(home: Path) -> None:
    clock = HandClock()
    b = Box(home, clock)
    try:
        b.call("dry.start", material="pla")
        b.step()
        b.svc.stop(delivery_timeout=1.0)
        # A latch stored by an earlier run: it must win over the stored session.
        state_dir = home / "state"
        LatchStore(state_dir).save(Latch("runaway: test", 30.0, int(WALL_BASE_S * 1e9)))
        b.factory = MockFactory()
        b.svc = b._start()

        assert b.svc.drying.session is None
        record = b.call("dry.history")[-1]
        assert record["reason"] == "fault" and "latched" in record["detail"]
        assert b.svc.status()["heater"]["on"] is False
    finally:
        b.stop()


def test_events_are_published_when_a_session_starts_and_ends(box: Box) -> None:
    sub = box.svc.bus.subscribe(frozenset({"drying"}))
    box.call("dry.start", material="pla", for_s=60.0)
    record = box.run_until_ended(120.0)
    events = []
    while (item := sub.get(timeout=0.1)) is not None:
        events.append(item)
    assert [name for name, _ in events] == ["drying.started", "drying.ended"]
    ended = events[1][1]
    assert ended["reason"] == "time" and ended["material"] == "PLA"
    assert ended["water_removed_g"] == record["water_removed_g"]
    assert "water removed" in ended["message"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ({"material": "unobtainium"}, "invalid_args", ["PLA", "PETG", "PA-CF"]),
        ({"material": "pla", "temp_c": 200}, "invalid_args", ["50 °C", "dry.max_temp_c"]),
        ({"material": "pla", "temp_c": 20}, "invalid_args", ["too low"]),
        ({"material": "pla", "for_s": -1}, "invalid_args", ["--for"]),
        ({"material": "pla", "colour": "red"}, "invalid_args", ["unknown argument"]),
    ],
)
def test_start_refuses_bad_requests(
    box: Box, args: dict[str, Any], code: str, words: list[str]
) -> None:
    with pytest.raises(ServiceError) as info:
        box.call("dry.start", **args)
    assert info.value.code == code
    assert all(w in str(info.value) for w in words), str(info.value)
    assert box.svc.drying.session is None
    assert heater_band(box) == (20.0, 22.0)


def test_a_second_start_is_refused_while_a_session_runs(box: Box) -> None:
    box.call("dry.start", material="pla")
    with pytest.raises(ServiceError) as info:
        box.call("dry.start", material="petg")
    assert info.value.code == "refused" and "dry stop" in str(info.value)
    assert box.svc.drying.session is not None
    assert box.svc.drying.session.state.material == "PLA"


def test_stop_returns_the_heater_to_its_storage_band(box: Box) -> None:
    box.call("dry.start", material="tpu", temp_c=45)
    assert heater_band(box) == (43.0, 45.0)
    record = box.call("dry.stop")
    assert record["reason"] == "stopped" and record["material"] == "TPU"
    assert heater_band(box) == (20.0, 22.0)
    with pytest.raises(ServiceError) as info:
        box.call("dry.stop")
    assert info.value.code == "refused"


def reload(b: Box, **changes: Any) -> dict[str, Any]:
    """A live configuration reload, as 'config set' triggers it."""
    new = {**b.svc.settings, **{k.replace("__", "."): v for k, v in changes.items()}}
    result: dict[str, Any] = apply_reload(b.svc, new)
    return result


def test_user_profiles_and_a_lower_cap_apply_to_a_running_session(box: Box) -> None:
    result = reload(box, dry__profiles={"pla+": {"temp_c": 48, "min": "2h", "max": "5h"}})
    assert result["applied"] == ["dry.profiles"]
    names = [p["name"] for p in box.call("dry.profiles")["profiles"]]
    assert "pla+" in names and "PLA" in names
    started = box.call("dry.start", material="PLA+")
    assert (started["target_c"], started["max_s"]) == (48.0, 5 * HOUR)

    reload(box, dry__max_temp_c=40.0)
    box.step()

    assert heater_band(box) == (38.0, 40.0)
    assert box.call("dry.status")["target_c"] == 40.0


def test_a_lower_cutoff_pulls_a_running_session_under_it(box: Box) -> None:
    box.call("dry.start", material="pla")
    assert heater_band(box) == (48.0, 50.0)
    result = reload(box, heater__cutoff_temp_c=45.0)
    assert result["errors"] == []
    box.step()
    assert heater_band(box) == (38.0, 40.0)  # 5 °C under the new cutoff
    assert box.svc.status()["heater"]["thresholds"]["cutoff_temp_c"] == 45.0


def test_disabling_the_heater_ends_a_running_session(box: Box) -> None:
    box.call("dry.start", material="pla")
    reload(box, heater__enabled=False)
    box.step()
    record = box.call("dry.history")[-1]
    assert record["reason"] == "fault" and "heater disabled" in record["detail"]
    assert box.svc.status()["heater"]["on"] is False
