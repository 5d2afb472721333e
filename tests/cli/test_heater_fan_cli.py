"""``filamentctl heater|fan ...`` against a real simulated service process, as a user runs it.

One service for the module (heater band 18–22 °C, cutoff 40 °C, fan band 40–60 %RH, no
minimum cycle); each test hands both relays back to ``auto`` and clears the box afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ServiceProcess, short_home, wait_until

ENV = {
    "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
    "FILAMENTCTL_HEATER__ENABLED": "true",
    "FILAMENTCTL_HEATER__MIN_TEMP_C": "18",
    "FILAMENTCTL_HEATER__MAX_TEMP_C": "22",
    "FILAMENTCTL_HEATER__CUTOFF_TEMP_C": "40",
    "FILAMENTCTL_HEATER__MIN_CYCLE_S": "0",
    "FILAMENTCTL_FAN__ENABLED": "true",
    "FILAMENTCTL_FAN__MIN_HUMIDITY": "40",
    "FILAMENTCTL_FAN__MAX_HUMIDITY": "60",
    "FILAMENTCTL_FAN__MIN_CYCLE_S": "0",
}


@pytest.fixture(scope="module")
def box() -> Iterator[ServiceProcess]:
    svc = ServiceProcess(env=ENV).start()
    try:
        # A reading to read, and the heater's decision on it (not on the wait for one).
        wait_until(lambda: svc.cli("read", "--json").returncode == 0, what="a first reading")
        wait_until(lambda: state(svc, "heater")["reason"] != "waiting for the first reading")
        yield svc
    finally:
        svc.cleanup()


@pytest.fixture(autouse=True)
def back_to_auto(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "box" in request.fixturenames:
        svc: ServiceProcess = request.getfixturevalue("box")
        for args in (("sim", "set", "--temperature", "20", "--humidity", "50"),):
            assert svc.cli(*args).returncode == 0, args
        wait_until(lambda: reading(svc)["temperature_c"] == 20.0, what="20 °C")
        for args in (("heater", "reset"), ("heater", "auto"), ("fan", "auto"), ("sim", "clear")):
            result = svc.cli(*args)
            assert result.returncode == 0, f"{args}: {result.stderr}"


def state(svc: ServiceProcess, name: str) -> dict[str, Any]:
    result = svc.cli(name, "status", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def reading(svc: ServiceProcess) -> dict[str, Any]:
    result = svc.cli("read", "--json")
    assert result.returncode == 0, (
        f"read --json exited {result.returncode}: {result.stderr}\n"
        f"service log (end):\n{svc.log()[-3000:]}"
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_heater_status_json_has_every_field(box: ServiceProcess) -> None:
    heater = state(box, "heater")

    assert {"on", "pin_level", "mode", "reason", "override_until", "thresholds"} <= set(heater)
    assert heater["pin_level"] in (0, 1)
    assert heater["mode"] in ("auto", "manual", "fault")
    assert heater["thresholds"]["min_temp_c"] == 18.0
    assert heater["thresholds"]["cutoff_temp_c"] == 40.0


def test_heater_on_for_a_while_then_auto(box: ServiceProcess) -> None:
    box.cli("sim", "set", "--temperature", "20")
    wait_until(lambda: reading(box)["temperature_c"] == 20.0, what="20 °C")

    result = box.cli("heater", "on", "--for", "2h")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("heater: ON [manual until ")
    heater = state(box, "heater")
    assert (heater["on"], heater["mode"], heater["pin_level"]) == (True, "manual", 1)
    assert heater["override_until"] is not None
    assert heater["reason"].startswith("manual on until ")

    result = box.cli("heater", "auto", "--json")

    assert result.returncode == 0, result.stderr
    heater = json.loads(result.stdout)
    assert (heater["mode"], heater["override_until"]) == ("auto", None)


def test_heater_text_status_shows_pin_level_and_reason(box: ServiceProcess) -> None:
    box.cli("sim", "set", "--temperature", "17")
    # The heater may still be ON from before (22 °C, inside the band): wait for the 17 °C reading.
    wait_until(lambda: reading(box)["temperature_c"] == 17.0, what="17 °C")
    wait_until(lambda: state(box, "heater")["on"], what="heater ON at 17 °C")

    result = box.cli("heater", "status")

    assert result.returncode == 0
    assert result.stdout.startswith("heater: ON [auto], pin level 1 — auto: 17.0 °C < 18.0 °C")
    assert "min_temp_c 18.0" in result.stdout


def test_heater_on_is_refused_during_a_latched_fault_until_reset(box: ServiceProcess) -> None:
    box.cli("sim", "set", "--temperature", "41")
    wait_until(lambda: state(box, "heater")["mode"] == "fault", what="the cutoff latch")

    result = box.cli("heater", "on")

    assert (result.returncode, result.stdout) == (1, "")
    assert "latched" in one_line(result.stderr)
    result = box.cli("heater", "reset")  # still 41 °C
    assert result.returncode == 1
    assert "cutoff" in one_line(result.stderr)

    box.cli("sim", "set", "--temperature", "20")
    wait_until(lambda: reading(box)["temperature_c"] == 20.0, what="the box to cool")
    assert box.cli("heater", "on").returncode == 1  # cool, but still latched

    result = box.cli("heater", "reset", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "auto"
    assert box.cli("heater", "on").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("heater", "on", "--for", "banana"),
        ("heater", "off", "--for", "0"),
        ("heater", "on", "--for", "-5m"),
        ("heater", "auto", "--for", "1h"),
        ("heater", "warm"),
        ("fan", "on", "--for", "30x"),
    ],
)
def test_invalid_arguments_exit_2(box: ServiceProcess, args: tuple[str, ...]) -> None:
    result = box.cli(*args)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip()


def test_fan_on_off_auto_and_reset(box: ServiceProcess) -> None:
    box.cli("sim", "set", "--humidity", "50")
    wait_until(lambda: reading(box)["humidity"] == 50.0, what="50 %RH")

    assert box.cli("fan", "on").returncode == 0
    fan = state(box, "fan")
    assert (fan["on"], fan["mode"], fan["pin_level"]) == (True, "manual", 1)

    result = box.cli("fan", "off", "--for", "10m", "--json")
    assert result.returncode == 0, result.stderr
    fan = json.loads(result.stdout)
    assert (fan["on"], fan["mode"]) == (False, "manual")
    assert fan["override_until"] is not None

    box.cli("sim", "set", "--humidity", "70")
    wait_until(lambda: reading(box)["humidity"] == 70.0, what="70 %RH")
    assert state(box, "fan")["on"] is False  # the manual OFF holds
    result = box.cli("fan", "auto")
    assert result.returncode == 0
    assert result.stdout.startswith("fan: ON [auto]")  # re-evaluated at once

    result = box.cli("fan", "reset")
    assert result.returncode == 0
    assert "fan: ON" in result.stdout


def test_heater_status_without_a_service_exits_3() -> None:
    result = ServiceProcess(home=short_home()).cli("heater", "status")

    assert result.returncode == 3
    assert "no filamentctl service is running" in one_line(result.stderr)
