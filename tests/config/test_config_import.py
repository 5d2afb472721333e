"""Mapping the seed's configuration (filamentbox v1 config.yaml + .env, v2 dotted keys) to ours."""

from __future__ import annotations

import pytest

from filamentctl.core import config_import as ci
from filamentctl.core.config_toml import REDACTED

# Every key the seed's README lists for config.yaml (seeds/000_*.txt), with typical values,
# plus the heating/humidity sections of v2 (seeds/001_*.txt).
SEED_V1_YAML = """\
# filamentbox config.yaml
influxdb:
  host: 192.168.1.10
  port: 8086
  username: admin
  password: "pa#ss: w'rd"   # a comment after a quoted value
  database: influx
data_collection:
  read_interval: 5
  batch_size: 10
  flush_interval: 60
  measurement: environment
  tags:
    location: filamentbox
    device: pi-zero
queue:
  max_size: 10000
retry:
  backoff_base: 1
  backoff_max: 300
  alert_threshold: 5
  persist_on_alert: yes
persistence:
  db_path: unsent_batches.db
  max_batches: 1000
sensor:
  type: "BME280"
  gpio_pin: 4
  sea_level_pressure: 1013.25
heating_control:
  enabled: true
  gpio_pin: 16
  min_temp_c: 20.0
  max_temp_c: 22.0
  check_interval: 10
humidity_control:
  enabled: true
  gpio_pin: 20
  min_humidity: 10.0
  max_humidity: 15.0
  check_interval: 10
"""

SEED_ENV = """\
INFLUXDB_USERNAME=admin
INFLUXDB_PASSWORD=secret-from-env
INFLUXDB_HOST=192.168.1.25
export INFLUXDB_PORT=8087
INFLUXDB_DATABASE=influx
DATA_COLLECTION_MEASUREMENT=environment
DATA_COLLECTION_TAGS={"location": "rack-1"}
EDITOR=vim
"""


def _import(yaml_text: str, env_text: str = "") -> ci.ImportResult:
    return ci.map_config(ci.flatten(ci.parse_yaml(yaml_text)), ci.parse_dotenv(env_text))


def test_seed_v1_config_yaml_maps_to_our_keys() -> None:
    result = _import(SEED_V1_YAML)
    assert result.errors == []
    assert result.values == {
        "database.type": "influxdb_v1",
        "database.influxdb_v1.url": "http://192.168.1.10:8086",
        "database.influxdb_v1.database": "influx",
        "database.influxdb_v1.username": "admin",
        "database.influxdb_v1.password": "pa#ss: w'rd",
        "sensor.read_interval": 5.0,
        "sensor.type": "bme280",
        "sensor.gpio_pin": 4,
        "writer.batch_size": 10,
        "writer.flush_interval": 60.0,
        "data.measurement": "environment",
        "data.tags": {"location": "filamentbox", "device": "pi-zero"},
        "retry.backoff_base": 1.0,
        "retry.backoff_max": 300.0,
        "retry.alert_threshold": 5,
        "heater.enabled": True,
        "heater.gpio_pin": 16,
        "heater.min_temp_c": 20.0,
        "heater.max_temp_c": 22.0,
        "fan.enabled": True,
        "fan.gpio_pin": 20,
        "fan.min_humidity": 10.0,
        "fan.max_humidity": 15.0,
    }


def test_the_report_lists_every_seed_key_that_was_dropped_and_why() -> None:
    dropped = {d.source: d.reason for d in _import(SEED_V1_YAML).dropped}
    assert set(dropped) == {
        "queue.max_size",
        "retry.persist_on_alert",
        "persistence.db_path",
        "persistence.max_batches",
        "sensor.sea_level_pressure",
        "heating_control.check_interval",
        "humidity_control.check_interval",
    }
    assert all(reason for reason in dropped.values())


def test_dotenv_overrides_the_file_like_the_seed_did() -> None:
    result = _import(SEED_V1_YAML, SEED_ENV)
    assert result.values["database.influxdb_v1.url"] == "http://192.168.1.25:8087"
    assert result.values["database.influxdb_v1.password"] == "secret-from-env"
    assert result.values["data.tags"] == {"location": "rack-1"}
    assert [d.source for d in result.dropped if d.source == "EDITOR"] == ["EDITOR"]


def test_v2_dotted_keys_and_our_own_keys_map() -> None:
    flat = {
        "database.type": "influxdb_v2",
        "database.influxdb_v2.url": "https://influx.example:8086",
        "database.influxdb_v2.token": "tok",
        "database.influxdb_v2.org": "home",
        "database.influxdb_v2.bucket": "filament",
        "database.timescaledb.host": "db.lan",
        "database.timescaledb.username": "writer",
        "database.timescaledb.database": "boxes",
        "sensor.stale_after": 45,
        "heating_control.min_temp_c": 40,
    }
    result = ci.map_config(flat)
    assert result.errors == []
    assert result.values["database.type"] == "influxdb_v2"
    assert result.values["database.influxdb_v2.token"] == "tok"
    assert result.values["database.timescaledb.url"] == "postgresql://writer@db.lan:5432/boxes"
    assert result.values["sensor.stale_after"] == 45.0
    assert result.values["heater.min_temp_c"] == 40.0


