"""Choose the sensor backend named by ``sensor.type``; hardware modules are imported only here.

Constructing a sensor never touches hardware (that happens on the first read), so a missing
sensor cannot stop the service from starting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from filamentctl.hw.sensor import Sensor, SensorError

if TYPE_CHECKING:
    from filamentctl.hw.simulated import SimulatedBox

SENSOR_TYPES = ("bme280", "dht22", "dht11", "simulated")


def make_sensor(
    settings: Mapping[str, Any], *, clock: Callable[[], float], box: SimulatedBox | None = None
) -> Sensor:
    """The sensor for ``settings["sensor.type"]``.

    ``clock`` (monotonic seconds) drives a simulated box created here when ``box`` is None.
    Raises :class:`SensorError` for an unknown type or an unusable address/pin setting.
    """
    kind = str(settings.get("sensor.type", "simulated")).strip().lower()
    if kind == "simulated":
        from filamentctl.hw.simulated import SimulatedBox, SimulatedSensor

        return SimulatedSensor(box if box is not None else SimulatedBox(clock))
    if kind == "bme280":
        from filamentctl.hw.bme280 import BME280Sensor

        try:
            return BME280Sensor(settings.get("sensor.i2c_address", "auto"))
        except ValueError as exc:
            raise SensorError(f"sensor.i2c_address: {exc}") from exc
    if kind in ("dht22", "dht11"):
        from filamentctl.hw.dht import DHTSensor

        pin = settings.get("sensor.gpio_pin")
        if pin is None or isinstance(pin, bool):
            raise SensorError(
                f"sensor.gpio_pin is not set: a {kind.upper()} needs the BCM number of its data "
                "pin (e.g. `filamentctl config set sensor.gpio_pin 4`)"
            )
        try:
            return DHTSensor(kind, int(pin))
        except ValueError as exc:
            raise SensorError(f"sensor.gpio_pin: {exc}") from exc
    raise SensorError(f"unknown sensor.type {kind!r}: choose one of {', '.join(SENSOR_TYPES)}")
