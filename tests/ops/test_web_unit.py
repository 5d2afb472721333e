"""The web gateway's companion unit: as hardened as the service's (rated by systemd's own tools
on the real text), installed by `service install` only when web.enabled is true.

Like tests/ops/test_unit_security.py, install/uninstall run with the hidden ``--root DIR``: no
user is created and no systemctl runs, because this machine has no systemd as PID 1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from filamentctl import paths as _paths
from filamentctl.cli.service_unit import app
from filamentctl.service.unit import (
    UnitOptions,
    current_command,
    gateway_unit_name,
    render_gateway_unit,
)
from filamentctl.store.settings import init_config, set_value
from tests.ops.test_unit_security import directives, exposure, need_systemd_analyze

WEB_UNIT = gateway_unit_name("web")
OPTS = UnitOptions(command=current_command(), supplementary_groups=("gpio", "i2c"))


def write(tmp_path: Path, opts: UnitOptions = OPTS) -> Path:
    path = tmp_path / WEB_UNIT
    path.write_text(render_gateway_unit("web", opts))
    return path


def test_systemd_rates_the_web_unit_exposure_at_most_2(tmp_path: Path) -> None:
    assert exposure(write(tmp_path)) <= 2.0


def test_under_home_the_web_unit_still_rates_at_most_2(tmp_path: Path) -> None:
    opts = UnitOptions(command=["/home/pi/.venv/bin/filamentctl"])
    assert directives(render_gateway_unit("web", opts))["ProtectHome"] == ["read-only"]
    assert exposure(write(tmp_path, opts)) <= 2.0


def test_systemd_verify_accepts_the_web_unit(tmp_path: Path) -> None:
    proc = subprocess.run(
        [need_systemd_analyze(), "verify", "--man=no", str(write(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stderr.strip() == ""
    assert proc.returncode == 0


def test_the_web_unit_runs_the_gateway_as_the_service_user_without_devices() -> None:
    unit = directives(render_gateway_unit("web", OPTS))
    assert unit["ExecStart"] == [f"{OPTS.command[0]} web"]
    assert unit["User"] == ["filamentctl"] and unit["Group"] == ["filamentctl"]
    assert "SupplementaryGroups" not in unit  # no gpio/i2c for a gateway
    assert unit["PrivateDevices"] == ["yes"]
    assert "DeviceAllow" not in unit
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["Environment"] == ["FILAMENTCTL_SOCKET=/run/filamentctl/filamentctl.sock"]
    # It must not own the service's runtime directory (systemd would remove it on stop).
    assert "RuntimeDirectory" not in unit and "StateDirectory" not in unit
    assert "filamentctl.service" in unit["After"][0]
    assert "BindsTo" not in unit and "Requires" not in unit  # outlives a service restart


def test_dry_run_shows_the_web_unit_only_when_web_is_enabled(tmp_path: Path) -> None:
    runner = CliRunner()
    off = runner.invoke(app, ["install", "--dry-run", "--root", str(tmp_path)])
    assert off.exit_code == 0, off.output
    assert WEB_UNIT not in off.stdout and " web" not in directives(off.stdout)["ExecStart"][0]
    on = runner.invoke(
        app,
        ["install", "--dry-run", "--root", str(tmp_path)],
        env={"FILAMENTCTL_WEB__ENABLED": "true"},
    )
    assert on.exit_code == 0, on.output
    main, web = on.stdout.split(f"# ---- {tmp_path}/etc/systemd/system/{WEB_UNIT} ----\n")
    assert directives(main)["Type"] == ["notify"]
    assert directives(web)["ExecStart"][0].endswith(" web")
    assert WEB_UNIT in on.stderr
    assert list(tmp_path.iterdir()) == []


def test_install_follows_the_stored_web_enabled_and_uninstall_removes_it(tmp_path: Path) -> None:
    # A real encrypted configuration where the service keeps it, key in its state directory.
    state = tmp_path / "var/lib/filamentctl"
    paths = _paths.Paths(
        tmp_path / "etc/filamentctl", state / "secrets", state, tmp_path / "run/filamentctl"
    )
    init_config(paths, {})
    set_value(paths, {}, "web.enabled", "true")
    runner = CliRunner()
    result = runner.invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    web_unit = tmp_path / "etc/systemd/system" / WEB_UNIT
    assert directives(web_unit.read_text())["ExecStart"][0].endswith(" web")
    assert f"systemctl enable {WEB_UNIT}" in result.stderr

    set_value(paths, {}, "web.enabled", "false")
    result = runner.invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not web_unit.exists()
    assert "web.enabled is false" in result.stderr

    set_value(paths, {}, "web.enabled", "true")
    assert runner.invoke(app, ["install", "--root", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["uninstall", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not web_unit.exists()
    assert not (tmp_path / "etc/systemd/system/filamentctl.service").exists()


def test_an_unreadable_configuration_leaves_the_web_unit_alone(tmp_path: Path) -> None:
    state = tmp_path / "var/lib/filamentctl"
    paths = _paths.Paths(
        tmp_path / "etc/filamentctl", state / "secrets", state, tmp_path / "run/filamentctl"
    )
    init_config(paths, {})
    web_unit = tmp_path / "etc/systemd/system" / WEB_UNIT
    web_unit.parent.mkdir(parents=True)
    web_unit.write_text("kept")
    (state / "secrets" / "config.key").unlink()  # the key is gone: cannot decrypt
    result = CliRunner().invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "cannot read the configuration" in result.stderr
    assert web_unit.read_text() == "kept"


def test_gateway_units_need_an_absolute_command() -> None:
    with pytest.raises(ValueError, match="absolute"):
        render_gateway_unit("web", UnitOptions(command=["filamentctl"]))
