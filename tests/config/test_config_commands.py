"""`filamentctl config export|import|edit|validate|rekey` and the at-rest guarantees.

Through the real Typer sub-app with FILAMENTCTL_HOME in a tmp dir; the store is real SQLCipher.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from filamentctl.cli.config import app

SECRET = "pw-7f3a91-not-in-any-file"
MEASUREMENT = "plain-text-canary-4b2e"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FILAMENTCTL_HOME", str(tmp_path / "box"))
    # No service runs here; make sure `config set` does not find a real one either.
    monkeypatch.setenv("FILAMENTCTL_SOCKET", str(tmp_path / "no.sock"))
    return tmp_path / "box"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def ok(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    result = run(*args, input=input, env=env)
    assert result.exit_code == 0, result.output
    return result


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def configured(home: Path) -> Path:
    ok("init")
    ok("set", "database.type", "influxdb_v1")
    ok("set", "database.influxdb_v1.password", "-", input=SECRET + "\n")
    ok("set", "data.measurement", MEASUREMENT)
    return home


def test_no_value_is_readable_in_plain_text_under_home(configured: Path) -> None:
    files = snapshot(configured)
    assert files, "the configuration should exist"
    for name, data in files.items():
        assert SECRET.encode() not in data, name
        assert MEASUREMENT.encode() not in data, name
        assert b"influxdb_v1" not in data, name
    paths = json.loads(ok("path", "--json").stdout)
    key_file = Path(paths["key_file"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.parent != Path(paths["config_db"]).parent


WRONG_KEY = {"FILAMENTCTL_CONFIG_KEY": "ab" * 32}


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("get", "data.measurement"),
        ("set", "log.level", "debug"),
        ("unset", "data.measurement"),
        ("export",),
        ("validate",),
        ("rekey",),
        ("edit",),
        ("import", "IMPORT_FILE"),
    ],
)
def test_a_wrong_key_fails_every_command_and_changes_nothing(
    configured: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    source = tmp_path / "in.toml"
    source.write_text('[log]\nlevel = "debug"\n')
    args = tuple(str(source) if a == "IMPORT_FILE" else a for a in args)
    before = snapshot(configured)
    result = run(*args, env={**WRONG_KEY, "EDITOR": "false"})
    assert result.exit_code != 0
    assert "cannot decrypt the configuration" in result.stderr
    assert "check" in result.stderr  # says what to check
    assert snapshot(configured) == before


def test_export_redacts_secrets_unless_reveal(configured: Path, tmp_path: Path) -> None:
    text = ok("export").stdout
    assert SECRET not in text and "<secret: redacted>" in text and MEASUREMENT in text
    assert SECRET in ok("export", "--reveal").stdout
    out = tmp_path / "backup.toml"
    ok("export", "--reveal", "-o", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert run("export", "-o", str(out)).exit_code == 2  # never overwrites: a usage error


def test_an_export_imports_back_and_keeps_redacted_secrets(
    configured: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "export.toml"
    exported.write_text(ok("export").stdout.replace(MEASUREMENT, "renamed"))
    result = ok("import", str(exported))
    assert "left as stored" in result.stdout and SECRET not in result.output
    assert ok("get", "data.measurement").stdout == "renamed\n"
    assert ok("get", "database.influxdb_v1.password", "--reveal").stdout == SECRET + "\n"


def test_import_of_the_seed_yaml_and_env_through_the_cli(home: Path, tmp_path: Path) -> None:
    ok("init")
    (tmp_path / "config.yaml").write_text(
        "influxdb:\n  host: 10.0.0.5\n  port: 8086\n  database: shelf\n  password: hunter22\n"
        "queue:\n  max_size: 100\n"
    )
    (tmp_path / ".env").write_text("INFLUXDB_USERNAME=writer\n")
    result = ok("import", str(tmp_path / "config.yaml"), "--env", str(tmp_path / ".env"))
    assert "queue.max_size" in result.stdout  # reported as not imported
    assert "hunter22" not in result.output
    assert ok("get", "database.influxdb_v1.url").stdout == "http://10.0.0.5:8086\n"
    assert ok("get", "database.influxdb_v1.username").stdout == "writer\n"
    assert ok("get", "database.type").stdout == "influxdb_v1\n"


def test_an_invalid_import_exits_2_and_changes_nothing(configured: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "heating_control:\n  min_temp_c: 30\n  max_temp_c: 25\ndata_collection:\n"
        "  measurement: other\n"
    )
    before = snapshot(configured)
    result = run("import", str(bad))
    assert result.exit_code == 2
    assert "heater.min_temp_c" in result.stderr and "heater.max_temp_c" in result.stderr
    assert snapshot(configured) == before


def _editor(tmp_path: Path, *steps: str) -> dict[str, str]:
    """An $EDITOR that applies step N (a Python replace: "old=>new") on its N-th run."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib\n"
        f"steps = {list(steps)!r}\n"
        f"count = pathlib.Path({str(tmp_path / 'count')!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "old, new = steps[n].split('=>')\n"
        "text = path.read_text()\n"
        "assert old in text, old\n"
        "path.write_text(text.replace(old, new))\n"
    )
    return {"EDITOR": f"{sys.executable} {script}"}


