"""DHT22 / DHT11 on a GPIO data pin through ``adafruit_dht``.

The sensor can be read at most every 2 s. Within those 2 s the driver silently returns its
previous values, which must never pass for a new reading: reads are spaced more
than 2 s apart, and a read the driver answered from its cache raises :class:`SensorNoData`.
Checksum and short-buffer errors are common on Linux; one :meth:`DHTSensor.read` retries them up
to ``attempts`` times (2 s apart), so a read can take about ``2.25 × attempts`` seconds.

``pulsein_factory(pin, maxlen, idle_state)`` replaces the hardware ``PulseIn`` (tests and
``EmulatedDHT``); the driver's own decode, checksum and caching still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from filamentctl.core.reading import Sample
from filamentctl.hw import blinka
from filamentctl.hw.sensor import Sensor, SensorError, SensorNoData, SensorNotFound

PulseInFactory = Callable[[Any, int, bool], Any]

MIN_INTERVAL_S = 2.0
# The driver's RuntimeError texts worth another attempt (a garbled transmission).
_RETRYABLE = ("Checksum did not validate", "A full buffer was not returned", "unplausible data")
_NOT_FOUND = "DHT sensor not found"


class DHTSensor(Sensor):
    """A DHT22 or DHT11 (``model``) with its data line on BCM GPIO ``gpio_pin``."""

    min_interval_s = MIN_INTERVAL_S

    def __init__(
        self,
        model: str,
        gpio_pin: int,
        pulsein_factory: PulseInFactory | None = None,
        *,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if model not in ("dht22", "dht11"):
            raise ValueError(f"unknown DHT model {model!r}: dht22 or dht11")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.kind = model
        self.gpio_pin = gpio_pin
        self.attempts = attempts
        self._pulsein_factory = pulsein_factory
        self._sleep = sleep
        self._driver: Any = None
        self._last_attempt: float | None = None  # time.monotonic(), the driver's own clock
        self._name = f"{model.upper()} on GPIO{gpio_pin}"

    def read(self) -> Sample:
        driver = self._ensure_driver()
        problem = ""
        for _ in range(self.attempts):
            self._wait_for_sensor()
            before = getattr(driver, "_last_called", None)
            try:
                temperature = driver.temperature
                humidity = driver.humidity  # same measurement: the driver caches it for 2 s
            except RuntimeError as exc:
                text = str(exc)
                if _NOT_FOUND in text:
                    raise SensorNotFound(
                        f"{self._name} did not answer: check its wiring (data to GPIO"
                        f"{self.gpio_pin}, 3.3 V, GND), the pull-up resistor and the pin number"
                    ) from exc
                if not any(marker in text for marker in _RETRYABLE):
                    self._drop_driver()
                    raise SensorError(f"{self._name} read failed: {text}") from exc
                problem = text.replace(" Try again.", "").rstrip(".").lower()
                continue
            finally:
                self._last_attempt = time.monotonic()
            if before is not None and getattr(driver, "_last_called", None) == before:
                raise SensorNoData(
                    f"{self._name} returned its cached value: read it at most every "
                    f"{MIN_INTERVAL_S:g} s"
                )
            if temperature is None or humidity is None:
                raise SensorNoData(f"{self._name} has no measurement yet")
            return Sample(float(temperature), float(humidity))
        raise SensorError(
            f"{self._name}: {problem} in {self.attempts} attempts: check the wiring, keep the "
            "cable short and use a 4.7–10 kΩ pull-up"
        )

    def close(self) -> None:
        self._drop_driver()

    def _wait_for_sensor(self) -> None:
        """Sleep until more than 2 s have passed since the previous attempt ended."""
        if self._last_attempt is None:
            return
        remaining = MIN_INTERVAL_S - (time.monotonic() - self._last_attempt)
        if remaining > 0:
            self._sleep(remaining + 0.005)  # the driver compares with '>'

    def _drop_driver(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            try:
                driver.exit()
            except Exception:  # noqa: BLE001 - closing a broken driver must not raise
                pass

    def _ensure_driver(self) -> Any:
        if self._driver is None:
            self._driver = self._build_driver()
        return self._driver

    def _build_driver(self) -> Any:
        adafruit_dht = blinka.load("adafruit_dht")
        cls = adafruit_dht.DHT22 if self.kind == "dht22" else adafruit_dht.DHT11
        if self._pulsein_factory is None:
            board = blinka.load("board")
            pin = getattr(board, f"D{self.gpio_pin}", None)
            if not any(name[:1] == "D" and name[1:].isdigit() for name in dir(board)):
                raise SensorNotFound(
                    f"this machine has no GPIO pins (board {getattr(board, 'board_id', None)}): "
                    f"a {self.kind.upper()} needs a Raspberry Pi; set sensor.type simulated to "
                    "try filamentctl without hardware"
                )
            if pin is None:
                raise SensorNotFound(
                    f"GPIO{self.gpio_pin} does not exist on this board: set sensor.gpio_pin to "
                    "the BCM number of the data pin"
                )
            try:
                return cls(pin)
            except Exception as exc:  # Blinka's PulseIn: RuntimeError, OSError, …
                raise SensorError(f"cannot open {self._name}: {exc}") from exc
        # Build the driver without its own PulseIn, then give it ours: the driver's measure(),
        # decode, checksum and cache run unchanged; only the pulse capture is replaced.
        try:
            driver = cls(self.gpio_pin, use_pulseio=False)
        except ValueError as exc:  # "Bitbanging is not supported" outside Linux
            raise SensorError(f"cannot open {self._name}: {exc}") from exc
        if not hasattr(driver, "_use_pulseio"):
            raise SensorError("this adafruit_dht version cannot take an emulated PulseIn")
        maxlen = getattr(driver, "_max_pulses", 81)
        driver.pulse_in = self._pulsein_factory(self.gpio_pin, maxlen, True)
        driver.pulse_in.pause()
        driver._use_pulseio = True
        return driver