def test_an_invalid_value_is_an_error_naming_both_keys_and_hiding_secrets() -> None:
    result = ci.map_config(
        {"heating_control.gpio_pin": 99, "database.influxdb_v2.token": 12.5, "x.y": 1}
    )
    joined = " ".join(result.errors)
    assert "heater.gpio_pin" in joined and "heating_control.gpio_pin" in joined
    assert "12.5" not in joined  # the token's value is never repeated
    assert [d.source for d in result.dropped] == ["x.y"]


def test_a_redacted_secret_from_an_export_is_left_alone() -> None:
    result = ci.map_config({"database.influxdb_v1.password": REDACTED})
    assert result.values == {} and result.kept_secrets == ["database.influxdb_v1.password"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a:\n\tb: 1\n", "YAML line 2, column 1"),
        ("a: 1\n   b: 2\n", "YAML line 2, column 5"),
        ("a: [1, 2\nb: 3\n", "YAML line 2"),
        ('a: "unterminated\n', "YAML line 2"),
    ],
)
def test_malformed_yaml_is_one_line_naming_where(text: str, where: str) -> None:
    from filamentctl.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        ci.parse_yaml(text)
    message = str(info.value)
    assert message.startswith(where) and "\n" not in message


@pytest.mark.parametrize(
    ("text", "found"), [("- 1\n- 2\n", "list"), ("just words\n", "str"), ("42\n", "int")]
)
def test_a_document_that_is_not_a_mapping_is_refused(text: str, found: str) -> None:
    from filamentctl.errors import ConfigError

    with pytest.raises(ConfigError, match=f"expected a mapping of settings.*YAML {found}"):
        ci.parse_yaml(text)


def test_yaml_features_real_files_use_are_read_as_pyyaml_reads_them() -> None:
    """Anchors and aliases, block strings, quoted keys, comments, an empty document."""
    doc = ci.parse_yaml(
        "base: &pins {gpio_pin: 16}\n"
        "heating_control:\n  <<: *pins\n  enabled: yes\n"
        '"data_collection":\n  measurement: >\n    environment\n'
        "# a comment\n"
    )
    assert doc["heating_control"] == {"gpio_pin": 16, "enabled": True}
    assert doc["data_collection"] == {"measurement": "environment\n"}
    assert ci.parse_yaml("") == {} and ci.parse_yaml("# nothing\n") == {}


def test_python_object_tags_are_refused() -> None:
    from filamentctl.errors import ConfigError

    with pytest.raises(ConfigError, match="YAML line 1"):
        ci.parse_yaml("a: !!python/object/apply:os.system ['true']\n")


def test_a_deeply_nested_file_is_a_config_error_not_a_crash() -> None:
    from filamentctl.errors import ConfigError

    with pytest.raises(ConfigError, match="nested"):
        ci.parse_yaml("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    deep = "".join(f"{'  ' * i}k{i}:\n" for i in range(40)) + "  " * 40 + "x: 1\n"
    with pytest.raises(ConfigError, match="nested more than 32 levels"):
        ci.flatten(ci.parse_yaml(deep))


def test_an_alias_bomb_stops_at_the_key_budget() -> None:
    from filamentctl.errors import ConfigError

    lines = ["l0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}"]
    for n in range(1, 9):
        refs = ", ".join(f"k{i}: *l{n - 1}" for i in range(10))
        lines.append(f"l{n}: &l{n} {{{refs}}}")
    with pytest.raises(ConfigError, match="more than 10000 keys"):
        ci.flatten(ci.parse_yaml("\n".join(lines) + "\n"))


def test_yaml_lists_flow_values_and_yaml11_booleans() -> None:
    doc = ci.parse_yaml("a:\n- x\n- 'y'\nb: {c: 1, d: no}\ne: [1, 2]\nf: ~\ng: off\n")
    assert doc == {"a": ["x", "y"], "b": {"c": 1, "d": False}, "e": [1, 2], "f": None, "g": False}


# -- values out of range for the hardware -------------------------------------------------------


def test_a_read_interval_below_the_sensors_minimum_is_raised_to_it() -> None:
    values, adjusted = ci.fit_to_hardware({"sensor.type": "dht22", "sensor.read_interval": 0.25})
    assert values["sensor.read_interval"] == 2.0
    assert [str(a) for a in adjusted] == [
        "sensor.read_interval: 0.25 → 2.0 (the minimum for sensor.type dht22)"
    ]
    same, none = ci.fit_to_hardware({"sensor.type": "bme280", "sensor.read_interval": 0.5})
    assert same["sensor.read_interval"] == 0.5 and none == []


def test_a_read_interval_outside_the_keys_range_is_moved_to_its_end() -> None:
    result = ci.map_config({"data_collection.read_interval": 0.01, "sensor.type": "simulated"})
    assert result.errors == []
    assert result.values["sensor.read_interval"] == 0.1
    assert [str(a) for a in result.adjusted] == [
        "sensor.read_interval: 0.01 → 0.1 (the range of sensor.read_interval)"
    ]
    # Other keys have no safe nearest value: still an error.
    assert ci.map_config({"heating_control.gpio_pin": 99}).errors
