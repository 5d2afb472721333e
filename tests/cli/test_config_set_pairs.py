"""``config set KEY VALUE [KEY VALUE]...``: several keys validated together and stored in one
transaction (a failing pair changes nothing), negative values without ``--``, secrets still
never from argv; and the user guide's "First configuration" steps run as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from filamentctl.cli.config import app
from tests.helpers import REPO


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FILAMENTCTL_HOME", str(tmp_path / "box"))
    assert run("init").exit_code == 0
    return tmp_path / "box"


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def stored(home: Path) -> str:
    """Every stored value, as ``config export`` writes them."""
    result = run("export")
    assert result.exit_code == 0, result.output
    return result.stdout


def value(key: str) -> str:
    result = run("get", key)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_a_whole_heater_band_in_one_command_on_a_fresh_config(home: Path) -> None:
    """Either change alone breaks min < max < cutoff against the defaults (22 °C max)."""
    assert run("set", "heater.min_temp_c", "45").exit_code == 2  # alone: refused, as before
    result = run(
        "set", "heater.min_temp_c", "45", "heater.max_temp_c", "50", "heater.cutoff_temp_c", "70"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "heater.min_temp_c = 45.0",
        "heater.max_temp_c = 50.0",
        "heater.cutoff_temp_c = 70.0",
        f"stored in {home / 'config' / 'config.db'} (no service is running)",
    ]
    assert (value("heater.min_temp_c"), value("heater.max_temp_c")) == ("45.0", "50.0")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("heater.min_temp_c", "45", "heater.max_temp_c", "warm"), "heater.max_temp_c"),
        (("heater.min_temp_c", "45", "heater.max_temp_c", "44"), "below heater.max_temp_c"),
        (("heater.min_temp_c", "45", "heater.nope", "1"), "heater.nope"),
        (("heater.min_temp_c", "45", "heater.min_temp_c", "46"), "given twice"),
    ],
)
def test_a_failing_pair_changes_nothing(home: Path, args: tuple[str, ...], problem: str) -> None:
    run("set", "sensor.read_interval", "7")
    before = stored(home)
    assert "read_interval = 7" in before
    result = run("set", *args)
    assert result.exit_code == 2
    assert problem in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr.startswith("filamentctl: ")
    assert stored(home) == before
    assert value("heater.min_temp_c") != "45.0"


def test_negative_values_need_no_double_dash(home: Path) -> None:
    result = run("set", "sensor.temperature_offset", "-1.5")
    assert result.exit_code == 0, result.output
    assert value("sensor.temperature_offset") == "-1.5"
    result = run("set", "sensor.temperature_offset", "-2", "sensor.humidity_offset", "-3.5", "-q")
    assert (result.exit_code, result.stdout) == (0, "")
    assert value("sensor.humidity_offset") == "-3.5"


def test_a_mistyped_option_is_still_an_error_not_a_key(home: Path) -> None:
    result = run("set", "--jsn", "sensor.read_interval", "5")
    assert result.exit_code == 2
    assert "no such option: --jsn" in result.stderr


def test_a_key_without_its_value_is_a_usage_error(home: Path) -> None:
    result = run("set", "heater.enabled", "true", "fan.enabled")
    assert result.exit_code == 2
    assert "missing VALUE for fan.enabled" in result.stderr
    assert value("heater.enabled") == "false"


def test_secrets_are_still_refused_on_the_command_line_even_in_pairs(home: Path) -> None:
    token = "s3cr3t-token-42"
    result = run("set", "database.type", "influxdb_v2", "database.influxdb_v2.token", token)
    assert result.exit_code == 2
    assert "not accepted on the command line" in result.stderr and token not in result.output
    assert value("database.type") != "influxdb_v2"  # nothing stored
    result = run(
        "set", "database.type", "influxdb_v2", "database.influxdb_v2.token", "-", input=token
    )
    assert result.exit_code == 0, result.output
    assert token not in result.output
    shown = json.loads(run("get", "database.influxdb_v2.token", "--json", "--reveal").stdout)
    assert shown["value"] == token


def test_only_one_value_can_come_from_stdin(home: Path) -> None:
    result = run("set", "sensor.read_interval", "-", "storage.commit_interval", "-", input="5\n")
    assert result.exit_code == 2
    assert "only one value can come from stdin" in result.stderr


def test_nothing_on_stdin_stores_nothing(home: Path) -> None:
    """An empty pipe (a failed command before it, say) would have stored an empty secret."""
    result = run("set", "database.influxdb_v2.token", "-", input="")
    assert result.exit_code == 2
    assert "nothing on stdin for database.influxdb_v2.token" in result.stderr
    assert value("database.influxdb_v2.token") == ""


def first_configuration_block() -> list[str]:
    """The commands of the user guide's "First configuration" section, as a user types them."""
    text = (REPO / "docs" / "user-guide.md").read_text(encoding="utf-8")
    section = text.split("## First configuration", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_user_guide_first_configuration_works_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "FILAMENTCTL_HOME": str(tmp_path / "box")}
    lines = first_configuration_block()
    assert lines[0] == "filamentctl config init"
    assert any(line.count("heater.") >= 3 for line in lines)  # the band in one command
    for line in lines:
        args = line.split()
        assert args[0] == "filamentctl"
        proc = subprocess.run(
            [sys.executable, "-m", "filamentctl", *args[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert proc.returncode == 0, f"{line!r} failed: {proc.stderr}"
