"""The TOML emitter and reader used by `config export` and `config edit` (pure, no files)."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from filamentctl.core import schema
from filamentctl.core.config_toml import dumps, loads


def test_every_default_round_trips_through_toml() -> None:
    values = schema.defaults()
    assert loads(dumps(values, with_help=True)) == values


def test_keys_are_grouped_in_one_table_per_prefix() -> None:
    text = dumps({"sensor.read_interval": 2.0, "database.influxdb_v1.url": "http://h:1"})
    assert "[sensor]\nread_interval = 2.0" in text
    assert '[database.influxdb_v1]\nurl = "http://h:1"' in text


@given(st.text())
def test_any_text_value_survives_export_and_import(text: str) -> None:
    values = {"data.measurement": text, "data.tags": {text or "k": text}}
    assert loads(dumps(values)) == values


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers())
def test_numbers_are_valid_toml_and_exact(x: float, n: int) -> None:
    doc = tomllib.loads(dumps({"sensor.read_interval": x, "writer.batch_size": n}))
    assert doc["sensor"]["read_interval"] == x and doc["writer"]["batch_size"] == n


def test_commented_defaults_are_not_values() -> None:
    text = dumps({"log.level": "debug"}, commented={"log.format": "text"})
    assert '# format = "text"' in text
    assert loads(text) == {"log.level": "debug"}


def test_a_syntax_error_names_the_line() -> None:
    import pytest

    from filamentctl.errors import ConfigError

    with pytest.raises(ConfigError, match="line 2"):
        loads("[sensor]\nread_interval = = 3\n")
