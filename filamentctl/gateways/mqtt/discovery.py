"""Every MQTT message the gateway sends, built from settings and the service's ``status`` (pure).

Topics under the base topic (``filamentctl/BOX`` by default)::

    BASE/availability       online | offline (retained; offline is also the last will)
    BASE/state              JSON, one per reading (retained): the reading, its age, the backlog
    BASE/control            JSON on change (retained): heater and fan on/mode/reason, safety fault
    BASE/heater/mode/set    command: auto | on | off       (the only topics the gateway reads)
    BASE/fan/mode/set       command: auto | on | off
    BASE/heater/reset       command: any payload clears a latched heater fault

and one retained discovery config per entity under
``DISCOVERY_PREFIX/COMPONENT/NODE_ID/OBJECT_ID/config`` (an empty retained payload removes it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from filamentctl.gateways.mqtt.settings import MqttSettings

ONLINE = "online"
OFFLINE = "offline"
MODES = ("auto", "on", "off")
RELAYS = ("heater", "fan")


@dataclass(frozen=True, slots=True)
class Topics:
    availability: str
    state: str
    control: str
    heater_mode: str
    fan_mode: str
    heater_reset: str

    @classmethod
    def of(cls, settings: MqttSettings) -> Topics:
        base = settings.base_topic
        return cls(
            availability=f"{base}/availability",
            state=f"{base}/state",
            control=f"{base}/control",
            heater_mode=f"{base}/heater/mode/set",
            fan_mode=f"{base}/fan/mode/set",
            heater_reset=f"{base}/heater/reset",
        )

    @property
    def commands(self) -> tuple[str, ...]:
        """The topics the gateway subscribes to: these and nothing else."""
        return (self.heater_mode, self.fan_mode, self.heater_reset)


@dataclass(frozen=True, slots=True)
class Entity:
    component: str  # sensor, binary_sensor, select, button
    object_id: str
    config: Mapping[str, Any]


def _sensor(
    object_id: str,
    name: str,
    field: str,
    *,
    unit: str | None,
    device_class: str | None = None,
    precision: int | None = None,
    diagnostic: bool = False,
    icon: str | None = None,
) -> Entity:
    config: dict[str, Any] = {
        "name": name,
        "state_topic": "state",
        "value_template": f"{{{{ value_json.{field} }}}}",
        # measurement: Home Assistant keeps long-term statistics (min/mean/max per hour).
        "state_class": "measurement",
    }
    if unit is not None:
        config["unit_of_measurement"] = unit
    if device_class is not None:
        config["device_class"] = device_class
    if precision is not None:
        config["suggested_display_precision"] = precision
    if diagnostic:
        config["entity_category"] = "diagnostic"
    if icon is not None:
        config["icon"] = icon
    return Entity("sensor", object_id, config)


SENSORS = (
    _sensor("temperature", "Temperature", "temperature_c", unit="°C", device_class="temperature",
            precision=1),
    _sensor("humidity", "Humidity", "humidity", unit="%", device_class="humidity", precision=1),
    _sensor("dew_point", "Dew point", "dew_point_c", unit="°C", device_class="temperature",
            precision=1, icon="mdi:water-thermometer"),
    # No device class: older Home Assistant releases refuse a config naming one they lack.
    _sensor("absolute_humidity", "Absolute humidity", "absolute_humidity_g_m3", unit="g/m³",
            precision=1, icon="mdi:water"),
    _sensor("reading_age", "Reading age", "reading_age_s", unit="s", device_class="duration",
            precision=0, diagnostic=True),
    _sensor("backlog", "Backlog", "backlog", unit="readings", precision=0, diagnostic=True,
            icon="mdi:database-arrow-up"),
)  # fmt: skip
PRESSURE = _sensor(
    "pressure", "Pressure", "pressure_hpa", unit="hPa", device_class="atmospheric_pressure",
    precision=1,
)  # fmt: skip


def _binary(object_id: str, name: str, on_expr: str, device_class: str, **extra: Any) -> Entity:
    return Entity(
        "binary_sensor",
        object_id,
        {
            "name": name,
            "state_topic": "control",
            "value_template": f"{{{{ 'ON' if {on_expr} else 'OFF' }}}}",
            "device_class": device_class,
            "json_attributes_topic": "control",
            **extra,
        },
    )


def _select(relay: str, icon: str) -> Entity:
    return Entity(
        "select",
        f"{relay}_mode",
        {
            "name": f"{relay.capitalize()} mode",
            "state_topic": "control",
            "value_template": f"{{{{ value_json.{relay}.mode }}}}",
            "command_topic": f"{relay}_mode",
            "options": list(MODES),
            "icon": icon,
        },
    )


CONTROL_ENTITIES = (
    _binary("heater", "Heater", "value_json.heater.on", "running",
            json_attributes_template="{{ value_json.heater | tojson }}", icon="mdi:radiator"),
    _binary("fan", "Fan", "value_json.fan.on", "running",
            json_attributes_template="{{ value_json.fan | tojson }}", icon="mdi:fan"),
    _binary("fault", "Safety fault", "value_json.fault", "problem",
            json_attributes_template="{{ {'reason': value_json.fault_reason} | tojson }}",
            entity_category="diagnostic"),
    _select("heater", "mdi:radiator"),
    _select("fan", "mdi:fan"),
    Entity("button", "heater_reset", {
        "name": "Heater reset",
        "command_topic": "heater_reset",
        "payload_press": "PRESS",
        "icon": "mdi:restart-alert",
    }),
)  # fmt: skip


def entities(has_pressure: bool) -> tuple[Entity, ...]:
    """Every entity of a box; the pressure sensor only when the sensor measures pressure."""
    return SENSORS + ((PRESSURE,) if has_pressure else ()) + CONTROL_ENTITIES


def config_topic(settings: MqttSettings, entity: Entity) -> str:
    return (
        f"{settings.discovery_prefix}/{entity.component}/{settings.node_id}/"
        f"{entity.object_id}/config"
    )


def device(settings: MqttSettings, simulated: bool) -> dict[str, Any]:
    """The one Home Assistant device a box is."""
    name = "Filament box" if settings.box == "default" else f"Filament box {settings.box}"
    return {
        "identifiers": [settings.node_id],
        "name": name,
        "manufacturer": "filamentctl",
        "model": "Filament dry box (simulated)" if simulated else "Filament dry box",
        "sw_version": settings.version,
    }


def discovery_messages(
    settings: MqttSettings, *, has_pressure: bool | None, simulated: bool
) -> list[tuple[str, str]]:
    """(config topic, retained payload) for every entity, in order.

    ``has_pressure`` None (no reading yet) leaves the pressure entity as it is; False removes
    it (an empty payload), so a box moved from a BME280 to a DHT22 loses the entity.
    """
    topics = Topics.of(settings)
    named = {
        "state": topics.state,
        "control": topics.control,
        "heater_mode": topics.heater_mode,
        "fan_mode": topics.fan_mode,
        "heater_reset": topics.heater_reset,
    }
    dev = device(settings, simulated)
    out: list[tuple[str, str]] = []
    for entity in entities(bool(has_pressure)):
        config = dict(entity.config)
        for key in ("state_topic", "command_topic", "json_attributes_topic"):
            if key in config:
                config[key] = named[config[key]]
        config.update(
            unique_id=f"{settings.node_id}_{entity.object_id}",
            availability_topic=topics.availability,
            payload_available=ONLINE,
            payload_not_available=OFFLINE,
            qos=settings.qos,
            device=dev,
            origin={"name": "filamentctl", "sw_version": settings.version},
        )
        out.append((config_topic(settings, entity), json.dumps(config, ensure_ascii=False)))
    if has_pressure is False:
        out.append((config_topic(settings, PRESSURE), ""))
    return out


def all_config_topics(settings: MqttSettings) -> list[str]:
    """Every config topic the gateway may have published (for ``--remove-discovery``)."""
    return [config_topic(settings, e) for e in entities(True)]


def state_payload(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``state`` message from a ``status`` result; None before the first reading."""
    reading = status.get("reading")
    if not isinstance(reading, Mapping):
        return None
    storage = status.get("storage") or {}
    sensor = status.get("sensor") or {}
    age = reading.get("age_s")
    return {
        "temperature_c": reading.get("temperature_c"),
        "humidity": reading.get("humidity"),
        "dew_point_c": reading.get("dew_point_c"),
        "absolute_humidity_g_m3": reading.get("absolute_humidity_g_m3"),
        "pressure_hpa": reading.get("pressure_hpa"),
        "temperature_f": reading.get("temperature_f"),
        "time": reading.get("time"),
        "seq": reading.get("seq"),
        "reading_age_s": None if age is None else round(float(age), 1),
        "backlog": storage.get("backlog"),
        "sensor_health": sensor.get("health"),
    }


