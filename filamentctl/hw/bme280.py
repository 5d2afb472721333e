"""BME280 on I2C through ``adafruit_bme280`` (temperature, humidity, pressure).

Nothing touches the bus until the first :meth:`BME280Sensor.read`, so a missing sensor never
stops the service from starting. After any failure the driver is dropped and the next read probes
again, so a sensor plugged back in is picked up without a restart.
"""

from __future__ import annotations

import re
from typing import Any

from filamentctl.core.reading import Sample
from filamentctl.hw import blinka
from filamentctl.hw.sensor import Sensor, SensorError, SensorNotFound

ADDRESSES = (0x76, 0x77)
_BMP280_IDS = (0x56, 0x57, 0x58)
_CHECK = (
    "check the wiring (SDA, SCL, 3.3 V, GND), the address (`i2cdetect -y 1`) "
    "and that I2C is enabled (raspi-config → Interface Options → I2C)"
)


def parse_address(value: int | str) -> int | str:
    """``"auto"``, ``0x76``/``0x77`` (int) or ``"0x76"``/``"0x77"`` (str) → ``"auto"`` or int.

    Raises ValueError for anything else.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = int(text, 0)
        except ValueError:
            raise ValueError(f"I2C address {value!r} is not auto, 0x76 or 0x77") from None
    if value not in ADDRESSES:
        raise ValueError(f"I2C address {value:#x} is not a BME280 address: use auto, 0x76 or 0x77")
    return value


class BME280Sensor(Sensor):
    """A BME280 at ``address`` (0x76, 0x77, or "auto": probe 0x76 then 0x77).

    ``bus`` is any object with the ``busio.I2C`` surface (``EmulatedBME280Bus`` in tests); by
    default the board's I2C bus is opened on first use. ``address`` (attribute) is where the
    sensor was last found.
    """

    kind = "bme280"
    min_interval_s = 0.0

    def __init__(self, address: int | str = "auto", bus: Any = None) -> None:
        wanted = parse_address(address)
        self._candidates = ADDRESSES if wanted == "auto" else (int(wanted),)
        self._bus = bus
        self._own_bus = bus is None
        self._driver: Any = None
        self.address: int | None = None

    def read(self) -> Sample:
        driver = self._ensure_driver()
        try:
            # Each property triggers its own forced measurement; three conversions take ~30 ms.
            temperature = float(driver.temperature)
            humidity = float(driver.humidity)
            pressure = float(driver.pressure)
        except (OSError, RuntimeError, ValueError, ArithmeticError) as exc:
            self._driver = None  # re-probe on the next read (hot-plug)
            raise SensorError(
                f"BME280 at {self.address:#x} stopped answering ({_one_line(exc)}): {_CHECK}"
            ) from exc
        return Sample(temperature, humidity, pressure)

    def close(self) -> None:
        self._driver = None
        if self._own_bus and self._bus is not None:
            deinit = getattr(self._bus, "deinit", None)
            if deinit is not None:
                deinit()
            self._bus = None

    def _ensure_driver(self) -> Any:
        if self._driver is not None:
            return self._driver
        bus = self._ensure_bus()
        basic = blinka.load("adafruit_bme280.basic")
        # Try where it was last seen first, so a re-probe after a glitch is one transaction.
        order = sorted(self._candidates, key=lambda a: a != self.address)
        problems: list[str] = []
        wrong_chip = False
        for address in order:
            try:
                self._driver = basic.Adafruit_BME280_I2C(bus, address)
            except ValueError:  # adafruit_bus_device: "No I2C device at address: 0x.."
                problems.append(f"nothing answers at {address:#x}")
            except RuntimeError as exc:  # the driver: "Failed to find BME280! Chip ID 0x.."
                wrong_chip = True
                problems.append(f"the device at {address:#x} is not a BME280 ({_chip(exc)})")
            except OSError as exc:
                problems.append(f"I2C error at {address:#x} ({_one_line(exc)})")
            else:
                self.address = address
                return self._driver
        error = SensorError if wrong_chip else SensorNotFound
        raise error(f"BME280 not found: {'; '.join(problems)}: {_CHECK}")

    def _ensure_bus(self) -> Any:
        if self._bus is None:
            board = blinka.load("board")
            if not hasattr(board, "I2C"):
                raise SensorNotFound(
                    f"this machine has no I2C bus (board {getattr(board, 'board_id', None)}): a "
                    "BME280 needs a Raspberry Pi with I2C enabled; set sensor.type simulated "
                    "to try filamentctl without hardware"
                )
            try:
                self._bus = board.I2C()
            except Exception as exc:  # Blinka: AttributeError, ValueError, OSError, …
                raise SensorNotFound(
                    f"no I2C bus ({type(exc).__name__}: {_one_line(exc)}): enable I2C "
                    "(raspi-config → Interface Options → I2C) and check that /dev/i2c-1 exists"
                ) from exc
        return self._bus


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _chip(exc: RuntimeError) -> str:
    match = re.search(r"Chip ID (0x[0-9a-fA-F]+)", str(exc))
    if match is None:
        return _one_line(exc)
    chip_id = int(match.group(1), 16)
    if chip_id in _BMP280_IDS:
        return f"chip id {chip_id:#04x}: a BMP280, which has no humidity sensor"
    return f"chip id {chip_id:#04x}, expected 0x60"
