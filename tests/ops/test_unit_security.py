"""The systemd unit `filamentctl service install` writes: hardened, notify + watchdog, verified by
systemd's own tools (``systemd-analyze security --offline`` and ``verify``) on the real text.

``install`` and ``uninstall`` run with the hidden ``--root DIR`` (like ``systemctl --root``): the
files go below DIR and no user is created and no systemctl is run, because this machine has no
systemd as PID 1 and tests must not change the host.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from filamentctl.cli.service_unit import app
from filamentctl.errors import UsageError
from filamentctl.service.unit import (
    UNIT_NAME,
    UnitOptions,
    current_command,
    existing_groups,
    quote_exec_arg,
    render_unit,
)
from tests.servers import unavailable

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def need_systemd_analyze() -> str:
    if SYSTEMD_ANALYZE is None:
        unavailable("systemd-analyze is not installed (apt install systemd)")
    return SYSTEMD_ANALYZE


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def write_unit(tmp_path: Path, opts: UnitOptions) -> Path:
    path = tmp_path / UNIT_NAME
    path.write_text(render_unit(opts))
    return path


def exposure(unit_file: Path) -> float:
    proc = subprocess.run(
        [need_systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = EXPOSURE.search(proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(1))


# The worst case a Pi install produces: both hardware groups present.
PI_UNIT = UnitOptions(command=current_command(), supplementary_groups=("gpio", "i2c"))


def test_systemd_rates_the_unit_exposure_at_most_2(tmp_path: Path) -> None:
    assert exposure(write_unit(tmp_path, PI_UNIT)) <= 2.0


def test_an_executable_under_home_still_rates_at_most_2(tmp_path: Path) -> None:
    opts = UnitOptions(command=["/home/pi/.venv/bin/filamentctl"], supplementary_groups=("gpio",))
    text = render_unit(opts)
    assert directives(text)["ProtectHome"] == ["read-only"]
    assert exposure(write_unit(tmp_path, opts)) <= 2.0


def test_systemd_verify_accepts_every_directive(tmp_path: Path) -> None:
    unit_file = write_unit(tmp_path, PI_UNIT)
    proc = subprocess.run(
        [need_systemd_analyze(), "verify", "--man=no", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 even for unknown keys; it reports them on stderr.
    assert proc.stderr.strip() == ""
    assert proc.returncode == 0


def test_unit_is_notify_with_a_watchdog_and_restarts_on_failure() -> None:
    unit = directives(render_unit(PI_UNIT))
    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] == ["30s"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["ExecStart"] == [f"{PI_UNIT.command[0]} run"]


def test_unit_runs_as_a_dedicated_user_with_the_hardware_groups() -> None:
    unit = directives(render_unit(PI_UNIT))
    assert unit["User"] == ["filamentctl"]
    assert unit["Group"] == ["filamentctl"]
    assert unit["SupplementaryGroups"] == ["gpio i2c"]
    assert unit["DevicePolicy"] == ["closed"]
    assert sorted(unit["DeviceAllow"]) == ["char-gpiochip rw", "char-i2c rw"]
    assert unit["CapabilityBoundingSet"] == [""]


def test_socket_directory_lets_the_service_group_in() -> None:
    unit = directives(render_unit(PI_UNIT))
    assert unit["RuntimeDirectory"] == ["filamentctl"]
    assert unit["RuntimeDirectoryMode"] == ["0750"]
    assert unit["StateDirectory"] == ["filamentctl"]
    assert unit["ConfigurationDirectory"] == ["filamentctl"]


def test_missing_hardware_groups_are_left_out_of_the_unit() -> None:
    known = {"gpio"}

    def lookup(name: str) -> object:  # the group database of a box without I2C enabled
        if name not in known:
            raise KeyError(name)
        return name

    assert existing_groups(("gpio", "i2c"), lookup) == (["gpio"], ["i2c"])
    unit = directives(render_unit(UnitOptions(command=["/usr/bin/filamentctl"])))
    assert "SupplementaryGroups" not in unit


def test_exec_start_quotes_spaces_and_escapes_specifiers() -> None:
    assert quote_exec_arg("/opt/my tools/filamentctl") == '"/opt/my tools/filamentctl"'
    assert quote_exec_arg("/opt/100%/bin") == "/opt/100%%/bin"
    with pytest.raises(ValueError, match="absolute"):
        render_unit(UnitOptions(command=["filamentctl"]))


def test_simulated_unit_runs_run_simulate() -> None:
    unit = directives(render_unit(UnitOptions(command=["/usr/bin/filamentctl"], simulate=True)))
    assert unit["ExecStart"] == ["/usr/bin/filamentctl run --simulate"]


def test_unit_drives_the_relays_off_after_any_end_and_picks_its_watchdog_signal() -> None:
    unit = directives(render_unit(PI_UNIT))
    # After SIGKILL, the OOM killer or a hang, the pins go OFF without the service.
    assert unit["ExecStopPost"] == [f"{PI_UNIT.command[0]} relays-off"]
    # A stalled service gets the same stop path as `systemctl stop` (relays OFF first).
    assert unit["WatchdogSignal"] == ["SIGTERM"]


def test_dry_run_prints_the_unit_and_changes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["install", "--dry-run", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert directives(result.stdout)["Type"] == ["notify"]
    assert directives(result.stdout)["ExecStopPost"][0].endswith("relays-off")
    assert directives(result.stdout)["WatchdogSignal"] == ["SIGTERM"]
    assert result.stdout.startswith("# Written by `filamentctl service install`")
    assert list(tmp_path.iterdir()) == []


def test_dry_run_against_the_real_root_writes_nothing() -> None:
    unit_file = Path("/etc/systemd/system") / UNIT_NAME
    existed = unit_file.exists()
    result = CliRunner().invoke(app, ["install", "--dry-run", "--user", "fctest"])
    assert result.exit_code == 0, result.output
    assert directives(result.stdout)["User"] == ["fctest"]
    assert unit_file.exists() == existed


def test_install_status_uninstall_below_a_root(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    unit_file = tmp_path / "etc/systemd/system" / UNIT_NAME
    assert directives(unit_file.read_text())["Type"] == ["notify"]
    assert stat.S_IMODE(unit_file.stat().st_mode) == 0o644
    for directory in ("etc/filamentctl", "var/lib/filamentctl"):
        assert stat.S_IMODE((tmp_path / directory).stat().st_mode) == 0o750
    assert "systemctl daemon-reload" in result.stderr

    status = runner.invoke(app, ["status", "--json", "--root", str(tmp_path)])
    info = json.loads(status.stdout)
    assert info["installed"] is True
    assert info["exec_start"].endswith(" run")
    assert status.exit_code == 3  # installed but not running (no systemd here)

    result = runner.invoke(app, ["uninstall", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not unit_file.exists()
    assert (tmp_path / "var/lib/filamentctl").is_dir()  # history is kept


def test_invalid_user_name_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["install", "--dry-run", "--user", "Bad User"])
    # main() turns a UsageError into one stderr line and exit 2.
    assert isinstance(result.exception, UsageError)
    assert "invalid --user" in str(result.exception)