def _relay(section: Any) -> dict[str, Any]:
    section = section if isinstance(section, Mapping) else {}
    override = section.get("override")
    return {
        "on": bool(section.get("on")),
        # The select shows what the person chose: a manual override, else automatic.
        "mode": override if override in ("on", "off") else "auto",
        "state": section.get("mode") or "auto",  # auto | manual | fault
        "reason": section.get("reason") or "",
        "enabled": bool(section.get("enabled")),
        "latched": section.get("latched"),
    }


def control_payload(status: Mapping[str, Any]) -> dict[str, Any]:
    """The ``control`` message: heater and fan, and whether a safety rule holds a relay OFF."""
    relays = {name: _relay(status.get(name)) for name in RELAYS}
    faults = [
        f"{name}: {relays[name]['reason']}" for name in RELAYS if relays[name]["state"] == "fault"
    ]
    return {**relays, "fault": bool(faults), "fault_reason": "; ".join(faults) or None}


def has_pressure(status: Mapping[str, Any]) -> bool | None:
    """Whether the box's sensor measures pressure; None until there is a reading."""
    reading = status.get("reading")
    if not isinstance(reading, Mapping):
        return None
    return reading.get("pressure_hpa") is not None


def parse_command(topics: Topics, topic: str, payload: bytes) -> tuple[str, dict[str, Any]] | str:
    """A command message → (socket op, args), or a one-line reason it is not a command."""
    text = payload[:64].decode("utf-8", errors="replace").strip().lower()
    if topic == topics.heater_reset:
        return "heater.reset", {}
    for relay, mode_topic in (("heater", topics.heater_mode), ("fan", topics.fan_mode)):
        if topic == mode_topic:
            if text not in MODES:
                return f"{relay} mode {text!r} is not one of {', '.join(MODES)}"
            return f"{relay}.set", {"mode": text}
    return f"not a command topic: {topic}"
