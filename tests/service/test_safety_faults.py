"""Safety under faults, as a user would meet them: a real simulated service process and the CLI.

Latches that survive restarts, readings the sensor cannot make (too hot, NaN, spikes), an OFF
that never waits, and ``relays-off`` driving the pins after the service is gone. Pin levels come
from gpiozero's mock factory (``GPIOZERO_PIN_FACTORY=mock``) where a separate process drives them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, ServiceProcess, wait_until

# A cold band for the 22 °C simulated room: the heater wants to be ON.
HEATER_ON_ENV = {
    "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
    "FILAMENTCTL_SENSOR__STALE_AFTER": "30",
    "FILAMENTCTL_HEATER__ENABLED": "true",
    "FILAMENTCTL_HEATER__GPIO_PIN": "16",
    "FILAMENTCTL_HEATER__ACTIVE_HIGH": "false",
    "FILAMENTCTL_HEATER__MIN_TEMP_C": "30",
    "FILAMENTCTL_HEATER__MAX_TEMP_C": "35",
    "FILAMENTCTL_HEATER__CUTOFF_TEMP_C": "60",
    "FILAMENTCTL_HEATER__MIN_CYCLE_S": "0",
}


@pytest.fixture
def box(request: pytest.FixtureRequest) -> Iterator[ServiceProcess]:
    extra = getattr(request, "param", {})
    svc = ServiceProcess(env={**HEATER_ON_ENV, **extra})
    try:
        yield svc
    finally:
        svc.cleanup()


def status(svc: ServiceProcess) -> dict[str, Any]:
    result = svc.cli("status", "--json")
    assert result.returncode == 0, result.stderr + svc.log()[-2000:]
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def heater(svc: ServiceProcess) -> dict[str, Any]:
    section: dict[str, Any] = status(svc)["heater"]
    return section


def cli_ok(svc: ServiceProcess, *args: str) -> str:
    result = svc.cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def restart(svc: ServiceProcess) -> None:
    assert svc.signal(signal.SIGTERM) == 0, svc.log()[-2000:]
    svc.start()


def assert_latched_after_restart(svc: ServiceProcess, cause: str) -> None:
    restart(svc)
    cli_ok(svc, "sim", "set", "--temperature", "20")  # cold: auto control would want it ON
    wait_until(lambda: (status(svc)["reading"] or {}).get("temperature_c") == 20.0)
    h = heater(svc)
    assert (h["on"], h["mode"]) == (False, "fault"), h
    assert cause in h["latched"] and h["latched_since"], h
    refused = svc.cli("heater", "on")
    assert refused.returncode == 1 and "latched" in refused.stderr
    log = svc.log()
    assert "kept across the restart" in log
    # Only `heater reset` clears it, and the log says who did.
    cli_ok(svc, "heater", "reset")
    wait_until(lambda: heater(svc)["on"], what="the heater back ON after the reset")
    assert heater(svc)["latched"] is None
    assert "heater latch cleared by pid" in svc.log()
    restart(svc)  # and a cleared latch stays cleared
    wait_until(lambda: heater(svc)["mode"] == "auto", what="auto after a restart")


def test_a_cutoff_latch_survives_a_restart_until_heater_reset(box: ServiceProcess) -> None:
    box.start()
    cli_ok(box, "sim", "set", "--temperature", "61")
    wait_until(lambda: heater(box)["latched"], what="the cutoff latch")
    assert "61.0 °C ≥ cutoff 60.0 °C" in heater(box)["latched"]
    # Loud, with the reading and the limit, although the heater was already OFF at 61 °C.
    assert "CRITICAL" in box.log() and "heater LATCHED OFF: 61.0 °C ≥ cutoff 60.0 °C" in box.log()
    assert_latched_after_restart(box, "cutoff 60.0 °C")


@pytest.mark.parametrize("box", [{"FILAMENTCTL_HEATER__RUNAWAY_WINDOW_S": "10"}], indirect=True)
def test_a_runaway_latch_survives_a_restart_until_heater_reset(box: ServiceProcess) -> None:
    box.start()
    cli_ok(box, "sim", "set", "--temperature", "15")  # a sensor that fell out of the box
    wait_until(lambda: heater(box)["on"], what="the heater ON")
    wait_until(lambda: heater(box)["latched"], timeout=30, what="the runaway latch")
    assert "runaway" in heater(box)["latched"]
    assert_latched_after_restart(box, "runaway")


@pytest.mark.parametrize("damage", ["garbage", "symlink", "no cause"])
def test_a_damaged_latch_file_keeps_the_heater_latched_off(
    box: ServiceProcess, damage: str
) -> None:
    """When unsure, OFF: a latch file that cannot be read counts as a latch, until a person
    looks and runs `heater reset` (which replaces it)."""
    state = box.home / "state"
    state.mkdir(parents=True, exist_ok=True)
    latch = state / "heater-latch.json"
    if damage == "garbage":
        latch.write_bytes(b"\x00{not json")
    elif damage == "symlink":
        (box.home / "elsewhere.json").write_text('{"cause": "x", "since_ns": 1}\n')
        latch.symlink_to(box.home / "elsewhere.json")
    else:
        latch.write_text('{"since_ns": 1}\n')
    box.start()
    wait_until(lambda: status(box)["reading"] is not None, what="the first reading")
    h = heater(box)
    assert (h["on"], h["mode"]) == (False, "fault"), h
    assert h["latched"].startswith("the stored latch could not be read"), h
    refused = box.cli("heater", "on")
    assert refused.returncode == 1 and "latched" in refused.stderr
    assert "heater latch file damaged" in box.log()
    cli_ok(box, "heater", "reset")
    wait_until(lambda: heater(box)["on"], what="the heater back ON after the reset")
    assert not latch.is_symlink() and not latch.exists()


def test_a_reading_above_the_sensor_range_latches_within_one_read(box: ServiceProcess) -> None:
    box.start()
    wait_until(lambda: heater(box)["on"], what="the heater ON")
    cli_ok(box, "sim", "set", "--temperature", "90")
    wait_until(lambda: heater(box)["latched"], what="the over-temperature latch")
    h = heater(box)
    assert (h["on"], h["mode"]) == (False, "fault")
    assert "above the simulated sensor's range (max 85 °C)" in h["latched"], h
    # It latched at the first such read, not after the reading went stale.
    assert "old" not in h["latched"] and h["latched"].startswith("over-temperature")


def test_a_nan_reading_switches_the_heater_off_at_that_read(box: ServiceProcess) -> None:
    box.start()
    wait_until(lambda: heater(box)["on"], what="the heater ON")
    cli_ok(box, "sim", "set", "--fault", "nan")
    # sensor.stale_after is 30 s: the heater must go OFF at the rejected read, long before.
    wait_until(lambda: not heater(box)["on"], timeout=10, what="the heater OFF")
    h = heater(box)
    assert h["mode"] == "fault" and "reading rejected (not a number" in h["reason"], h
    assert h["latched"] is None  # not hot: recovers by itself
    cli_ok(box, "sim", "clear")
    wait_until(lambda: heater(box)["on"], what="the heater back ON with good readings")


@pytest.mark.parametrize("box", [{"FILAMENTCTL_HEATER__MIN_CYCLE_S": "600"}], indirect=True)
def test_heater_off_is_immediate_despite_a_long_min_cycle(box: ServiceProcess) -> None:
    box.start()
    wait_until(lambda: heater(box)["on"], what="the heater ON")  # just switched: cycle starts
    out = json.loads(cli_ok(box, "heater", "off", "--json"))
    assert (out["on"], out["mode"], out["reason"]) == (False, "manual", "manual off")
    assert heater(box)["pin_level"] == 1  # active-low board: OFF is level 1
    # Switching back ON is what waits.
    out = json.loads(cli_ok(box, "heater", "on", "--json"))
    assert out["on"] is False and "min cycle: holding OFF" in out["reason"]


@pytest.mark.parametrize("box", [{"FILAMENTCTL_SENSOR__READ_INTERVAL": "0.1"}], indirect=True)
def test_a_spike_train_is_never_stored_and_never_latches(box: ServiceProcess) -> None:
    box.start()
    wait_until(lambda: status(box)["readings_total"] >= 3, what="a few readings")
    before = status(box)["readings_total"]
    cli_ok(box, "sim", "set", "--fault", "spike")  # +40 °C on every second read: 62 °C
    wait_until(
        lambda: status(box)["sensor"]["rejected"] >= 20, timeout=30, what="20 spikes rejected"
    )
    after = status(box)
    assert after["readings_total"] >= before + 15  # the good readings between spikes go on
    rows = json.loads(cli_ok(box, "history", "--format", "json", "--since", "1h"))
    assert rows and max(r["temperature_c"] for r in rows) < 60.0
    assert after["heater"]["latched"] is None


def test_config_refuses_a_cutoff_the_sensor_cannot_measure(tmp_path: Path) -> None:
    svc = ServiceProcess(home=tmp_path / "h")
    svc.env.pop("FILAMENTCTL_CONFIG_KEY", None)
    svc.home.mkdir()
    cli_ok(svc, "config", "init")
    cli_ok(svc, "config", "set", "sensor.type", "simulated")
    result = svc.cli("config", "set", "heater.cutoff_temp_c", "100")
    assert result.returncode == 2
    assert "85 °C" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "heater.cutoff_temp_c" in result.stderr


# --------------------------------------------------------------------------- relays-off


def relays_off(home: Path, *extra_env: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.update({"FILAMENTCTL_HOME": str(home), "GPIOZERO_PIN_FACTORY": "mock", **dict(extra_env)})
    return subprocess.run(
        [sys.executable, "-m", "filamentctl", "relays-off", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@pytest.mark.parametrize(
    "box",
    [{"FILAMENTCTL_FAN__ENABLED": "true", "FILAMENTCTL_FAN__GPIO_PIN": "20"}],
    indirect=True,
)
def test_relays_off_after_the_service_died_drives_both_pins_off(box: ServiceProcess) -> None:
    box.start()
    wait_until(lambda: heater(box)["on"], what="the heater ON")
    box.kill9()  # what ExecStopPost= runs after: a death the service could not handle

    result = relays_off(box.home)

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["source"] == "record"  # what the service itself drove, not a guess
    levels = {r["relay"]: (r["gpio_pin"], r["level"], r["off"]) for r in out["relays"]}
    # Heater on an active-low board (OFF = level 1), fan active-high (OFF = level 0).
    assert levels == {"heater": (16, 1, True), "fan": (20, 0, True)}


def test_relays_off_for_a_named_box_drives_that_boxs_pins(tmp_path: Path) -> None:
    """``filamentctl@a``'s ExecStopPost runs ``relays-off`` with FILAMENTCTL_BOX=a: it must find
    box a's record (its own pins), not the default box's."""
    home = tmp_path / "h"
    svc = ServiceProcess(
        home=home,
        env={**HEATER_ON_ENV, "FILAMENTCTL_BOX": "a", "FILAMENTCTL_HEATER__GPIO_PIN": "21"},
    )
    try:
        svc.start(wait=False)
        socket = home / "boxes" / "a" / "run" / "filamentctl.sock"
        wait_until(socket.exists, what="box a's socket")

        def heater_a() -> dict[str, Any]:
            out = svc.cli("status", "--json")
            return dict(json.loads(out.stdout)["heater"]) if out.returncode == 0 else {}

        wait_until(lambda: heater_a().get("on"), what="box a's heater ON")
        svc.kill9()
        result = relays_off(home, ("FILAMENTCTL_BOX", "a"))
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["source"] == "record"
        assert [(r["relay"], r["gpio_pin"], r["off"]) for r in out["relays"]][:1] == [
            ("heater", 21, True)
        ]
    finally:
        svc.cleanup()


def test_relays_off_without_a_record_uses_the_configuration(tmp_path: Path) -> None:
    home = tmp_path / "h"
    svc = ServiceProcess(home=home)
    svc.env.pop("FILAMENTCTL_CONFIG_KEY", None)
    home.mkdir()
    cli_ok(svc, "config", "init")
    for key, value in (
        ("heater.enabled", "true"),
        ("heater.gpio_pin", "5"),
        ("heater.active_high", "false"),
        ("fan.enabled", "true"),
        ("fan.gpio_pin", "6"),
    ):
        cli_ok(svc, "config", "set", key, value)

    result = relays_off(home)

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["source"] == "configuration"
    assert {r["relay"]: (r["gpio_pin"], r["level"]) for r in out["relays"]} == {
        "heater": (5, 1),
        "fan": (6, 0),
    }


def test_relays_off_with_nothing_known_refuses_nothing(tmp_path: Path) -> None:
    result = relays_off(tmp_path / "empty")
    assert result.returncode == 0
    assert json.loads(result.stdout)["relays"] == []
