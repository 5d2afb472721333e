"""The CLI against a real simulated service process, as a user or a script would run it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from tests.helpers import ServiceProcess, short_home, wait_until


@pytest.fixture(scope="module")
def box() -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        env={
            "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
            "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "0.2",
        }
    ).start()
    try:
        wait_until(
            lambda: json.loads(svc.cli("status", "--json").stdout)["readings_total"] >= 3,
            what="three readings",
        )
        yield svc
    finally:
        svc.cleanup()


def test_status_without_service_exits_3_with_one_line_hint() -> None:
    home = short_home()
    svc = ServiceProcess(home=home)  # never started
    result = svc.cli("status")
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no filamentctl service is running" in lines[0]
    assert "filamentctl run" in lines[0]


def test_status_json_is_one_document_on_stdout(box: ServiceProcess) -> None:
    result = box.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["simulated"] is True
    assert state["reading"]["seq"] >= 1
    assert state["sensor"]["health"] == "OK"


def test_status_text_shows_reading_sensor_and_storage(box: ServiceProcess) -> None:
    result = box.cli("status")
    assert result.returncode == 0
    assert "°C" in result.stdout and "%RH" in result.stdout
    assert "sensor    simulated: OK" in result.stdout
    assert "storage   none" in result.stdout


def test_read_json_comes_from_service(box: ServiceProcess) -> None:
    data = json.loads(box.cli("read", "--json").stdout)
    assert data["source"] == "service"
    assert {"temperature_c", "humidity", "dew_point_c", "absolute_humidity_g_m3"} <= set(data)


def test_read_direct_uses_configured_sensor_without_service() -> None:
    svc = ServiceProcess(env={"FILAMENTCTL_SENSOR__TYPE": "simulated"})
    try:
        result = svc.cli("read", "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["source"] == "direct"
        assert 0 <= data["humidity"] <= 100
    finally:
        svc.cleanup()


def test_sim_set_pins_values_and_clear_frees_them(box: ServiceProcess) -> None:
    result = box.cli("sim", "set", "--temperature", "17.5", "--humidity", "33")
    assert result.returncode == 0, result.stderr
    assert "17.5" in result.stdout
    wait_until(
        lambda: json.loads(box.cli("read", "--json").stdout)["temperature_c"] == 17.5,
        what="pinned temperature to appear",
    )
    assert json.loads(box.cli("read", "--json").stdout)["humidity"] == 33.0
    assert box.cli("sim", "clear").returncode == 0


def test_sim_fault_error_marks_sensor_and_clear_recovers(box: ServiceProcess) -> None:
    assert box.cli("sim", "set", "--fault", "error").returncode == 0
    wait_until(
        lambda: json.loads(box.cli("status", "--json").stdout)["sensor"]["health"] != "OK",
        what="sensor health to degrade",
    )
    state = json.loads(box.cli("status", "--json").stdout)
    assert state["sensor"]["errors"] >= 1 and state["sensor"]["last_error"]
    assert box.cli("sim", "clear").returncode == 0
    # Recovered: good reads again; health stays DEGRADED for a while (recent errors), not FAULT.
    wait_until(
        lambda: (
            json.loads(box.cli("status", "--json").stdout)["sensor"]["consecutive_failures"] == 0
        ),
        timeout=30,
        what="sensor to recover",
    )
    assert json.loads(box.cli("status", "--json").stdout)["sensor"]["health"] in ("OK", "DEGRADED")
    # One log line per fault episode, not one per failed read.
    starts = [ln for ln in box.log().splitlines() if "sensor failing" in ln]
    assert len(starts) == 1, starts


def test_sim_invalid_fault_is_usage_error(box: ServiceProcess) -> None:
    result = box.cli("sim", "set", "--fault", "fire")
    assert result.returncode == 2
    assert result.stderr.startswith("filamentctl: ") and result.stderr.count("\n") == 1
    assert "'stale', 'error', 'nan', 'spike'" in result.stderr


def test_history_formats(box: ServiceProcess) -> None:
    rows = json.loads(box.cli("history", "--since", "1h", "--format", "json").stdout)
    assert len(rows) >= 3
    assert all("time" in r and "seq" in r for r in rows)
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    table = list(csv.reader(io.StringIO(box.cli("history", "--format", "csv").stdout)))
    assert table[0][:2] == ["time", "seq"] and len(table) >= 4
    text = box.cli("history").stdout
    assert "time (UTC)" in text


def test_history_bad_duration_is_usage_error(box: ServiceProcess) -> None:
    result = box.cli("history", "--since", "a while")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


NOTHING_TO_FLUSH = {"delivered": 0, "remaining": 0, "ok": True, "error": None}


def test_flush_with_no_database_succeeds(box: ServiceProcess) -> None:
    result = box.cli("flush", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**NOTHING_TO_FLUSH, "backend": "none", "via": "service"}


@pytest.mark.parametrize("backend", ["none", "victoriametrics"])
def test_flush_without_a_service_or_a_history_has_nothing_to_do(backend: str) -> None:
    # Port 9 (discard): nothing is sent, as there is no history to send from.
    env = {
        "FILAMENTCTL_DATABASE__TYPE": backend,
        "FILAMENTCTL_DATABASE__VICTORIAMETRICS__URL": "http://127.0.0.1:9",
    }
    never_started = ServiceProcess(env=env)
    try:
        result = never_started.cli("flush", "--json")
    finally:
        never_started.cleanup()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**NOTHING_TO_FLUSH, "backend": backend, "via": "direct"}


def test_heater_on_when_disabled_is_refused_with_reason(box: ServiceProcess) -> None:
    result = box.cli("heater", "on")
    assert result.returncode == 1
    assert "heater.enabled" in result.stderr


def test_heater_invalid_duration_is_usage_error(box: ServiceProcess) -> None:
    result = box.cli("heater", "on", "--for", "forever")
    assert result.returncode == 2


def test_missing_sensor_never_stops_the_service() -> None:
    """A BME280 that is not there: the service runs, reports FAULT, answers the socket."""
    svc = ServiceProcess(
        args=(),
        env={
            "FILAMENTCTL_SENSOR__TYPE": "bme280",
            "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.5",
            "GPIOZERO_PIN_FACTORY": "mock",
        },
    )
    try:
        svc.start()
        wait_until(
            lambda: json.loads(svc.cli("status", "--json").stdout)["sensor"]["errors"] >= 2,
            what="sensor errors",
        )
        state = json.loads(svc.cli("status", "--json").stdout)
        assert state["reading"] is None
        assert state["sensor"]["last_error"]
        result = svc.cli("sim", "set", "--temperature", "20")
        assert result.returncode == 1 and "simulated" in result.stderr
        assert svc.proc is not None and svc.proc.poll() is None
    finally:
        svc.cleanup()


def test_sim_set_non_finite_value_is_usage_error(box: ServiceProcess) -> None:
    result = box.cli("sim", "set", "--temperature", "nan")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "finite" in result.stderr


def test_history_span_beyond_a_century_is_usage_error(box: ServiceProcess) -> None:
    result = box.cli("history", "--since", "1000000000000000d")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--since" in result.stderr and "since_s" not in result.stderr  # what the user typed


def test_history_every_averages_into_buckets(box: ServiceProcess) -> None:
    rows = json.loads(box.cli("history", "--every", "1h", "--format", "json").stdout)
    raw = json.loads(box.cli("history", "--format", "json").stdout)
    assert 1 <= len(rows) <= 2 < len(raw)  # a short run falls into one or two hour buckets
