"""The gateway's companion unit: hardened (rated by ``systemd-analyze security --offline``), a
socket client of the main unit with the network and no devices, and installed by
``service install`` exactly when ``mqtt.enabled`` is true.

Like tests/ops/test_unit_security.py, ``install``/``uninstall`` run with the hidden ``--root``:
files go below a temporary directory and no systemctl runs (no systemd as PID 1 here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from filamentctl.cli.service_unit import app
from filamentctl.service.unit import UnitOptions, current_command, render_gateway_unit
from tests.helpers import REPO
from tests.ops.test_unit_security import directives, exposure, need_systemd_analyze

DESCRIPTION = "filamentctl MQTT gateway: the box in Home Assistant"
PI = UnitOptions(command=current_command(), supplementary_groups=("gpio", "i2c"))


def write(tmp_path: Path, opts: UnitOptions) -> Path:
    path = tmp_path / "filamentctl-mqtt.service"
    path.write_text(render_gateway_unit("mqtt", opts, DESCRIPTION))
    return path


def test_systemd_rates_the_gateway_unit_exposure_at_most_2(tmp_path: Path) -> None:
    assert exposure(write(tmp_path, PI)) <= 2.0
    home = UnitOptions(command=["/home/pi/.venv/bin/filamentctl"])
    assert exposure(write(tmp_path, home)) <= 2.0


def test_systemd_verify_accepts_every_directive(tmp_path: Path) -> None:
    proc = subprocess.run(
        [need_systemd_analyze(), "verify", "--man=no", str(write(tmp_path, PI))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stderr.strip() == ""
    assert proc.returncode == 0


def test_the_gateway_runs_as_the_service_user_with_network_and_no_devices() -> None:
    unit = directives(render_gateway_unit("mqtt", PI, DESCRIPTION))
    assert unit["ExecStart"] == [f"{PI.command[0]} mqtt"]
    assert (unit["User"], unit["Group"]) == (["filamentctl"], ["filamentctl"])
    assert "SupplementaryGroups" not in unit  # no gpio/i2c: it drives nothing
    assert "DeviceAllow" not in unit
    assert unit["PrivateDevices"] == ["yes"]
    assert "AF_INET" in unit["RestrictAddressFamilies"][0].split()
    assert unit["Environment"] == ["FILAMENTCTL_SOCKET=/run/filamentctl/filamentctl.sock"]
    # Stopped and restarted with the service, but it rides out a crash of the service.
    assert unit["PartOf"] == ["filamentctl.service"]
    assert "BindsTo" not in unit
    assert "filamentctl.service" in unit["After"][0].split()
    assert unit["WantedBy"] == ["filamentctl.service"]
    assert unit["RestartPreventExitStatus"] == ["2 4"]


def test_dry_run_shows_the_gateway_unit_only_when_mqtt_is_enabled(tmp_path: Path) -> None:
    runner = CliRunner()
    on = runner.invoke(
        app,
        ["install", "--dry-run", "--root", str(tmp_path)],
        env={"FILAMENTCTL_MQTT__ENABLED": "true"},
    )
    assert on.exit_code == 0, on.output
    assert "ExecStart=" in on.stdout and on.stdout.count("[Service]") == 2
    assert f"# ---- {tmp_path}/etc/systemd/system/filamentctl-mqtt.service ----" in on.stdout
    assert " mqtt\n" in on.stdout
    off = runner.invoke(
        app,
        ["install", "--dry-run", "--root", str(tmp_path)],
        env={"FILAMENTCTL_MQTT__ENABLED": "false"},
    )
    assert off.exit_code == 0, off.output
    assert off.stdout.count("[Service]") == 1
    assert list(tmp_path.iterdir()) == []


def _config(root: Path, *args: str) -> None:
    """``filamentctl config ...`` on the configuration the installed service would read."""
    env = {**os.environ}
    env["CONFIGURATION_DIRECTORY"] = str(root / "etc/filamentctl")
    env["STATE_DIRECTORY"] = str(root / "var/lib/filamentctl")
    proc = subprocess.run(
        [sys.executable, "-m", "filamentctl", "config", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr


def test_install_follows_the_stored_mqtt_enabled_and_uninstall_removes_the_unit(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    gateway_unit = tmp_path / "etc/systemd/system/filamentctl-mqtt.service"
    _config(tmp_path, "init")
    _config(tmp_path, "set", "mqtt.enabled", "true")

    result = runner.invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert directives(gateway_unit.read_text())["ExecStart"][0].endswith(" mqtt")
    assert "systemctl enable filamentctl-mqtt.service" in result.stderr

    _config(tmp_path, "set", "mqtt.enabled", "false")
    result = runner.invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not gateway_unit.exists()
    assert "mqtt.enabled is false" in result.stderr

    _config(tmp_path, "set", "mqtt.enabled", "true")
    assert runner.invoke(app, ["install", "--root", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["uninstall", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not gateway_unit.exists()
    assert not (tmp_path / "etc/systemd/system/filamentctl.service").exists()
