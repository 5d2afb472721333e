"""The real adafruit_dht driver decoding emulated DHT22/DHT11 pulse trains.

Only ``PulseIn`` is fake (``EmulatedDHT.pulse_in``): the driver's trigger, pulse-to-bit
decoding, checksum, error texts and 2-second cache are its own. The driver really sleeps
0.25 s per measurement and the sensor needs 2 s between measurements, so tests that read twice
take a little over 2 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from filamentctl.hw.dht import DHTSensor
from filamentctl.hw.emulated import EmulatedDHT, FakePulseIn
from filamentctl.hw.sensor import Sensor, SensorError, SensorNoData, SensorNotFound

ROOT = Path(__file__).resolve().parents[2]


def make(
    model: str = "dht22", t: float = 21.5, rh: float = 45.0, **kwargs: object
) -> tuple[EmulatedDHT, DHTSensor]:
    device = EmulatedDHT(model, t, rh)
    return device, DHTSensor(model, 4, pulsein_factory=device.pulse_in, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("temperature_c", "humidity"), [(21.5, 45.0), (-12.3, 88.8), (-0.1, 0.0), (79.9, 100.0)]
)
def test_dht22_decode(temperature_c: float, humidity: float) -> None:
    device, sensor = make("dht22", temperature_c, humidity)
    sample = sensor.read()
    assert sample.temperature_c == pytest.approx(temperature_c, abs=1e-9)
    assert sample.humidity == pytest.approx(humidity, abs=1e-9)
    assert sample.pressure_hpa is None
    assert device.triggers == [1000]  # the DHT22 trigger: 1 ms low


@pytest.mark.parametrize(("temperature_c", "humidity"), [(23.4, 56.0), (0.0, 20.0), (50.0, 95.0)])
def test_dht11_decode(temperature_c: float, humidity: float) -> None:
    device, sensor = make("dht11", temperature_c, humidity)
    sample = sensor.read()
    assert sample.temperature_c == pytest.approx(temperature_c, abs=1e-9)
    assert sample.humidity == humidity
    assert device.triggers == [18000]  # the DHT11 trigger: 18 ms low


def test_bad_checksum_is_retried_after_the_2_s_minimum() -> None:
    device, sensor = make("dht22", 30.2, 33.3)
    device.fail_next("checksum")
    started = time.monotonic()
    sample = sensor.read()
    assert time.monotonic() - started > 2.0
    assert (sample.temperature_c, sample.humidity) == (30.2, 33.3)
    assert len(device.triggers) == 2


def test_persistent_bad_checksum_is_a_sensor_error_after_bounded_attempts() -> None:
    device, sensor = make("dht22", attempts=2)
    device.fault = "checksum"
    with pytest.raises(SensorError) as info:
        sensor.read()
    assert "checksum did not validate in 2 attempts" in str(info.value)
    assert "GPIO4" in str(info.value) and "\n" not in str(info.value)
    assert len(device.triggers) == 2


def test_short_buffer_is_a_sensor_error() -> None:
    device, sensor = make("dht11", attempts=1)
    device.fault = "short"
    with pytest.raises(SensorError, match="a full buffer was not returned in 1 attempts"):
        sensor.read()


def test_no_sensor_is_sensor_not_found_without_retrying() -> None:
    device, sensor = make("dht22", attempts=3)
    device.fault = "absent"
    with pytest.raises(SensorNotFound) as info:
        sensor.read()
    assert "DHT22 on GPIO4 did not answer" in str(info.value)
    assert "wiring" in str(info.value)
    assert len(device.triggers) == 1


def test_a_failed_read_never_yields_a_reading() -> None:
    device, sensor = make("dht22", 20.0, 40.0, attempts=1)
    sensor.read()
    device.set(temperature_c=25.0)
    device.fail_next("checksum")
    with pytest.raises(SensorError):
        sensor.read()  # the driver still holds 20.0 °C: it must not come back as a reading


def test_reads_are_spaced_2_s_apart_so_each_is_a_new_measurement() -> None:
    device, sensor = make("dht22", 20.0, 40.0)
    sensor.read()
    device.set(temperature_c=20.7)
    started = time.monotonic()
    sample = sensor.read()
    assert time.monotonic() - started > 1.9  # waited for the sensor's minimum interval
    assert sample.temperature_c == 20.7  # a new measurement, not the driver's cached 20.0
    assert len(device.triggers) == 2


def test_the_drivers_cached_value_is_never_returned_as_a_new_reading() -> None:
    # A sleep that does not sleep: the driver's 2 s cache would answer the second read.
    device, sensor = make("dht22", 20.0, 40.0, sleep=lambda s: None)
    sensor.read()
    device.set(temperature_c=26.0)
    with pytest.raises(SensorNoData, match="cached"):
        sensor.read()
    assert len(device.triggers) == 1


def test_close_releases_the_pulse_capture() -> None:
    captured: list[FakePulseIn] = []
    device = EmulatedDHT("dht22")

    def factory(pin: object, maxlen: int, idle_state: bool) -> FakePulseIn:
        captured.append(device.pulse_in(pin, maxlen, idle_state))
        return captured[0]

    sensor = DHTSensor("dht22", 17, pulsein_factory=factory)
    sensor.read()
    assert (captured[0].pin, captured[0].maxlen, captured[0].idle_state) == (17, 81, True)
    sensor.close()
    sensor.close()
    assert captured[0].deinitialised


def test_sensor_contract() -> None:
    _, sensor = make("dht11")
    assert isinstance(sensor, Sensor)
    assert (sensor.kind, sensor.min_interval_s) == ("dht11", 2.0)


def test_emulated_dht11_refuses_what_a_dht11_cannot_measure() -> None:
    with pytest.raises(ValueError, match="0…50 °C"):
        EmulatedDHT("dht11", -5.0, 40.0)


def test_hardware_libraries_load_only_on_first_read_and_print_nothing_on_stdout() -> None:
    # In a fresh interpreter: Blinka prints a board warning to stdout on import, which would
    # corrupt `--json` output. Importing our modules must not load it; reading must hide it.
    script = textwrap.dedent(
        """
        import sys
        import filamentctl.hw.bme280, filamentctl.hw.dht, filamentctl.hw.factory
        import filamentctl.hw.simulated, filamentctl.hw.emulated
        loaded = [m for m in ("adafruit_dht", "adafruit_bme280", "board", "busio", "digitalio",
                              "gpiozero") if m in sys.modules]
        assert not loaded, loaded
        from filamentctl.hw.emulated import EmulatedDHT
        device = EmulatedDHT("dht22", -3.5, 61.0)
        sample = filamentctl.hw.dht.DHTSensor("dht22", 4, device.pulse_in).read()
        assert "adafruit_dht" in sys.modules
        sys.stderr.write(f"{sample.temperature_c} {sample.humidity}")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.endswith("-3.5 61.0")
