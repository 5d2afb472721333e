"""The configuration as files (``store/config_files.py``), without the CLI: reading by format
with its limits, private writes, the ``config edit`` merge rules, export and import against a
real SQLCipher store, and where the key comes from."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from filamentctl import paths as _paths
from filamentctl.core import schema
from filamentctl.core.config_toml import REDACTED
from filamentctl.errors import EXIT_USAGE, ConfigError, UsageError
from filamentctl.store import config_files
from filamentctl.store.settings import init_config, set_values, stored_values

SECRET = "pw-2c81d0-files"


@pytest.fixture
def box(tmp_path: Path) -> tuple[_paths.Paths, dict[str, str]]:
    """A real encrypted configuration with a key file, a password and a measurement stored."""
    env = {"FILAMENTCTL_HOME": str(tmp_path / "box")}
    paths = _paths.resolve(env)
    init_config(paths, env)
    set_values(
        paths,
        env,
        [
            ("database.type", "influxdb_v1"),
            ("database.influxdb_v1.password", SECRET),
            ("data.measurement", "dry_box"),
        ],
    )
    return paths, env


# -- reading -------------------------------------------------------------------------------------


def test_a_missing_file_or_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file") as missing:
        config_files.read_text(tmp_path / "nope.toml")
    assert missing.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError, match="is a directory; give a file"):
        config_files.read_text(tmp_path)


def test_more_than_a_mebibyte_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (config_files.MAX_SOURCE_BYTES + 1))
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        config_files.read_text(big)
    big.write_bytes(b"#" * config_files.MAX_SOURCE_BYTES)
    assert len(config_files.read_text(big)) == config_files.MAX_SOURCE_BYTES


def test_text_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'data.measurement = "caf\xe9"\n')
    with pytest.raises(UsageError, match=r"not UTF-8 text \(byte 23\)"):
        config_files.read_text(latin)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("box.toml", "[heater]\nmin_temp_c = 45.0\n"),
        ("box.json", '{"heater": {"min_temp_c": 45.0}}'),
        ("config.yaml", "heater:\n  min_temp_c: 45.0\n"),
        ("config", "heater:\n  min_temp_c: 45.0\n"),  # the seed's file without extension
    ],
)
def test_each_format_reads_as_dotted_keys(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert config_files.read_keys(path) == {"heater.min_temp_c": 45.0}


def test_an_unknown_extension_and_a_bad_document_are_refused(tmp_path: Path) -> None:
    ini = tmp_path / "box.ini"
    ini.write_text("[heater]\n", encoding="utf-8")
    with pytest.raises(UsageError, match="unknown file type '.ini'"):
        config_files.read_keys(ini)
    array = tmp_path / "box.json"
    array.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        config_files.read_keys(array)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON|nested too deeply"):
        config_files.read_keys(deep)


def test_file_problems_lists_unknown_keys_and_broken_rules(tmp_path: Path) -> None:
    path = tmp_path / "box.toml"
    path.write_text(
        "[heater]\nmin_temp_c = 50.0\nmax_temp_c = 45.0\n[sensor]\nread_intervl = 5\n",
        encoding="utf-8",
    )
    problems = config_files.file_problems(path)
    assert any("sensor.read_intervl" in p for p in problems), problems
    assert any("heater.min_temp_c" in p and "heater.max_temp_c" in p for p in problems), problems
    path.write_text("[heater]\nmin_temp_c = 18.0\n", encoding="utf-8")
    assert config_files.file_problems(path) == []


# -- writing -------------------------------------------------------------------------------------


def test_a_private_file_is_0600_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "export.toml"
    config_files.write_private(path, "first\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(UsageError, match="already exists"):
        config_files.write_private(path, "second\n")
    assert path.read_text(encoding="utf-8") == "first\n"


def test_the_scratch_file_is_private_and_gone_afterwards_even_on_error() -> None:
    with pytest.raises(RuntimeError), config_files.scratch_file("x = 1\n") as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text(encoding="utf-8") == "x = 1\n"
        raise RuntimeError("the editor failed")
    assert not path.exists()


# -- editing -------------------------------------------------------------------------------------


def test_the_edit_text_redacts_secrets_and_comments_out_the_defaults() -> None:
    stored: dict[str, Any] = {"database.influxdb_v1.password": SECRET, "heater.min_temp_c": 40.0}
    text = config_files.edit_text(stored)
    assert SECRET not in text and REDACTED in text
    assert "min_temp_c = 40.0" in text
    assert "# read_interval = " in text  # a default, commented out


def test_a_secret_left_redacted_keeps_its_stored_value() -> None:
    stored: dict[str, Any] = {"database.influxdb_v1.password": SECRET}
    values, problems = config_files.parse_edited(
        f'[database.influxdb_v1]\npassword = "{REDACTED}"\n[heater]\nmin_temp_c = 18.5\n', stored
    )
    assert problems == []
    assert values == {"database.influxdb_v1.password": SECRET, "heater.min_temp_c": 18.5}
    # Saved untouched, the text `config edit` opens gives back what is stored.
    values, problems = config_files.parse_edited(config_files.edit_text(stored), stored)
    assert (values, problems) == (stored, [])


def test_a_redacted_secret_that_was_never_stored_stays_unset() -> None:
    values, problems = config_files.parse_edited(
        f'[database.influxdb_v1]\npassword = "{REDACTED}"\n', {}
    )
    assert (values, problems) == ({}, [])


def test_edited_problems_are_listed_not_raised() -> None:
    values, problems = config_files.parse_edited("[heater]\nmin_temp_c = 'warm'\nfoo = 1\n", {})
    assert values == {}
    assert any("heater.foo" in p for p in problems) and any("warm" in p for p in problems)
    _, problems = config_files.parse_edited("[heater\n", {})
    assert len(problems) == 1


# -- export and import against the real store ----------------------------------------------------


def test_an_export_redacts_secrets_unless_revealed(
    box: tuple[_paths.Paths, dict[str, str]],
) -> None:
    paths, env = box
    redacted = config_files.export_config(paths, env, all_keys=False, reveal=False)
    assert redacted.count == 3 and SECRET not in redacted.text and REDACTED in redacted.text
    assert "secrets are redacted" in redacted.text
    revealed = config_files.export_config(paths, env, all_keys=False, reveal=True)
    assert SECRET in revealed.text
    every = config_files.export_config(paths, env, all_keys=True, reveal=False)
    assert every.count == len(schema.SCHEMA) and SECRET not in every.text


def test_an_export_imports_back_keeping_the_redacted_secret(
    box: tuple[_paths.Paths, dict[str, str]], tmp_path: Path
) -> None:
    paths, env = box
    path = tmp_path / "box.toml"
    exported = config_files.export_config(paths, env, all_keys=False, reveal=False).text
    path.write_text(exported.replace('"dry_box"', '"dry_box_2"'), encoding="utf-8")
    dry = config_files.import_file(paths, env, path, dry_run=True)
    assert dry.result.values["data.measurement"] == "dry_box_2"
    assert stored_values(paths, env)["data.measurement"] == "dry_box"  # a dry run writes nothing
    report = config_files.import_file(paths, env, path)
    assert report.result.kept_secrets == ["database.influxdb_v1.password"]
    stored = stored_values(paths, env)
    assert stored["data.measurement"] == "dry_box_2"
    assert stored["database.influxdb_v1.password"] == SECRET


def test_an_invalid_import_raises_and_stores_nothing(
    box: tuple[_paths.Paths, dict[str, str]], tmp_path: Path
) -> None:
    paths, env = box
    before = stored_values(paths, env)
    path = tmp_path / "box.toml"
    path.write_text("[heater]\nmin_temp_c = 'warm'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nothing imported") as refused:
        config_files.import_file(paths, env, path)
    assert refused.value.exit_code == EXIT_USAGE
    assert stored_values(paths, env) == before


# -- the key -------------------------------------------------------------------------------------


def test_the_key_origin_names_the_source_never_the_key(
    box: tuple[_paths.Paths, dict[str, str]], tmp_path: Path
) -> None:
    paths, env = box
    origin = config_files.key_origin(paths, env)
    assert origin.problem is None
    assert origin.where["key_source"] == "file"
    assert origin.where["key_location"] == str(paths.key_file)
    from_env = config_files.key_origin(paths, {**env, "FILAMENTCTL_CONFIG_KEY": "ab" * 32})
    assert from_env.where["key_source"] == "env" and "ab" * 32 not in str(from_env)
    fresh = _paths.resolve({"FILAMENTCTL_HOME": str(tmp_path / "fresh")})
    assert config_files.key_origin(fresh, {}).where["key_source"] is None


def test_an_unusable_key_source_is_reported_not_raised(
    box: tuple[_paths.Paths, dict[str, str]],
) -> None:
    paths, env = box
    os.chmod(paths.key_file, 0o644)  # readable by others: refused, not used
    origin = config_files.key_origin(paths, env)
    assert origin.where["key_source"] is None and origin.problem
    assert str(paths.key_file) in origin.problem
