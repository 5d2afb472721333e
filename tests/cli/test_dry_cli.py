"""``filamentctl dry ...`` against a real simulated service process, as a user runs it.

One service for the module (heater and fan enabled, storage band 20–22 °C, the default cap of
50 °C); a second one with the heater disabled. Each test leaves no session running.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ServiceProcess, raw_request, wait_until

ENV = {
    "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.5",
    "FILAMENTCTL_HEATER__ENABLED": "true",
    "FILAMENTCTL_FAN__ENABLED": "true",
}


@pytest.fixture(scope="module")
def box() -> Iterator[ServiceProcess]:
    svc = ServiceProcess(env=ENV).start()
    try:
        wait_until(lambda: status(svc)["reading"] is not None, what="the first reading")
        yield svc
    finally:
        svc.cleanup()


@pytest.fixture(autouse=True)
def no_session_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "box" in request.fixturenames:
        svc: ServiceProcess = request.getfixturevalue("box")
        if status(svc)["drying"] is not None:
            svc.cli("dry", "stop")


def status(svc: ServiceProcess) -> dict[str, Any]:
    """``status`` over the socket (cheap enough to poll)."""
    [reply] = raw_request(svc.socket, b'{"id": 1, "op": "status"}\n')
    assert reply["ok"], reply
    data: dict[str, Any] = reply["result"]
    return data


def cli_json(svc: ServiceProcess, *args: str) -> Any:
    result = svc.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("filamentctl: ")
    return lines[0]


def band(svc: ServiceProcess) -> tuple[float, float]:
    th = status(svc)["heater"]["thresholds"]
    return th["min_temp_c"], th["max_temp_c"]


def test_a_timed_session_runs_at_the_pla_target_then_returns_to_storage(
    box: ServiceProcess,
) -> None:
    result = box.cli("dry", "start", "pla", "--for", "20s")
    assert result.returncode == 0, result.stderr
    assert "drying PLA at 50 °C" in result.stdout and "capped" in result.stdout

    drying = cli_json(box, "dry", "status")
    assert (drying["material"], drying["target_c"], drying["profile_temp_c"]) == ("PLA", 50, 55)
    assert drying["max_s"] == 20.0
    assert band(box) == (48.0, 50.0)  # the heater band follows the session
    assert cli_json(box, "status")["drying"]["id"] == drying["id"]

    wait_until(lambda: status(box)["drying"] is None, timeout=60, what="the session's end")

    assert band(box) == (20.0, 22.0)  # back to the storage band
    assert cli_json(box, "dry", "status") is None
    last = cli_json(box, "dry", "history")[-1]
    assert (last["id"], last["material"], last["reason"]) == (drying["id"], "PLA", "time")
    assert last["duration_s"] == pytest.approx(20.0, abs=2.0)
    assert {"started", "ended", "peak_temp_c", "water_removed_g"} <= set(last)
    text = box.cli("dry", "history").stdout
    assert "PLA" in text and "time" in text


def test_a_temperature_above_the_cap_exits_2_naming_the_cap(box: ServiceProcess) -> None:
    result = box.cli("dry", "start", "pla", "--temp", "200")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "200 °C" in line and "50 °C" in line and "dry.max_temp_c" in line
    assert status(box)["drying"] is None


def test_an_unknown_material_exits_2_listing_the_profiles(box: ServiceProcess) -> None:
    result = box.cli("dry", "start", "unobtainium")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "unobtainium" in line
    assert all(name in line for name in ("PLA", "PETG", "ABS", "TPU", "PA-CF"))


def test_a_bad_duration_is_a_usage_error(box: ServiceProcess) -> None:
    result = box.cli("dry", "start", "pla", "--for", "soon")
    assert result.returncode == 2
    assert "--for" in one_line(result.stderr)


def test_stop_ends_the_session_and_says_what_came_out(box: ServiceProcess) -> None:
    assert box.cli("dry", "start", "PETG").returncode == 0
    text = box.cli("dry", "status").stdout
    assert "drying PETG at 50 °C" in text and "left" in text and "%" in text
    result = box.cli("dry", "stop")
    assert result.returncode == 0, result.stderr
    assert "drying PETG ended (stopped)" in result.stdout and "g of water" in result.stdout
    assert band(box) == (20.0, 22.0)
    again = box.cli("dry", "stop")
    assert again.returncode == 1 and "no drying session" in one_line(again.stderr)


def test_profiles_list_the_cap(box: ServiceProcess) -> None:
    doc = cli_json(box, "dry", "profiles")
    assert doc["cap_c"] == 50.0
    pla = next(p for p in doc["profiles"] if p["name"] == "PLA")
    assert (pla["temp_c"], pla["runs_at_c"], pla["capped"]) == (55.0, 50.0, True)
    assert "PA-CF" in box.cli("dry", "profiles").stdout


def test_a_session_survives_a_service_restart() -> None:
    svc = ServiceProcess(env=ENV).start()
    try:
        started = cli_json(svc, "dry", "start", "abs", "--for", "1h")
        assert svc.signal(signal.SIGTERM) == 0
        svc.start()
        resumed = cli_json(svc, "dry", "status")
        assert resumed["id"] == started["id"] and resumed["material"] == "ABS"
        assert band(svc) == (48.0, 50.0)
    finally:
        svc.cleanup()


def test_no_session_with_the_heater_disabled() -> None:
    svc = ServiceProcess(env={"FILAMENTCTL_SENSOR__READ_INTERVAL": "0.5"}).start()
    try:
        result = svc.cli("dry", "start", "pla")
        assert result.returncode == 1
        assert "heater.enabled" in one_line(result.stderr)
        assert status(svc)["drying"] is None
    finally:
        svc.cleanup()
