"""The encrypted configuration store, its key sources and the settings layering (real SQLCipher)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from filamentctl import paths as _paths
from filamentctl.errors import ConfigDecryptError, ConfigError, UserError
from filamentctl.store import keys
from filamentctl.store.config_store import ConfigStore
from filamentctl.store.settings import init_config, load_settings, set_value, unset_value

SECRET_TOKEN = "tok-3f9a1c2e7d5b"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment with FILAMENTCTL_HOME only (no key in the environment)."""
    return {"FILAMENTCTL_HOME": str(tmp_path / "box")}


def _paths_of(env: dict[str, str]) -> _paths.Paths:
    return _paths.resolve(env)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_values_round_trip_through_the_encrypted_store(tmp_path: Path) -> None:
    key = keys.generate_key()
    db = tmp_path / "config.db"
    with ConfigStore.open(db, key, create=True) as store:
        store.set("sensor.read_interval", 2.5)
        store.set("data.tags", {"box": "dryer-1"})
        store.set("heater.enabled", True)
        store.set("sensor.read_interval", 3.0)
    with ConfigStore.open(db, key) as store:
        assert store.items() == {
            "data.tags": {"box": "dryer-1"},
            "heater.enabled": True,
            "sensor.read_interval": 3.0,
        }
        assert store.get("sensor.read_interval") == 3.0
        assert store.get("fan.enabled", "absent") == "absent"
        assert store.unset("heater.enabled") is True
        assert store.unset("heater.enabled") is False
    with ConfigStore.open(db, key) as store:
        assert "heater.enabled" not in store.items()


def test_the_database_is_0600_and_holds_no_value_or_key_in_clear(tmp_path: Path) -> None:
    key = keys.generate_key()
    db = tmp_path / "config.db"
    with ConfigStore.open(db, key, create=True) as store:
        store.set("database.influxdb_v2.token", SECRET_TOKEN)
    assert _mode(db) == 0o600
    raw = db.read_bytes()
    assert SECRET_TOKEN.encode() not in raw
    assert b"database.influxdb_v2.token" not in raw
    assert key not in raw and key.hex().encode() not in raw
    assert not raw.startswith(b"SQLite format 3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.db"]  # no temp files left