def test_edit_saves_a_valid_change_and_unsets_deleted_keys(
    configured: Path, tmp_path: Path
) -> None:
    # One editor run: rename the measurement, delete the database.type line.
    env = _editor(
        tmp_path,
        f'measurement = "{MEASUREMENT}"\n=>measurement = "edited"\n',
    )
    script = Path(env["EDITOR"].split()[-1])
    script.write_text(
        script.read_text()
        + "path.write_text(path.read_text().replace('type = \"influxdb_v1\"', ''))\n"
    )
    result = ok("edit", env=env)
    assert "data.measurement = edited" in result.stdout
    assert "database.type unset" in result.stdout
    assert ok("get", "data.measurement").stdout == "edited\n"
    assert json.loads(ok("get", "database.type", "--json").stdout)["source"] == "default"
    # The secret was shown redacted and is still stored unchanged.
    assert ok("get", "database.influxdb_v1.password", "--reveal").stdout == SECRET + "\n"


def test_edit_with_errors_offers_to_edit_again(configured: Path, tmp_path: Path) -> None:
    env = _editor(
        tmp_path,
        "# min_temp_c = 20.0=>min_temp_c = 99.0",
        "min_temp_c = 99.0=>min_temp_c = 18.0",
    )
    result = run("edit", input="y\n", env=env)
    assert result.exit_code == 0, result.output
    assert "heater.min_temp_c" in result.stderr and "edit again?" in result.stderr
    assert ok("get", "heater.min_temp_c").stdout == "18.0\n"


def test_edit_declined_after_errors_exits_2_and_changes_nothing(
    configured: Path, tmp_path: Path
) -> None:
    env = _editor(tmp_path, "[data]=>[data]\nmeasurment = 1")
    before = snapshot(configured)
    result = run("edit", input="n\n", env=env)
    assert result.exit_code == 2
    assert "did you mean 'data.measurement'" in result.stderr
    assert snapshot(configured) == before


def test_validate_reports_problems_with_key_names(home: Path, tmp_path: Path) -> None:
    ok("init")
    assert "valid" in ok("validate").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[heater]\nmin_temp_c = 30.0\nmax_temp_c = 25.0\n[sensor]\nred_interval = 2\n")
    result = run("validate", str(bad))
    assert result.exit_code == 2
    assert "heater.min_temp_c (30) must be below heater.max_temp_c (25)" in result.stderr
    assert "did you mean 'sensor.read_interval'" in result.stderr


def test_rekey_replaces_key_and_file_and_keeps_every_value(configured: Path) -> None:
    paths = json.loads(ok("path", "--json").stdout)
    key_file, db = Path(paths["key_file"]), Path(paths["config_db"])
    old_key, old_db = key_file.read_bytes(), db.read_bytes()
    result = ok("rekey")
    assert "re-encrypted 3 keys" in result.stdout
    assert key_file.read_bytes() != old_key and db.read_bytes() != old_db
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ok("get", "database.influxdb_v1.password", "--reveal").stdout == SECRET + "\n"
    # The old copies were removed once the new file was verified.
    leftovers = sorted(p.name for p in configured.rglob("*") if p.is_file())
    assert leftovers == ["config.db", "config.key"]


def test_rekey_with_an_env_key_reads_the_new_key_from_stdin(home: Path) -> None:
    old = {"FILAMENTCTL_CONFIG_KEY": "01" * 32}
    ok("init", env=old)
    ok("set", "log.level", "debug", env=old)
    assert run("rekey", env=old).exit_code == 2  # needs the new key
    assert run("rekey", "--new-key", "02" * 32, env=old).exit_code == 2  # never on argv
    ok("rekey", "--new-key", "-", input="02" * 32 + "\n", env=old)
    assert run("get", "log.level", env=old).exit_code == 1
    assert ok("get", "log.level", env={"FILAMENTCTL_CONFIG_KEY": "02" * 32}).stdout == "debug\n"


def test_rekey_refuses_when_an_earlier_rekey_left_files(configured: Path) -> None:
    db = Path(json.loads(ok("path", "--json").stdout)["config_db"])
    db.with_name("config.db.old").write_bytes(b"x")
    result = run("rekey")
    assert result.exit_code == 1 and "earlier rekey" in result.stderr


def test_a_vault_reference_is_accepted_as_a_secret_value_and_checked(home: Path) -> None:
    ok("init")
    ok("set", "database.influxdb_v2.token", "-", input="vault:secret/boxes/influx#token\n")
    assert (
        ok("get", "database.influxdb_v2.token", "--reveal").stdout
        == "vault:secret/boxes/influx#token\n"
    )
    bad = run("set", "database.influxdb_v2.token", "-", input="vault:nohash\n")
    assert bad.exit_code == 2 and "vault:MOUNT/PATH#FIELD" in bad.stderr
