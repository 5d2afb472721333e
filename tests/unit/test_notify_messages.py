"""Each notification says what happened, the reading and the limit, what the service did, what
the user can do, and which box."""

from __future__ import annotations

from filamentctl.core import notify_messages as texts
from filamentctl.core.humidity_alarm import HumidityAlarm
from filamentctl.core.schema import defaults

ORIGIN = texts.Origin("shelf-2", "pi-dryer")
SETTINGS = {**defaults(), "heater.cutoff_temp_c": 60.0, "fan.max_humidity": 15.0}


def _says_box(message: texts.Message) -> None:
    assert "shelf-2" in message.title and "Box 'shelf-2' on pi-dryer." in message.body


def test_heater_latch_names_reading_cutoff_action_and_box() -> None:
    data = {
        "kind": "heater_latched",
        "message": "heater latched off: 61.2 °C ≥ cutoff 60.0 °C",
        "cause": "61.2 °C ≥ cutoff 60.0 °C",
        "temperature_c": 61.2,
        "since_ns": 1_796_000_000_000_000_000,
    }
    m = texts.heater_latched(data, SETTINGS, ORIGIN)
    assert m.kind == "heater_latched" and m.safety and m.severity == "failure"
    assert "heater latched OFF: 61.2 °C ≥ cutoff 60.0 °C." in m.body
    assert "switched the heater off" in m.body
    assert "`filamentctl heater reset`" in m.body
    assert m.event_time == 1_796_000_000.0
    _says_box(m)


def test_runaway_latch_also_states_the_cutoff() -> None:
    data = {"kind": "heater_latched", "cause": "runaway: heater ON but 30.0 → 30.2 °C in 10m"}
    m = texts.heater_latched(data, SETTINGS, ORIGIN)
    assert "runaway" in m.body and "heater.cutoff_temp_c = 60 °C" in m.body


def test_sensor_fault_says_the_limit_what_the_service_does_and_what_to_check() -> None:
    data = {"type": "simulated", "event": "started", "message": "sensor failing: stale"}
    m = texts.sensor_event(data, SETTINGS, ORIGIN, 1.0)
    assert m.kind == "sensor_fault" and not m.safety
    assert "sensor failing: stale" in m.body
    assert "sensor.stale_after = 30 s" in m.body
    assert "heater OFF" in m.body and "`filamentctl status`" in m.body
    _says_box(m)
    ended = texts.sensor_event({**data, "event": "ended", "message": "ok"}, SETTINGS, ORIGIN, 2)
    assert ended.kind == "sensor_fault" and "recovered" in ended.title


def test_delivery_alert_says_nothing_is_lost_and_what_to_check() -> None:
    data = {
        "kind": "delivery",
        "message": "5 consecutive delivery failures to influxdb_v2 (HTTP 503)",
        "failures": 5,
        "backend": "influxdb_v2",
        "backlog": 1234,
    }
    m = texts.delivery_alert(data, SETTINGS, ORIGIN, 1.0)
    assert "HTTP 503" in m.body and "1234 readings waiting" in m.body
    assert "retry.alert_threshold = 5" in m.body and "`filamentctl status`" in m.body
    auth = texts.delivery_alert({**data, "kind": "auth"}, SETTINGS, ORIGIN, 1.0)
    assert "credentials" in auth.title and "`filamentctl flush`" in auth.body


def test_drying_done_names_the_material_and_water() -> None:
    data = {"material": "PETG", "reason": "time is up", "water_removed_g": 12.34}
    m = texts.drying_ended(data, ORIGIN, 1.0)
    assert m.kind == "drying_done" and "PETG" in m.title
    assert "time is up" in m.body and "12.3 g" in m.body
    _says_box(m)


def test_humidity_alarm_names_reading_level_duration_and_action() -> None:
    alarm = HumidityAlarm(40.0, 5.0)
    alarm.observe(70.0, 100.0)
    event = alarm.observe(70.4, 105.0)
    assert event is not None
    m = texts.humidity_alarm(event, SETTINGS, ORIGIN, lambda t: f"T{t:g}")
    assert "70.4 %RH" in m.body and "notify.humidity_above = 40 %" in m.body
    assert "for 5s (since T100)" in m.body and "desiccant" in m.body
    assert "fan.max_humidity = 15 %" in m.body and "below 38 %" in m.body
    assert m.details["since"] == 100.0 and m.details["at"] == 105.0
    _says_box(m)


def test_the_default_box_is_named_by_its_host_in_the_title() -> None:
    m = texts.test_message(texts.Origin("default", "pi-dryer"), "1.0", "directly", 0.0)
    assert m.title == "[pi-dryer] test notification"
    assert "Box 'default' on pi-dryer." in m.body
