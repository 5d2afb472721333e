"""`filamentctl config ...` through the real Typer sub-app, FILAMENTCTL_HOME in a tmp dir."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from filamentctl.cli.config import MASK, app

TOKEN = "s3cr3t-influx-token-9d1e"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The commands read os.environ (tests/conftest.py starts every test without FILAMENTCTL_*).
    monkeypatch.setenv("FILAMENTCTL_HOME", str(tmp_path / "box"))
    return tmp_path / "box"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def get_json(key: str, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run("get", key, "--json", *extra, env=env)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_path_lists_the_locations_under_filamentctl_home(home: Path) -> None:
    result = run("path", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    places = {"config_db", "key_file", "state_dir", "socket"}
    key = {"key_source", "key_location", "vault_addr", "key_error"}
    assert set(doc) == places | key
    assert all(Path(doc[name]).is_relative_to(home) for name in places)
    assert all(doc[name] is None for name in key)  # no configuration, no key yet
    assert Path(doc["key_file"]).parent != Path(doc["config_db"]).parent
    assert "config db:" in run("path").stdout


def test_init_creates_the_encrypted_config_and_a_0600_key_then_refuses_twice(home: Path) -> None:
    result = run("init")
    assert result.exit_code == 0, result.output
    doc = json.loads(run("path", "--json").stdout)
    key_file, db = Path(doc["key_file"]), Path(doc["config_db"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert db.exists() and str(key_file) in result.stdout and "back it up" in result.stdout
    before = db.read_bytes(), key_file.read_bytes()
    again = run("init")
    assert again.exit_code == 1
    assert "already exists" in again.stderr and again.stderr.count("\n") == 1
    assert (db.read_bytes(), key_file.read_bytes()) == before


def test_init_with_an_env_key_uses_it_and_writes_no_key_file(home: Path) -> None:
    env = {"FILAMENTCTL_CONFIG_KEY": "0123456789abcdef" * 4}
    result = run("init", env=env)
    assert result.exit_code == 0 and "FILAMENTCTL_CONFIG_KEY" in result.stdout
    assert not Path(json.loads(run("path", "--json").stdout)["key_file"]).exists()
    assert run("set", "log.level", "debug", env=env).exit_code == 0
    assert get_json("log.level", env=env)["value"] == "debug"


def test_set_get_unset_round_trip(home: Path) -> None:
    run("init")
    result = run("set", "sensor.read_interval", "2")
    assert result.exit_code == 0 and "sensor.read_interval = 2.0" in result.stdout
    got = run("get", "sensor.read_interval")
    assert got.exit_code == 0 and got.stdout == "2.0\n"
    assert get_json("sensor.read_interval")["source"] == "stored"
    assert run("set", "heater.enabled", "yes").exit_code == 0
    assert run("get", "heater.enabled").stdout == "true\n"
    assert run("unset", "sensor.read_interval").exit_code == 0
    assert get_json("sensor.read_interval") == {
        "key": "sensor.read_interval",
        "value": 5.0,
        "source": "default",
        "secret": False,
        "masked": False,
    }
    again = run("unset", "sensor.read_interval")
    assert again.exit_code == 0 and "was not set" in again.stdout


def test_set_dash_reads_the_value_from_stdin(home: Path) -> None:
    run("init")
    result = run("set", "data.tags", "-", input='{"box": "dryer-1"}\n')
    assert result.exit_code == 0, result.output
    assert get_json("data.tags")["value"] == {"box": "dryer-1"}


def test_a_secret_is_taken_from_stdin_and_masked_unless_revealed(home: Path) -> None:
    run("init")
    result = run("set", "database.influxdb_v2.token", "-", input=TOKEN + "\n")
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    plain = run("get", "database.influxdb_v2.token")
    assert plain.stdout == MASK + "\n" and TOKEN not in plain.output
    masked = get_json("database.influxdb_v2.token")
    assert masked["value"] is None and masked["masked"] is True
    assert get_json("database.influxdb_v2.token", "--reveal")["value"] == TOKEN
    assert run("get", "database.influxdb_v2.token", "--reveal").stdout == TOKEN + "\n"

    assert run("set", "database.type", "influxdb_v2").exit_code == 0
    listing = run("list")
    assert listing.exit_code == 0 and TOKEN not in listing.output and MASK in listing.stdout
    doc = json.loads(run("list", "--json").stdout)
    assert doc["database.influxdb_v2.token"]["masked"] is True
    assert TOKEN not in json.dumps(doc)
    assert TOKEN in run("list", "--json", "--reveal").stdout


def test_a_secret_on_the_command_line_is_refused(home: Path) -> None:
    run("init")
    result = run("set", "database.influxdb_v2.token", TOKEN)
    assert result.exit_code == 2
    assert "stdin" in result.stderr and TOKEN not in result.output
    assert get_json("database.influxdb_v2.token")["value"] == ""


def test_a_secret_without_a_value_is_prompted_for_hidden(home: Path) -> None:
    run("init")
    result = run("set", "database.prometheus.password", input=f"{TOKEN}\n{TOKEN}\n")
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output  # hidden input is not echoed
    assert get_json("database.prometheus.password", "--reveal")["value"] == TOKEN


def test_an_invalid_value_exits_2_and_changes_nothing(home: Path) -> None:
    run("init")
    db = Path(json.loads(run("path", "--json").stdout)["config_db"])
    before = db.read_bytes()
    for args in (
        ("set", "sensor.read_interval", "fast"),
        ("set", "sensor.type", "dht23"),
        ("set", "heater.min_temp_c", "30"),  # above heater.max_temp_c
    ):
        result = run(*args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("filamentctl: ") and result.stderr.count("\n") == 1
        assert args[1] in result.stderr
        assert result.stdout == ""
    assert db.read_bytes() == before


def test_an_unknown_key_exits_2_with_a_hint(home: Path) -> None:
    run("init")
    for args in (("set", "sensor.read_intervall", "2"), ("get", "sensor.read_intervall")):
        result = run(*args)
        assert result.exit_code == 2
        assert "did you mean 'sensor.read_interval'?" in result.stderr
    assert run("unset", "heater.max_temp").exit_code == 2


def test_an_env_override_shows_as_the_source(home: Path) -> None:
    run("init")
    run("set", "sensor.read_interval", "3")
    env = {"FILAMENTCTL_SENSOR__READ_INTERVAL": "7.5"}
    doc = get_json("sensor.read_interval", env=env)
    assert doc["value"] == 7.5 and doc["source"] == "env"
    listing = json.loads(run("list", "--json", env=env).stdout)
    assert listing["sensor.read_interval"]["source"] == "env"
    assert listing["sensor.type"]["source"] == "default"
    note = run("set", "sensor.read_interval", "4", env=env)
    assert note.exit_code == 0 and "FILAMENTCTL_SENSOR__READ_INTERVAL overrides" in note.stderr


def test_list_hides_unselected_backends_unless_all(home: Path) -> None:
    doc = json.loads(run("list", "--json").stdout)
    assert "sensor.read_interval" in doc and "database.type" in doc
    assert not any(k.startswith("database.influxdb_v1.") for k in doc)
    everything = json.loads(run("list", "--json", "--all").stdout)
    assert "database.influxdb_v1.url" in everything
    assert everything["sensor.read_interval"]["help"]
    text = run("list")
    assert "sensor.read_interval" in text.stdout and "--all" in text.stdout


def test_without_init_list_shows_defaults_and_set_says_to_init(home: Path) -> None:
    listing = run("list", "--json")
    assert listing.exit_code == 0
    assert json.loads(listing.stdout)["sensor.type"]["source"] == "default"
    result = run("set", "log.level", "debug")
    assert result.exit_code == 1 and "config init" in result.stderr


def test_a_wrong_env_key_exits_1_naming_the_key_source(home: Path) -> None:
    run("init")
    result = run("list", env={"FILAMENTCTL_CONFIG_KEY": "ff" * 32})
    assert result.exit_code == 1
    assert "cannot decrypt" in result.stderr and "FILAMENTCTL_CONFIG_KEY" in result.stderr
    assert "Traceback" not in result.output
