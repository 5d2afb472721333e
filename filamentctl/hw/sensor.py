"""The sensor contract: what every backend (BME280, DHT, simulated box) offers the service.

A sensor returns a raw :class:`~filamentctl.core.reading.Sample` or raises a :class:`SensorError`
whose message is one line a user can act on (what failed, why, what to check). Validation,
calibration offsets and time stamping happen elsewhere (``core.validation``, the sampler).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from filamentctl.core.reading import Sample


class SensorError(Exception):
    """A read failed. ``str(error)`` is one line: what failed, why, what to check."""


class SensorNotFound(SensorError):
    """No sensor answered where the configuration says one is (wiring, address, bus disabled)."""


class SensorNoData(SensorError):
    """The sensor answered, but with nothing new (stale data, or a driver's cached value)."""


@runtime_checkable
class Sensor(Protocol):
    """One temperature/humidity sensor.

    ``kind`` names the backend ("bme280", "dht22", "dht11", "simulated"); ``min_interval_s`` is
    the shortest time between two reads the hardware supports (DHT: 2 s), which the sampler must
    respect. ``read`` blocks for at most a few seconds.
    """

    kind: str
    min_interval_s: float

    def read(self) -> Sample:
        """One fresh sample. Raises :class:`SensorError` (or a subclass) on any failure."""
        ...

    def close(self) -> None:
        """Release the bus or pins. Safe to call more than once."""
        ...
