"""The configuration schema: every key, parsing, cross-field rules, hints, env names (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from filamentctl.core import schema
from filamentctl.core.schema import SCHEMA, check, defaults, env_name, parse, validate
from filamentctl.errors import EXIT_USAGE, ConfigError


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_every_key_has_one_line_help_and_a_default_its_own_rules_accept(name: str) -> None:
    key = SCHEMA[name]
    assert key.name == name
    assert key.help and "\n" not in key.help and len(key.help) <= 100
    assert check(name, key.default) == key.default
    # The default survives a round trip through the text a user would type.
    assert parse(name, schema.format_value(key.default)) == key.default
    if key.type == "choice":
        assert key.default in key.choices
    if key.min is not None and key.max is not None:
        assert key.min <= key.default <= key.max


def test_defaults_are_consistent_and_cover_every_key() -> None:
    values = defaults()
    assert set(values) == set(SCHEMA)
    assert validate(values) == []


def test_defaults_hand_out_fresh_mutable_values() -> None:
    defaults()["data.tags"]["x"] = "y"
    assert defaults()["data.tags"] == {}


def test_the_keys_the_issue_lists_exist_with_their_defaults() -> None:
    d = defaults()
    assert d["sensor.type"] == "bme280"
    assert d["sensor.read_interval"] == 5.0
    assert d["heater.gpio_pin"] == 16 and d["fan.gpio_pin"] == 20
    assert d["database.type"] == "none"
    assert d["storage.max_backlog"] == 2_000_000
    assert d["fan.on_fault"] == "off"
    assert d["metrics.listen"] == ""


def test_passwords_and_tokens_are_secret_and_nothing_else_is() -> None:
    secret = {n for n, k in SCHEMA.items() if k.secret}
    # notify.urls too: Apprise URLs carry the services' tokens (ntfy topics, bot tokens).
    assert secret == {n for n in SCHEMA if n.endswith((".password", ".token"))} | {"notify.urls"}
    assert "database.influxdb_v2.token" in secret
    assert "database.timescaledb.password" in secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("ON", True)]
    + [("false", False), ("no", False), ("0", False), ("off", False)],
)
def test_bools_accept_the_usual_spellings(text: str, expected: bool) -> None:
    assert parse("heater.enabled", text) is expected


def test_an_invalid_bool_names_the_key_the_value_and_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as err:
        parse("heater.enabled", "maybe")
    message = str(err.value)
    assert "heater.enabled" in message and "'maybe'" in message and "true or false" in message
    assert "\n" not in message
    assert err.value.exit_code == EXIT_USAGE


def test_ints_are_whole_decimal_numbers_in_range() -> None:
    assert parse("sensor.gpio_pin", " 17 ") == 17
    for bad in ("4.5", "four", "0x10", "28", "-1", ""):
        with pytest.raises(ConfigError, match="sensor.gpio_pin"):
            parse("sensor.gpio_pin", bad)


def test_out_of_range_numbers_say_the_range_and_unit() -> None:
    with pytest.raises(ConfigError) as err:
        parse("sensor.read_interval", "0.01")
    assert "from 0.1 to 3600 s" in str(err.value)


def test_floats_accept_integers_and_refuse_nan_and_infinity() -> None:
    assert parse("sensor.read_interval", "2") == 2.0
    assert isinstance(parse("sensor.read_interval", "2"), float)
    # "1_0" is 10 to Python's float(): a typo here, refused rather than stored as 10.
    for bad in ("nan", "inf", "-inf", "2s", "", "1_0"):
        with pytest.raises(ConfigError, match="sensor.read_interval"):
            parse("sensor.read_interval", bad)


def test_choices_are_case_insensitive_and_errors_list_them() -> None:
    assert parse("sensor.type", "DHT22") == "dht22"
    assert parse("sensor.i2c_address", "0x77") == "0x77"
    with pytest.raises(ConfigError) as err:
        parse("sensor.type", "dht23")
    assert "bme280, dht22, dht11, simulated" in str(err.value)
    with pytest.raises(ConfigError):
        parse("sensor.i2c_address", "0x78")


def test_tags_are_a_json_object_of_strings() -> None:
    assert parse("data.tags", '{"box": "dryer-1", "room": "garage"}') == {
        "box": "dryer-1",
        "room": "garage",
    }
    for bad in ("box=dryer-1", '["a"]', '{"n": 1}', '{"": "x"}', "{"):
        with pytest.raises(ConfigError, match="data.tags"):
            parse("data.tags", bad)


def test_text_keys_keep_their_value_but_some_have_a_shape() -> None:
    assert parse("retry.alert_command", "notify-send 'dryer alert'") == "notify-send 'dryer alert'"
    assert parse("database.influxdb_v2.url", "https://influx.example:8086") == (
        "https://influx.example:8086"
    )
    with pytest.raises(ConfigError, match="http"):
        parse("database.influxdb_v2.url", "influx.example:8086")
    with pytest.raises(ConfigError, match="postgresql"):
        parse("database.timescaledb.url", "http://db:5432")
    with pytest.raises(ConfigError, match="data.measurement"):
        parse("data.measurement", "  ")
    assert parse("database.victoriametrics.tenant", "12:3") == "12:3"
    with pytest.raises(ConfigError):
        parse("database.victoriametrics.tenant", "team-a")


@pytest.mark.parametrize("listen", ["", "127.0.0.1:9108", "localhost:9108", "[::1]:9108"])
def test_metrics_may_listen_on_loopback_only(listen: str) -> None:
    assert parse("metrics.listen", listen) == listen


@pytest.mark.parametrize("listen", ["0.0.0.0:9108", "192.168.1.5:9108", "9108", "[::]:80", "x:0"])
def test_metrics_refuse_a_non_loopback_listen_address(listen: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        parse("metrics.listen", listen)


def test_a_bad_secret_value_is_not_repeated_in_the_error() -> None:
    # Secrets are plain text today, but the hidden path must hold for any validator failure.
    with pytest.raises(ConfigError) as err:
        check("database.influxdb_v2.token", 12345)
    assert "12345" not in str(err.value) and "(hidden)" in str(err.value)


def test_check_normalises_typed_values_and_refuses_wrong_types() -> None:
    assert check("sensor.read_interval", 2) == 2.0
    assert check("sensor.gpio_pin", 5.0) == 5
    for name, bad in [
        ("sensor.gpio_pin", True),
        ("sensor.gpio_pin", 5.5),
        ("heater.enabled", 1),
        ("sensor.read_interval", "2"),
        ("data.tags", "{}"),
    ]:
        with pytest.raises(ConfigError, match=name):
            check(name, bad)


def _problems(**changes: Any) -> list[str]:
    return validate({k.replace("__", "."): v for k, v in changes.items()})


def test_heater_thresholds_must_be_ordered_below_the_cutoff() -> None:
    assert any(
        "heater.min_temp_c" in p and "heater.max_temp_c" in p
        for p in _problems(heater__min_temp_c=25.0)
    )
    assert any(
        "heater.max_temp_c" in p and "heater.cutoff_temp_c" in p
        for p in _problems(heater__max_temp_c=70.0, heater__min_temp_c=30.0)
    )
    assert _problems(heater__min_temp_c=40.0, heater__max_temp_c=45.0) == []


def test_fan_humidity_band_must_be_ordered() -> None:
    problems = _problems(fan__min_humidity=15.0)
    assert len(problems) == 1 and "fan.min_humidity" in problems[0]


def test_heater_and_fan_may_not_share_a_pin_when_both_are_enabled() -> None:
    same = {"heater__gpio_pin": 20, "fan__enabled": True}
    assert _problems(**same) == []  # heater disabled: its pin is free
    problems = _problems(**same, heater__enabled=True)
    assert any("heater.gpio_pin" in p and "fan.gpio_pin" in p for p in problems)


def test_a_dht_data_pin_may_not_be_a_relay_pin() -> None:
    clash = {"sensor__type": "dht22", "heater__enabled": True, "heater__gpio_pin": 4}
    problems = _problems(**clash)
    assert any("sensor.gpio_pin" in p and "heater.gpio_pin" in p for p in problems)
    assert _problems(**{**clash, "sensor__type": "simulated"}) == []


def test_a_relay_on_an_i2c_pin_clashes_with_the_bme280() -> None:
    problems = _problems(fan__enabled=True, fan__gpio_pin=3)
    assert any("fan.gpio_pin" in p and "I2C" in p for p in problems)


@pytest.mark.parametrize(
    ("sensor", "interval", "ok"),
    [
        ("dht22", 2.0, True),
        ("dht22", 1.0, False),
        ("dht11", 1.9, False),
        ("bme280", 0.5, True),
        ("bme280", 0.4, False),
        ("simulated", 0.1, True),
    ],
)
def test_read_interval_respects_the_sensor_minimum(sensor: str, interval: float, ok: bool) -> None:
    problems = _problems(sensor__type=sensor, sensor__read_interval=interval)
    assert (problems == []) is ok
    if not ok:
        assert "sensor.read_interval" in problems[0] and sensor in problems[0]


def test_stale_after_must_exceed_the_read_interval() -> None:
    problems = _problems(sensor__read_interval=60.0, sensor__stale_after=30.0)
    assert any("sensor.stale_after" in p and "sensor.read_interval" in p for p in problems)


def test_retry_base_may_not_exceed_the_maximum() -> None:
    assert any("retry.backoff_base" in p for p in _problems(retry__backoff_base=400.0))


def test_unknown_keys_get_a_did_you_mean_hint() -> None:
    assert "did you mean 'sensor.read_interval'?" in schema.unknown_key_message(
        "sensor.read_intervall"
    )
    # Only the last part given: still found.
    assert "'sensor.read_interval'" in schema.unknown_key_message("read_interval")
    assert "config list --all" in schema.unknown_key_message("completely.different")
    with pytest.raises(ConfigError, match="did you mean 'heater.max_temp_c'"):
        parse("heater.max_temp", "30")


def test_env_names_join_the_dotted_parts_with_double_underscores() -> None:
    assert env_name("sensor.read_interval") == "FILAMENTCTL_SENSOR__READ_INTERVAL"
    assert env_name("database.influxdb_v1.url") == "FILAMENTCTL_DATABASE__INFLUXDB_V1__URL"
    assert SCHEMA["log.level"].env == "FILAMENTCTL_LOG__LEVEL"


def test_every_env_name_maps_back_to_its_key() -> None:
    for name in SCHEMA:
        # The mapping is only reversible if no part contains "__" or starts/ends with "_".
        assert all(p and not p.startswith("_") and not p.endswith("_") for p in name.split("."))
        assert "__" not in name
        assert schema.key_from_env(env_name(name)) == name
        assert schema.is_key_env(env_name(name))


def test_plain_filamentctl_variables_are_not_key_overrides() -> None:
    for var in ("FILAMENTCTL_HOME", "FILAMENTCTL_CONFIG_KEY", "FILAMENTCTL_SOCKET", "PATH"):
        assert not schema.is_key_env(var)


def test_an_unknown_override_variable_suggests_the_variable_meant() -> None:
    with pytest.raises(ConfigError) as err:
        schema.key_from_env("FILAMENTCTL_SENSOR__READ_INTERVL")
    assert "did you mean FILAMENTCTL_SENSOR__READ_INTERVAL?" in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("database.victoriametrics.url", "https://vmuser:Sup3rSecret@vm.example:8428"),
        ("database.influxdb_v1.url", "http://admin:Sup3rSecret@influx:8086"),
        ("database.timescaledb.url", "postgresql://filament:Sup3rSecret@db/filament"),
    ],
)
def test_credentials_inside_a_url_are_refused_without_echoing_them(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        schema.parse(key, value)
    assert "Sup3rSecret" not in str(info.value)
    assert "password" in str(info.value)


@pytest.mark.parametrize(
    ("sensor", "top"), [("bme280", 85), ("simulated", 85), ("dht22", 80), ("dht11", 50)]
)
@pytest.mark.parametrize("key", ["heater.cutoff_temp_c", "heater.max_temp_c"])
def test_a_heater_limit_at_or_above_the_sensor_range_is_refused(
    sensor: str, top: int, key: str
) -> None:
    values = {
        "sensor.type": sensor,
        "sensor.read_interval": 2.0,
        "heater.enabled": True,
        "heater.min_temp_c": 10.0,
        "heater.max_temp_c": top - 5.0,
        "heater.cutoff_temp_c": top - 1.0,
    }
    assert validate(values) == []
    values[key] = float(top)
    if key == "heater.max_temp_c":
        values["heater.cutoff_temp_c"] = top + 1.0
    problems = validate(values)
    assert any(key in p and f"below {top} °C" in p and sensor in p for p in problems), problems
    # Whether or not the heater is enabled now: the limit could never be measured.
    assert validate({**values, "heater.enabled": False}) != []


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"sensor.read_interval": 61.0, "sensor.stale_after": 200.0}, "at most 60 s"),
        ({"sensor.stale_after": 301.0}, "at most 300 s"),
        ({"sensor.read_interval": 10.0, "sensor.stale_after": 15.0}, "at least twice"),
    ],
)
def test_an_enabled_heater_needs_frequent_readings(changes: dict[str, Any], rule: str) -> None:
    problems = validate({"heater.enabled": True, **changes})
    assert any(rule in p and "heater.enabled" in p for p in problems), problems
    assert validate({"heater.enabled": False, **changes}) == []


@pytest.mark.parametrize(
    ("name", "value", "reveal", "hidden"),
    [
        ("database.influxdb_v1.password", "pw", False, True),
        ("database.influxdb_v1.password", "pw", True, False),  # --reveal
        ("database.influxdb_v1.password", "", False, False),  # not set: nothing to hide
        ("mqtt.password", "vault:secret/box#mqtt", False, True),  # a reference is hidden too
        ("heater.min_temp_c", 45.0, False, False),  # not a secret
        ("data.measurement", "dry_box", False, False),
        ("no.such_key", "x", False, True),  # unknown: treated as a secret
    ],
)
def test_masked_hides_a_secret_with_a_value_unless_revealed(
    name: str, value: Any, reveal: bool, hidden: bool
) -> None:
    assert schema.masked(name, value, reveal) is hidden
