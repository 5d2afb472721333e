"""make_sensor picks the backend by sensor.type, touches no hardware until the first read, and a
missing sensor is a SensorError, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from filamentctl.hw.bme280 import BME280Sensor
from filamentctl.hw.dht import DHTSensor
from filamentctl.hw.factory import make_sensor
from filamentctl.hw.sensor import Sensor, SensorError
from filamentctl.hw.simulated import SimulatedBox, SimulatedSensor


def clock() -> float:
    return 0.0


def test_simulated_uses_the_given_box() -> None:
    box = SimulatedBox(clock)
    sensor = make_sensor({"sensor.type": "simulated"}, clock=clock, box=box)
    assert isinstance(sensor, SimulatedSensor) and sensor.box is box


def test_simulated_without_a_box_builds_one_on_the_clock() -> None:
    sensor = make_sensor({"sensor.type": "simulated"}, clock=clock)
    assert isinstance(sensor, SimulatedSensor)
    assert sensor.read().temperature_c == pytest.approx(22.0, abs=0.2)


@pytest.mark.parametrize("address", ["auto", "0x76", "0x77"])
def test_bme280_with_each_address_setting(address: str) -> None:
    sensor = make_sensor({"sensor.type": "bme280", "sensor.i2c_address": address}, clock=clock)
    assert isinstance(sensor, BME280Sensor) and sensor.kind == "bme280"


@pytest.mark.parametrize("model", ["dht22", "dht11"])
def test_dht_models_use_the_gpio_pin(model: str) -> None:
    sensor = make_sensor({"sensor.type": model, "sensor.gpio_pin": 17}, clock=clock)
    assert isinstance(sensor, DHTSensor)
    assert (sensor.kind, sensor.gpio_pin, sensor.min_interval_s) == (model, 17, 2.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sensor.type": "bme280", "sensor.i2c_address": "0x40"}, "sensor.i2c_address"),
        ({"sensor.type": "dht22"}, "sensor.gpio_pin is not set"),
        ({"sensor.type": "sht31"}, "unknown sensor.type 'sht31'"),
    ],
)
def test_unusable_settings_are_a_sensor_error(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SensorError, match=message):
        make_sensor(settings, clock=clock)


@pytest.mark.parametrize(
    "settings",
    [{"sensor.type": "bme280"}, {"sensor.type": "dht22", "sensor.gpio_pin": 4}],
)
def test_reading_real_hardware_gives_a_reading_or_one_line_sensor_error(
    settings: dict[str, Any],
) -> None:
    # On a machine without the hardware (CI) this is the "missing sensor" path: it must be a
    # SensorError the service can count, never another exception.
    sensor = make_sensor(settings, clock=clock)
    assert isinstance(sensor, Sensor)
    try:
        sensor.read()
    except SensorError as exc:
        assert str(exc) and "\n" not in str(exc)
    finally:
        sensor.close()
