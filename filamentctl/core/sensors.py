"""What each supported sensor can measure and how often it may be read (from the datasheets).

One table for the reading filter (a value outside the range is not a measurement), the
configuration rules (a cutoff the sensor cannot measure could never fire) and the sampler.
"""

from __future__ import annotations

#: Temperature range of each sensor type, °C: BME280 −40…85, DHT22/AM2302 −40…80, DHT11 0…50.
#: The simulated box reports what a BME280 would.
TEMPERATURE_RANGE_C: dict[str, tuple[float, float]] = {
    "bme280": (-40.0, 85.0),
    "dht22": (-40.0, 80.0),
    "dht11": (0.0, 50.0),
    "simulated": (-40.0, 85.0),
}
#: Shortest sampling interval per sensor type, s: a DHT measures at most every 2 s (the driver
#: returns its cached value in between).
MIN_READ_INTERVAL_S: dict[str, float] = {
    "dht22": 2.0,
    "dht11": 2.0,
    "bme280": 0.5,
    "simulated": 0.1,
}
_WIDEST = (-40.0, 85.0)


def temperature_range(sensor_type: str) -> tuple[float, float]:
    """(lowest, highest) °C the sensor type can measure; the widest range for an unknown type."""
    return TEMPERATURE_RANGE_C.get(sensor_type, _WIDEST)


def min_read_interval(sensor_type: str) -> float:
    """The shortest sampling interval for the sensor type, in seconds."""
    return MIN_READ_INTERVAL_S.get(sensor_type, 0.1)
