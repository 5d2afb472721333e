"""The real adafruit_bme280 driver reading an emulated chip over an emulated I2C bus.

Only the bus is fake: probing, chip-id check, calibration readout, forced-mode triggering,
status polling and the compensation maths are the driver's own.
"""

from __future__ import annotations

import pytest

from filamentctl.hw.bme280 import BME280Sensor, parse_address
from filamentctl.hw.emulated import BMP280_CHIP_ID, BME280Calibration, EmulatedBME280Bus
from filamentctl.hw.sensor import Sensor, SensorError, SensorNotFound


@pytest.mark.parametrize("address", [0x76, 0x77])
def test_driver_reads_the_emulated_chip_at_either_address(address: int) -> None:
    bus = EmulatedBME280Bus(address, temperature_c=23.45, humidity=41.2, pressure_hpa=987.6)
    sensor = BME280Sensor(address, bus=bus)
    sample = sensor.read()
    assert sample.temperature_c == pytest.approx(23.45, abs=0.001)
    assert sample.humidity == pytest.approx(41.2, abs=0.005)
    assert sample.pressure_hpa == pytest.approx(987.6, abs=0.01)
    assert sensor.address == address
    assert type(sensor._driver).__module__ == "adafruit_bme280.basic"  # the real driver


@pytest.mark.parametrize(
    ("temperature_c", "humidity", "pressure_hpa"),
    [(-40.0, 0.0, 300.0), (-12.34, 5.5, 850.0), (0.0, 100.0, 1013.25), (84.9, 73.3, 1100.0)],
)
def test_values_across_the_whole_range(
    temperature_c: float, humidity: float, pressure_hpa: float
) -> None:
    bus = EmulatedBME280Bus(
        0x77, temperature_c=temperature_c, humidity=humidity, pressure_hpa=pressure_hpa
    )
    sample = BME280Sensor(0x77, bus=bus).read()
    assert sample.temperature_c == pytest.approx(temperature_c, abs=0.001)
    assert sample.humidity == pytest.approx(humidity, abs=0.005)
    assert sample.pressure_hpa == pytest.approx(pressure_hpa, abs=0.01)


def test_other_calibration_data_is_honoured() -> None:
    odd = BME280Calibration(t1=28000, t2=26000, t3=50, p1=37000, p8=-14000, h2=350, h4=300, h5=40)
    bus = EmulatedBME280Bus(0x76, temperature_c=31.0, humidity=22.0, calibration=odd)
    sample = BME280Sensor(0x76, bus=bus).read()
    assert sample.temperature_c == pytest.approx(31.0, abs=0.001)
    assert sample.humidity == pytest.approx(22.0, abs=0.005)


def test_each_read_is_a_new_measurement() -> None:
    bus = EmulatedBME280Bus(0x76, temperature_c=20.0, humidity=50.0)
    sensor = BME280Sensor(0x76, bus=bus)
    assert sensor.read().temperature_c == pytest.approx(20.0, abs=0.001)
    before = bus.conversions
    bus.set(temperature_c=35.5, humidity=12.0)
    sample = sensor.read()
    assert sample.temperature_c == pytest.approx(35.5, abs=0.001)
    assert sample.humidity == pytest.approx(12.0, abs=0.005)
    assert bus.conversions > before  # the driver triggered forced conversions


@pytest.mark.parametrize("address", [0x76, 0x77])
def test_auto_finds_the_chip_at_either_address(address: int) -> None:
    sensor = BME280Sensor("auto", bus=EmulatedBME280Bus(address, temperature_c=19.0))
    assert sensor.read().temperature_c == pytest.approx(19.0, abs=0.001)
    assert sensor.address == address


def test_missing_device_is_sensor_not_found_with_what_to_check() -> None:
    sensor = BME280Sensor("auto", bus=EmulatedBME280Bus(None))
    with pytest.raises(SensorNotFound) as info:
        sensor.read()
    message = str(info.value)
    assert "\n" not in message
    assert "nothing answers at 0x76" in message and "nothing answers at 0x77" in message
    assert "i2cdetect -y 1" in message and "wiring" in message


def test_chip_at_the_other_address_is_not_found_at_the_configured_one() -> None:
    sensor = BME280Sensor(0x77, bus=EmulatedBME280Bus(0x76))
    with pytest.raises(SensorNotFound, match="nothing answers at 0x77"):
        sensor.read()


def test_wrong_chip_id_is_a_sensor_error_naming_the_chip() -> None:
    bus = EmulatedBME280Bus(0x76, chip_id=BMP280_CHIP_ID)
    with pytest.raises(SensorError) as info:
        BME280Sensor(0x76, bus=bus).read()
    assert not isinstance(info.value, SensorNotFound)
    assert "0x58" in str(info.value) and "BMP280" in str(info.value)


def test_unknown_chip_id_is_reported_with_the_expected_one() -> None:
    bus = EmulatedBME280Bus(0x77, chip_id=0x12)
    with pytest.raises(SensorError, match=r"chip id 0x12, expected 0x60"):
        BME280Sensor("auto", bus=bus).read()


def test_unplugged_sensor_fails_and_is_picked_up_again_when_replugged() -> None:
    bus = EmulatedBME280Bus(0x76, temperature_c=25.0)
    sensor = BME280Sensor("auto", bus=bus)
    sensor.read()
    bus.present = False
    with pytest.raises(SensorError, match="BME280 at 0x76 stopped answering"):
        sensor.read()
    with pytest.raises(SensorNotFound):
        sensor.read()  # still unplugged: the re-probe finds nothing
    bus.present = True
    bus.set(temperature_c=26.0)
    assert sensor.read().temperature_c == pytest.approx(26.0, abs=0.001)


def test_sensor_moved_to_the_other_address_is_found_by_auto() -> None:
    bus = EmulatedBME280Bus(0x76, temperature_c=25.0)
    sensor = BME280Sensor("auto", bus=bus)
    sensor.read()
    bus.address = 0x77
    with pytest.raises(SensorError):
        sensor.read()
    sensor.read()
    assert sensor.address == 0x77


def test_bus_lock_is_released_after_every_transaction() -> None:
    bus = EmulatedBME280Bus(0x76)
    BME280Sensor(0x76, bus=bus).read()
    assert bus.try_lock()  # nobody left it locked
    bus.unlock()


def test_the_emulated_bus_refuses_transfers_without_the_lock() -> None:
    bus = EmulatedBME280Bus(0x76)
    with pytest.raises(RuntimeError, match="requires lock"):
        bus.readfrom_into(0x76, bytearray(1))


def test_a_given_bus_is_not_closed_by_the_sensor() -> None:
    bus = EmulatedBME280Bus(0x76)
    sensor = BME280Sensor(0x76, bus=bus)
    sensor.read()
    sensor.close()
    assert not bus.deinitialised


def test_sensor_contract() -> None:
    sensor = BME280Sensor("auto", bus=EmulatedBME280Bus(0x77))
    assert isinstance(sensor, Sensor)
    assert (sensor.kind, sensor.min_interval_s) == ("bme280", 0.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("auto", "auto"), (" AUTO ", "auto"), ("0x76", 0x76), ("0x77", 0x77), (0x76, 0x76)],
)
def test_parse_address(value: int | str, expected: int | str) -> None:
    assert parse_address(value) == expected


@pytest.mark.parametrize("value", ["0x40", "seventy-six", 0x20, ""])
def test_parse_address_refuses_anything_else(value: int | str) -> None:
    with pytest.raises(ValueError):
        parse_address(value)
