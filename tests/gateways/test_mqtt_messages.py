"""The gateway's pure parts: settings from the service's reply, discovery configs, the state and
control messages and command parsing (no broker, no service)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from filamentctl.core import schema
from filamentctl.errors import ConfigError
from filamentctl.gateways.mqtt import discovery
from filamentctl.gateways.mqtt.settings import MqttSettings, from_reply


def reply(box: str = "default", **settings: Any) -> dict[str, Any]:
    values = {k: v for k, v in schema.defaults().items() if k.startswith("mqtt.")}
    values.update({k.replace("__", "."): v for k, v in settings.items()})
    return {"box": box, "version": "9.9.9", "settings": values}


def test_defaults_derive_topics_and_client_id_from_the_box_and_host() -> None:
    s = from_reply(reply("dryer-2"), "pi5.local")
    assert (s.host, s.port, s.tls) == ("localhost", 1883, False)
    assert s.base_topic == "filamentctl/dryer-2"
    assert s.node_id == "filamentctl_dryer-2"
    assert s.client_id == "filamentctl-pi5-dryer-2"
    assert s.discovery_prefix == "homeassistant" and s.qos == 1


def test_mqtts_url_means_tls_on_8883_and_ipv6_hosts_parse() -> None:
    assert (from_reply(reply(mqtt__url="mqtts://broker.lan"), "h").port, True) == (8883, True)
    s = from_reply(reply(mqtt__url="mqtts://[::1]:9883"), "h")
    assert (s.host, s.port, s.tls) == ("::1", 9883, True)


def test_an_invalid_value_from_the_service_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="mqtt.url"):
        from_reply(reply(mqtt__url="http://broker"), "h")
    with pytest.raises(ConfigError, match="mqtt.qos"):
        from_reply(reply(mqtt__qos=3), "h")


def test_the_password_never_shows_in_repr() -> None:
    s = from_reply(reply(mqtt__username="u", mqtt__password="hunter2-secret"), "h")
    assert s.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(s)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("mqtt.url", "mqtt://user:pw@broker", "without user:password@"),
        ("mqtt.url", "tcp://broker:1883", "mqtt://HOST[:PORT]"),
        ("mqtt.base_topic", "home/+/dryer", "no '+', '#'"),
        ("mqtt.base_topic", "/dryer", "empty level"),
        ("mqtt.discovery_prefix", "", "non-empty"),
        ("mqtt.tls_ca_file", "ca.pem", "absolute"),
        ("mqtt.client_id", "two words", "without spaces"),
    ],
)
def test_schema_refuses_bad_mqtt_values_with_what_is_allowed(
    key: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        schema.parse(key, value)
    assert key in str(caught.value) and allowed in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_the_password_key_is_secret() -> None:
    assert schema.SCHEMA["mqtt.password"].secret
    assert schema.parse("mqtt.password", "vault:secret/mqtt#password").startswith("vault:")


def settings() -> MqttSettings:
    return from_reply(reply(mqtt__base_topic="home/dryer", mqtt__qos=0), "h")


def test_every_discovery_config_names_the_device_availability_and_a_unique_id() -> None:
    messages = discovery.discovery_messages(settings(), has_pressure=True, simulated=False)
    configs = {topic: json.loads(payload) for topic, payload in messages}
    assert len(configs) == 13  # 7 sensors, 3 binary sensors, 2 selects, 1 button
    assert all(t.startswith("homeassistant/") and t.endswith("/config") for t in configs)
    assert {c["availability_topic"] for c in configs.values()} == {"home/dryer/availability"}
    assert len({c["unique_id"] for c in configs.values()}) == 13
    assert {c["device"]["identifiers"][0] for c in configs.values()} == {"home_dryer"}
    assert {c["qos"] for c in configs.values()} == {0}
    select = configs["homeassistant/select/home_dryer/fan_mode/config"]
    assert select["command_topic"] == "home/dryer/fan/mode/set"
    assert select["state_topic"] == "home/dryer/control"
    button = configs["homeassistant/button/home_dryer/heater_reset/config"]
    assert button["command_topic"] == "home/dryer/heater/reset"
    age = configs["homeassistant/sensor/home_dryer/reading_age/config"]
    assert (age["device_class"], age["entity_category"]) == ("duration", "diagnostic")


def test_pressure_is_announced_only_when_the_sensor_has_it() -> None:
    pressure = "homeassistant/sensor/home_dryer/pressure/config"
    unknown = dict(discovery.discovery_messages(settings(), has_pressure=None, simulated=False))
    assert pressure not in unknown  # no reading yet: leave whatever is there
    without = dict(discovery.discovery_messages(settings(), has_pressure=False, simulated=False))
    assert without[pressure] == ""  # an empty retained payload removes the entity
    with_ = dict(discovery.discovery_messages(settings(), has_pressure=True, simulated=False))
    assert json.loads(with_[pressure])["device_class"] == "atmospheric_pressure"


STATUS: dict[str, Any] = {
    "simulated": True,
    "reading": {
        "time": "2026-11-30T04:42:19.740630Z",
        "seq": 7,
        "age_s": 1.234,
        "temperature_c": 20.0,
        "temperature_f": 68.0,
        "humidity": 33.3,
        "dew_point_c": 3.3,
        "absolute_humidity_g_m3": 5.7,
        "pressure_hpa": None,
    },
    "sensor": {"health": "OK"},
    "storage": {"backlog": 12},
    "heater": {"on": True, "mode": "manual", "override": "on", "reason": "manual on",
               "enabled": True, "latched": None},
    "fan": {"on": False, "mode": "fault", "override": None, "reason": "safety: reading 31 s old",
            "enabled": True, "latched": None},
}  # fmt: skip


def test_state_carries_the_reading_its_age_and_the_backlog() -> None:
    state = discovery.state_payload(STATUS)
    assert state is not None
    assert (state["temperature_c"], state["humidity"], state["seq"]) == (20.0, 33.3, 7)
    assert (state["reading_age_s"], state["backlog"]) == (1.2, 12)
    assert discovery.has_pressure(STATUS) is False
    assert discovery.state_payload({"reading": None}) is None


def test_control_shows_the_chosen_mode_and_any_safety_fault() -> None:
    control = discovery.control_payload(STATUS)
    assert control["heater"]["mode"] == "on" and control["heater"]["on"] is True
    assert control["fan"]["mode"] == "auto" and control["fan"]["state"] == "fault"
    assert control["fault"] is True
    assert control["fault_reason"] == "fan: safety: reading 31 s old"
    calm = discovery.control_payload({"heater": {"mode": "auto"}, "fan": {"mode": "auto"}})
    assert (calm["fault"], calm["fault_reason"]) == (False, None)


def test_commands_map_to_the_socket_operations_of_the_cli() -> None:
    topics = discovery.Topics.of(settings())
    assert discovery.parse_command(topics, "home/dryer/heater/mode/set", b" ON\n") == (
        "heater.set",
        {"mode": "on"},
    )
    assert discovery.parse_command(topics, "home/dryer/fan/mode/set", b"auto") == (
        "fan.set",
        {"mode": "auto"},
    )
    assert discovery.parse_command(topics, "home/dryer/heater/reset", b"PRESS") == (
        "heater.reset",
        {},
    )
    refusal = discovery.parse_command(topics, "home/dryer/heater/mode/set", b"hot")
    assert isinstance(refusal, str) and "not one of auto, on, off" in refusal
    assert topics.commands == (
        "home/dryer/heater/mode/set",
        "home/dryer/fan/mode/set",
        "home/dryer/heater/reset",
    )
