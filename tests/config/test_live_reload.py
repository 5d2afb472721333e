"""Live reload: a running service applies a changed configuration without a restart."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.schema import SCHEMA
from filamentctl.service.reload import RESTART_KEYS, apply_reload, parts_of
from tests.helpers import ServiceProcess, in_process_service, settings, wait_until
from tests.servers import MS, VictoriaMetricsServer, free_port

HEATER = {
    "sensor__read_interval": 0.1,
    "heater__enabled": True,
    "heater__min_temp_c": 15.0,
    "heater__max_temp_c": 17.0,
    "heater__min_cycle_s": 0.0,
}


def heater_on(service: Any) -> bool:
    return bool(service.status()["heater"]["on"])


def test_changed_heater_thresholds_apply_at_once_in_process() -> None:
    values = settings(**HEATER)
    with in_process_service(values) as service:
        service.box.set(temperature_c=19.0, humidity=30.0, fault=None)
        wait_until(lambda: service.latest and abs(service.latest.temperature_c - 19) < 0.5)
        assert not heater_on(service)
        new = {**values, "heater.min_temp_c": 21.0, "heater.max_temp_c": 23.0}
        report = apply_reload(service, new)
        assert report["applied"] == ["heater.max_temp_c", "heater.min_temp_c"]
        assert report["restart_required"] == [] and report["errors"] == []
        assert heater_on(service)  # re-evaluated at once, not at the next reading
        assert service.status()["heater"]["thresholds"]["min_temp_c"] == 21.0


def test_disabling_a_running_heater_switches_it_off_at_once() -> None:
    values = settings(**HEATER)
    with in_process_service(values) as service:
        service.box.set(temperature_c=12.0, humidity=30.0, fault=None)
        wait_until(lambda: heater_on(service), what="heater ON below the band")
        report = apply_reload(service, {**values, "heater.enabled": False})
        assert report["applied"] == ["heater.enabled"] and report["restart_required"] == []
        assert not heater_on(service)
        assert service.control.board.heater.pin_level == 0  # active-high: OFF is level 0
        # ... and enabling it again waits for a restart (the pin is claimed at start).
        report = apply_reload(service, values)
        assert report["restart_required"] == ["heater.enabled"]
        assert not heater_on(service)


def test_keys_that_need_hardware_are_reported_not_applied() -> None:
    values = settings(**HEATER)
    with in_process_service(values) as service:
        report = apply_reload(service, {**values, "heater.gpio_pin": 5, "log.level": "warning"})
        assert report["restart_required"] == ["heater.gpio_pin"]
        assert report["applied"] == ["log.level"]
        assert service.settings["heater.gpio_pin"] == 16  # what the relay really uses


def test_every_key_is_applied_by_a_part_or_needs_a_restart() -> None:
    # A key added to the schema without saying who applies it would be "changed" on reload
    # but neither applied nor reported as needing a restart.
    unplaced = [k for k in SCHEMA if k not in RESTART_KEYS and not parts_of(k)]
    assert unplaced == []
    assert RESTART_KEYS <= set(SCHEMA)
    assert {k for k in SCHEMA if "settings" in parts_of(k)} >= {
        "sensor.read_interval",
        "dry.max_temp_c",
    }
    assert parts_of("sensor.stale_after") == ("control", "sensor")
    assert parts_of("metrics.listen") == ()


def test_a_part_that_fails_keeps_its_old_values_and_the_others_apply() -> None:
    values = settings(**HEATER)
    with in_process_service(values) as service:
        # Inconsistent heater thresholds (max below min): the controller refuses them.
        report = apply_reload(
            service, {**values, "heater.max_temp_c": 10.0, "storage.max_backlog": 1234}
        )
        assert report["applied"] == ["storage.max_backlog"]
        assert len(report["errors"]) == 1 and report["errors"][0].startswith("control: ")
        assert service.settings["heater.max_temp_c"] == 17.0
        assert service.history.max_backlog == 1234


def test_a_backend_change_swaps_the_sink_without_losing_the_backlog(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    values = settings(
        sensor__read_interval=0.1,
        storage__commit_interval=0.1,
        database__type="victoriametrics",
        database__victoriametrics__url=dead,
        writer__flush_interval=0.1,
        retry__backoff_base=0.1,
        retry__backoff_max=0.2,
        data__measurement=unique_name,
    )
    with in_process_service(values) as service:
        wait_until(lambda: service.status()["storage"]["backlog"] >= 5, what="a backlog")
        report = apply_reload(
            service, {**values, "database.victoriametrics.url": victoriametrics_server.url}
        )
        assert report["applied"] == ["database.victoriametrics.url"]
        wait_until(lambda: service.status()["storage"]["connected"], what="the new sink")
        service.request_stop()
        taken = service.history.query(0)
    delivered = victoriametrics_server.points(unique_name, expected=len(taken))
    assert {r.time_ns // MS * MS for r in taken} <= {t for t, _ in delivered}


@pytest.fixture
def box() -> Iterator[ServiceProcess]:
    # Only this test's home decides (tests/conftest.py keeps the outer FILAMENTCTL_*, VAULT_* out).
    proc = ServiceProcess()
    yield proc
    proc.cleanup()


def cli_ok(proc: ServiceProcess, *args: str, input: str | None = None) -> str:
    result = proc.cli(*args, input=input)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_config_set_changes_a_running_service_without_restart(box: ServiceProcess) -> None:
    cli_ok(box, "config", "init")
    for key, value in (
        ("sensor.type", "simulated"),
        ("sensor.read_interval", "0.2"),
        ("heater.enabled", "true"),
        ("heater.min_temp_c", "15"),
        ("heater.max_temp_c", "17"),
        ("heater.min_cycle_s", "0"),
    ):
        cli_ok(box, "config", "set", key, value)
    box.start()
    pid = box.proc.pid if box.proc else None
    cli_ok(box, "sim", "set", "--temperature", "19", "--humidity", "30")

    def status() -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(cli_ok(box, "status", "--json"))
        return doc

    def temperature() -> float:
        reading = status()["reading"]
        return float(reading["temperature_c"]) if reading else float("nan")

    wait_until(lambda: abs(temperature() - 19) < 0.5, what="19 °C")
    assert status()["heater"]["on"] is False
    cli_ok(box, "config", "set", "heater.max_temp_c", "23")
    result = box.cli("config", "set", "heater.min_temp_c", "21")
    assert result.returncode == 0, result.stderr
    if "cannot reload" in result.stderr:
        pytest.fail("the service does not serve config.reload (see Service._handlers)")
    assert "applied by the running service" in result.stdout
    wait_until(lambda: status()["heater"]["on"], timeout=2.0, what="the heater to switch on")
    assert box.proc is not None and box.proc.pid == pid and box.proc.poll() is None


def test_config_set_without_a_service_just_stores(tmp_path: Path) -> None:
    proc = ServiceProcess(home=tmp_path / "h")
    proc.env.pop("FILAMENTCTL_CONFIG_KEY", None)
    proc.home.mkdir()
    assert proc.cli("config", "init").returncode == 0
    result = proc.cli("config", "set", "heater.min_temp_c", "18")
    assert result.returncode == 0 and "running service" not in result.stdout + result.stderr
    assert os.path.exists(proc.home / "config" / "config.db")