def test_a_passphrase_works_as_a_key(tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    with ConfigStore.open(db, "correct horse 'battery' staple", create=True) as store:
        store.set("log.level", "debug")
    with ConfigStore.open(db, "correct horse 'battery' staple") as store:
        assert store.get("log.level") == "debug"
    with pytest.raises(ConfigDecryptError):
        ConfigStore.open(db, "correct horse battery staple")


def test_a_wrong_key_is_an_error_and_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    with ConfigStore.open(db, keys.generate_key(), create=True) as store:
        store.set("sensor.type", "dht22")
    before = db.read_bytes()
    with pytest.raises(ConfigDecryptError) as err:
        ConfigStore.open(db, keys.generate_key(), key_source="FILAMENTCTL_CONFIG_KEY")
    message = str(err.value)
    assert str(db) in message and "FILAMENTCTL_CONFIG_KEY" in message and "\n" not in message
    assert err.value.exit_code == 1
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.db"]


def test_opening_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config init"):
        ConfigStore.open(tmp_path / "config.db", keys.generate_key())
    assert list(tmp_path.iterdir()) == []


def test_creating_over_an_existing_database_is_refused_and_it_is_untouched(tmp_path: Path) -> None:
    key = keys.generate_key()
    db = tmp_path / "config.db"
    with ConfigStore.open(db, key, create=True) as store:
        store.set("log.level", "error")
    before = db.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        ConfigStore.open(db, keys.generate_key(), create=True)
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"not a database at all\n" * 300, "damaged"),
        (os.urandom(4096), "does not match"),  # indistinguishable from a wrong key
    ],
)
def test_a_garbage_file_is_a_clear_error_never_defaults(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    db = tmp_path / "config.db"
    db.write_bytes(content)
    with pytest.raises(UserError, match=expected):
        ConfigStore.open(db, keys.generate_key())
    assert db.read_bytes() == content


def test_a_plain_sqlite_file_is_named_as_such(tmp_path: Path) -> None:
    db = tmp_path / "config.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE settings (key TEXT, value TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="unencrypted SQLite"):
        ConfigStore.open(db, keys.generate_key())


def test_load_settings_refuses_a_garbage_config_instead_of_using_defaults(
    home: dict[str, str],
) -> None:
    p = _paths_of(home)
    init_config(p, home)
    p.config_db.write_bytes(b"garbage" * 1000)
    with pytest.raises(UserError, match="damaged"):
        load_settings(p, home)


def test_the_key_file_is_0600_in_its_own_0700_directory_apart_from_the_db(
    home: dict[str, str],
) -> None:
    p = _paths_of(home)
    result = init_config(p, home)
    assert result.key_file_written
    assert p.key_file.exists() and p.config_db.exists()
    assert _mode(p.key_file) == 0o600
    assert _mode(p.key_file.parent) == 0o700
    assert p.key_file.parent != p.config_db.parent
    assert not p.key_file.is_relative_to(p.config_db.parent)
    assert len(p.key_file.read_text().strip()) == 64  # a raw 256-bit key, hex


def test_generated_keys_are_random() -> None:
    assert len({keys.generate_key() for _ in range(4)}) == 4
    assert len(keys.generate_key()) == 32


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "config.key"
    first = keys.write_key_file(path)
    before = path.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        keys.write_key_file(path)
    assert path.read_bytes() == before
    assert bytes.fromhex(before.decode().strip()) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.key"]


def test_a_key_file_others_can_read_is_refused_with_the_fix(home: dict[str, str]) -> None:
    p = _paths_of(home)
    init_config(p, home)
    p.key_file.chmod(0o644)
    with pytest.raises(UserError) as err:
        load_settings(p, home)
    assert f"chmod 600 {p.key_file}" in str(err.value)


def test_the_env_key_wins_over_the_key_file(home: dict[str, str]) -> None:
    p = _paths_of(home)
    init_config(p, home)  # encrypted with the key file's key
    other = keys.generate_key().hex()
    with pytest.raises(ConfigDecryptError, match="FILAMENTCTL_CONFIG_KEY"):
        load_settings(p, {**home, "FILAMENTCTL_CONFIG_KEY": other})
    # The file's key given through the environment works, even with the file gone.
    file_key = p.key_file.read_text().strip()
    p.key_file.unlink()
    settings = load_settings(p, {**home, "FILAMENTCTL_CONFIG_KEY": file_key})
    assert settings.source == "store" and settings.key_source == "FILAMENTCTL_CONFIG_KEY"


def test_init_with_an_env_key_writes_no_key_file(home: dict[str, str]) -> None:
    env = {**home, "FILAMENTCTL_CONFIG_KEY": "a long passphrase for the dryer"}
    p = _paths_of(env)
    result = init_config(p, env)
    assert not result.key_file_written and result.key_source == "FILAMENTCTL_CONFIG_KEY"
    assert not p.key_file.exists()
    set_value(p, env, "sensor.type", "simulated")
    assert load_settings(p, env)["sensor.type"] == "simulated"
    with pytest.raises(ConfigDecryptError, match="no key found"):
        load_settings(p, home)


def test_an_empty_env_key_is_an_error_not_a_fallback(home: dict[str, str]) -> None:
    p = _paths_of(home)
    init_config(p, home)
    with pytest.raises(UserError, match="FILAMENTCTL_CONFIG_KEY is set but empty"):
        load_settings(p, {**home, "FILAMENTCTL_CONFIG_KEY": ""})


def test_without_a_database_settings_are_defaults_plus_env(home: dict[str, str]) -> None:
    env = {**home, "FILAMENTCTL_SENSOR__READ_INTERVAL": "2"}
    settings = load_settings(_paths_of(env), env)
    assert settings.source == "defaults" and settings.key_source is None
    assert settings["sensor.read_interval"] == 2.0
    assert settings.sources["sensor.read_interval"] == "env"
    assert settings["sensor.type"] == "bme280" and settings.sources["sensor.type"] == "default"
    assert not _paths_of(env).config_db.exists()


def test_layers_defaults_then_stored_then_env_then_overrides(home: dict[str, str]) -> None:
    p = _paths_of(home)
    init_config(p, home)
    set_value(p, home, "sensor.read_interval", "3")
    set_value(p, home, "sensor.stale_after", 40)
    set_value(p, home, "log.level", "warning")
    env = {**home, "FILAMENTCTL_SENSOR__STALE_AFTER": "50", "FILAMENTCTL_LOG__LEVEL": "error"}
    settings = load_settings(p, env, overrides={"log.level": "debug"})
    observed = {k: (settings[k], settings.sources[k]) for k in settings}
    assert observed["sensor.read_interval"] == (3.0, "stored")
    assert observed["sensor.stale_after"] == (50.0, "env")
    assert observed["log.level"] == ("debug", "override")
    assert observed["fan.enabled"] == (False, "default")
    assert set(settings) == set(load_settings(p, home))
    assert len(settings) == len(settings.sources)


def test_settings_are_immutable_and_their_repr_hides_secrets(home: dict[str, str]) -> None:
    env = {**home, "FILAMENTCTL_DATABASE__INFLUXDB_V2__TOKEN": SECRET_TOKEN}
    settings = load_settings(_paths_of(env), env)
    assert settings["database.influxdb_v2.token"] == SECRET_TOKEN
    assert SECRET_TOKEN not in repr(settings)
    with pytest.raises(TypeError):
        settings["log.level"] = "debug"  # type: ignore[index]
    settings["data.tags"]["x"] = "y"
    assert settings["data.tags"] == {}


def test_an_unknown_override_variable_is_refused_with_a_hint(home: dict[str, str]) -> None:
    env = {**home, "FILAMENTCTL_SENSOR__READ_INTERVL": "2"}
    with pytest.raises(ConfigError, match="FILAMENTCTL_SENSOR__READ_INTERVAL"):
        load_settings(_paths_of(env), env)


def test_an_invalid_override_value_names_the_variable(home: dict[str, str]) -> None:
    env = {**home, "FILAMENTCTL_HEATER__ENABLED": "perhaps"}
    with pytest.raises(ConfigError, match="FILAMENTCTL_HEATER__ENABLED"):
        load_settings(_paths_of(env), env)


def test_broken_cross_field_rules_are_refused_listing_every_problem(home: dict[str, str]) -> None:
    env = {
        **home,
        "FILAMENTCTL_HEATER__MIN_TEMP_C": "30",
        "FILAMENTCTL_FAN__MIN_HUMIDITY": "50",
    }
    with pytest.raises(ConfigError) as err:
        load_settings(_paths_of(env), env)
    assert "heater.min_temp_c" in str(err.value) and "fan.min_humidity" in str(err.value)
    # The CLI can still show such a configuration, to help fix it.
    assert load_settings(_paths_of(env), env, check_rules=False)["heater.min_temp_c"] == 30.0


def test_set_refuses_invalid_values_and_inconsistent_configs_storing_nothing(
    home: dict[str, str],
) -> None:
    p = _paths_of(home)
    init_config(p, home)
    before = p.config_db.read_bytes()
    with pytest.raises(ConfigError, match="sensor.read_interval"):
        set_value(p, home, "sensor.read_interval", "0")
    with pytest.raises(ConfigError, match="did you mean"):
        set_value(p, home, "sensor.read_intervall", "2")
    with pytest.raises(ConfigError, match="heater.max_temp_c"):
        set_value(p, home, "heater.min_temp_c", "25")
    assert p.config_db.read_bytes() == before


def test_unset_returns_a_key_to_its_default_unless_that_breaks_a_rule(
    home: dict[str, str],
) -> None:
    p = _paths_of(home)
    init_config(p, home)
    set_value(p, home, "heater.max_temp_c", "45")
    set_value(p, home, "heater.min_temp_c", "40")
    with pytest.raises(ConfigError, match="heater.min_temp_c"):
        unset_value(p, home, "heater.max_temp_c")  # back to 22 would be below 40
    assert unset_value(p, home, "heater.min_temp_c") is True
    assert unset_value(p, home, "heater.min_temp_c") is False
    assert load_settings(p, home)["heater.min_temp_c"] == 20.0


def test_loading_without_a_database_does_not_import_sqlcipher(tmp_path: Path) -> None:
    code = (
        "import sys; from filamentctl.store.settings import load_settings; "
        "s = load_settings(); assert s.source == 'defaults', s.source; "
        "print('sqlcipher3' in sys.modules)"
    )
    env = {**os.environ, "FILAMENTCTL_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_an_unreadable_configuration_is_an_error_not_defaults(tmp_path: Path) -> None:
    """Started as the wrong user, the service must not run on the default settings."""
    import subprocess
    import sys

    from tests.servers import unavailable

    if os.geteuid() != 0:
        unavailable("needs root to act as another user (setpriv)")

    home = tmp_path / "home"
    env = {**os.environ, "FILAMENTCTL_HOME": str(home)}
    cli = [sys.executable, "-m", "filamentctl"]
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*as_nobody, sys.executable, "-c", "import filamentctl"],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
    )
    if probe.returncode != 0:  # e.g. a pyenv build whose libpython sits under /root
        unavailable(f"this interpreter cannot run as another user: {probe.stderr.strip()[:120]}")
    subprocess.run([*cli, "config", "init"], env=env, check=True, capture_output=True)
    (home / "config").chmod(0o700)
    tmp_path.chmod(0o755)
    home.chmod(0o755)
    result = subprocess.run(
        [*as_nobody, *cli, "config", "list"],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert result.returncode == 4, result.stderr
    assert "permission denied" in result.stderr and result.stderr.count("\n") == 1
