"""Emulated sensor hardware, shipped in the package like gpiozero's ``MockFactory``.

The real Adafruit drivers run unchanged on top of these; only the electrical side is faked:

- :class:`EmulatedBME280Bus` is a Blinka-style I2C bus (``try_lock``, ``unlock``, ``writeto``,
  ``readfrom_into``, ``writeto_then_readfrom``, ``scan``) with a register-level BME280 on it. It
  produces raw ADC values by inverting the datasheet's floating-point compensation, so
  ``adafruit_bme280`` reads back the chosen temperature, humidity and pressure (within about
  0.001 °C, 0.005 %RH and 0.01 hPa).
- :class:`EmulatedDHT` is a DHT22/DHT11 on a data pin; its :meth:`EmulatedDHT.pulse_in` builds a
  :class:`FakePulseIn` that hands ``adafruit_dht`` the pulse train the sensor would send (bit
  timings, byte layout, checksum), with switches for a bad checksum, a short buffer and a missing
  sensor.

Imports nothing from Adafruit or Blinka: usable on any machine.
"""

from __future__ import annotations

import errno
import math
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# -- BME280 -----------------------------------------------------------------------------------

BME280_CHIP_ID = 0x60
BMP280_CHIP_ID = 0x58  # the humidity-less sibling often sold as "BME280"

_REG_CALIB_00 = 0x88  # T1..P9, 24 bytes, then 0xA1 = H1
_REG_H1 = 0xA1
_REG_CHIP_ID = 0xD0
_REG_RESET = 0xE0
_REG_CALIB_26 = 0xE1  # H2..H6, 7 bytes
_REG_CTRL_HUM = 0xF2
_REG_STATUS = 0xF3
_REG_CTRL_MEAS = 0xF4
_REG_CONFIG = 0xF5
_REG_PRESS = 0xF7
_REG_TEMP = 0xFA
_REG_HUM = 0xFD
_SKIPPED_20BIT = 0x80000  # what a data register holds when its measurement is skipped / at reset
_SKIPPED_16BIT = 0x8000


@dataclass(frozen=True, slots=True)
class BME280Calibration:
    """Trimming parameters (dig_T1..dig_H6). Defaults are typical values of a real part."""

    t1: int = 27504
    t2: int = 26435
    t3: int = -1000
    p1: int = 36477
    p2: int = -10685
    p3: int = 3024
    p4: int = 2855
    p5: int = 140
    p6: int = -7
    p7: int = 15500
    p8: int = -14600
    p9: int = 6000
    h1: int = 75
    h2: int = 370
    h3: int = 0
    h4: int = 313
    h5: int = 50
    h6: int = 30

    def registers(self) -> dict[int, int]:
        """The calibration bytes as the chip exposes them, by register address."""
        block = struct.pack(
            "<HhhHhhhhhhhh",
            self.t1, self.t2, self.t3,
            self.p1, self.p2, self.p3, self.p4, self.p5, self.p6, self.p7, self.p8, self.p9,
        )  # fmt: skip
        out = {_REG_CALIB_00 + i: b for i, b in enumerate(block)}
        out[_REG_H1] = self.h1 & 0xFF
        # 0xE4/0xE5/0xE6 pack the 12-bit H4 and H5: E4 = H4[11:4], E5 = H5[3:0]<<4 | H4[3:0],
        # E6 = H5[11:4].
        h_block = struct.pack(
            "<hBbBbb",
            self.h2,
            self.h3,
            _signed8(self.h4 >> 4),
            ((self.h5 & 0x0F) << 4) | (self.h4 & 0x0F),
            _signed8(self.h5 >> 4),
            self.h6,
        )
        out.update({_REG_CALIB_26 + i: b for i, b in enumerate(h_block)})
        return out

    # The datasheet's floating-point compensation (section 8.1), term by term as the Adafruit
    # driver computes it, so the emulator predicts exactly what the driver will report.

    def t_fine(self, adc_t: int) -> int:
        raw = float(adc_t)
        var1 = (raw / 16384.0 - self.t1 / 1024.0) * self.t2
        var2 = ((raw / 131072.0 - self.t1 / 8192.0) * (raw / 131072.0 - self.t1 / 8192.0)) * self.t3
        return int(var1 + var2)

    def temperature_c(self, adc_t: int) -> float:
        return self.t_fine(adc_t) / 5120.0

    def _pressure_terms(self, t_fine: int) -> tuple[float, float]:
        var1 = float(t_fine) / 2.0 - 64000.0
        var2 = var1 * var1 * self.p6 / 32768.0
        var2 += var1 * self.p5 * 2.0
        var2 = var2 / 4.0 + self.p4 * 65536.0
        var3 = self.p3 * var1 * var1 / 524288.0
        var1 = (var3 + self.p2 * var1) / 524288.0
        var1 = (1.0 + var1 / 32768.0) * self.p1
        return var1, var2

    def pressure_hpa(self, adc_p: int, t_fine: int) -> float:
        var1, var2 = self._pressure_terms(t_fine)
        pressure = 1048576.0 - adc_p
        pressure = ((pressure - var2 / 4096.0) * 6250.0) / var1
        var1 = self.p9 * pressure * pressure / 2147483648.0
        var2 = pressure * self.p8 / 32768.0
        pressure += (var1 + var2 + self.p7) / 16.0
        return pressure / 100

    def _humidity_terms(self, t_fine: int) -> tuple[float, float]:
        """(offset, gain) with ``var6 = (adc - offset) * gain``."""
        var1 = float(t_fine) - 76800.0
        h4 = float((_signed8(self.h4 >> 4) << 4) | (self.h4 & 0xF))
        h5 = float((_signed8(self.h5 >> 4) << 4) | (self.h5 & 0xF))
        offset = h4 * 64.0 + (h5 / 16384.0) * var1
        var4 = self.h2 / 65536.0
        var5 = 1.0 + (self.h3 / 67108864.0) * var1
        var6 = 1.0 + (self.h6 / 67108864.0) * var1 * var5
        return offset, var4 * (var5 * var6)

    def humidity(self, adc_h: int, t_fine: int) -> float:
        offset, gain = self._humidity_terms(t_fine)
        var6 = (adc_h - offset) * gain
        return min(100.0, max(0.0, var6 * (1.0 - self.h1 * var6 / 524288.0)))

    # Inversions: solve the compensation for the ADC value, then settle the rounding by trying
    # the neighbouring codes against the forward formula.

    def adc_temperature(self, temperature_c: float) -> int:
        target = temperature_c * 5120.0 + 0.5  # the driver truncates t_fine: aim mid-step
        a, b = float(self.t3), 8.0 * self.t2  # a·x² + b·x = t_fine, x = adc/131072 − T1/8192
        x = 2.0 * target / (b + math.sqrt(b * b + 4.0 * a * target))
        guess = round((x + self.t1 / 8192.0) * 131072.0)
        return _best(guess, 0xFFFFF, lambda adc: abs(self.temperature_c(adc) - temperature_c))

    def adc_pressure(self, pressure_hpa: float, t_fine: int) -> int:
        p = pressure_hpa * 100.0
        a, b, c = self.p9 / 2.0**35, 1.0 + self.p8 / 2.0**19, self.p7 / 16.0 - p
        p1 = -2.0 * c / (b + math.sqrt(b * b - 4.0 * a * c))
        var1, var2 = self._pressure_terms(t_fine)
        guess = round(1048576.0 - (p1 * var1 / 6250.0 + var2 / 4096.0))
        return _best(guess, 0xFFFFF, lambda adc: abs(self.pressure_hpa(adc, t_fine) - pressure_hpa))

    def adc_humidity(self, humidity: float, t_fine: int) -> int:
        k = self.h1 / 524288.0  # humidity = v·(1 − k·v)
        v = 2.0 * humidity / (1.0 + math.sqrt(max(0.0, 1.0 - 4.0 * k * humidity)))
        offset, gain = self._humidity_terms(t_fine)
        guess = round(v / gain + offset)
        return _best(guess, 0xFFFF, lambda adc: abs(self.humidity(adc, t_fine) - humidity))


def _signed8(value: int) -> int:
    value &= 0xFF
    return value - 0x100 if value & 0x80 else value


def _best(guess: int, top: int, error: Callable[[int], float]) -> int:
    codes = [min(top, max(0, guess + d)) for d in range(-3, 4)]
    return min(codes, key=error)


class EmulatedBME280Bus:
    """An I2C bus with one emulated BME280 at ``address`` (0x76 or 0x77; None: an empty bus).

    Behaves like a Blinka/CircuitPython ``busio.I2C``: transfers need the lock, an absent address
    raises ``OSError(EREMOTEIO)`` (which the driver turns into "No I2C device at address"), and
    the chip measures only when told to (forced mode) or continuously (normal mode), returning
    0x80000 in a data register whose measurement is skipped. ``present = False`` unplugs it.
    """

    def __init__(
        self,
        address: int | None = 0x77,
        *,
        temperature_c: float = 21.0,
        humidity: float = 45.0,
        pressure_hpa: float = 1013.25,
        chip_id: int = BME280_CHIP_ID,
        calibration: BME280Calibration | None = None,
    ) -> None:
        self.address = address
        self.present = True
        self.chip_id = chip_id
        self.calibration = calibration or BME280Calibration()
        self.temperature_c = temperature_c
        self.humidity = humidity
        self.pressure_hpa = pressure_hpa
        self.conversions = 0  # measurements performed (forced triggers + normal-mode refreshes)
        self.deinitialised = False
        self._locked = False
        self._pointer = 0
        self._regs = bytearray(256)
        self._measuring_polls = 0
        self._power_on_reset()

    def set(
        self,
        temperature_c: float | None = None,
        humidity: float | None = None,
        pressure_hpa: float | None = None,
    ) -> None:
        """Change what the chip will measure next."""
        if temperature_c is not None:
            self.temperature_c = temperature_c
        if humidity is not None:
            self.humidity = humidity
        if pressure_hpa is not None:
            self.pressure_hpa = pressure_hpa

    # -- the busio.I2C surface ------------------------------------------------------------------

    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def deinit(self) -> None:
        self.deinitialised = True

    def scan(self) -> list[int]:
        self._require_lock()
        return [self.address] if self.address is not None and self._answers(self.address) else []

    def writeto(
        self, address: int, buffer: bytes | bytearray, *, start: int = 0, end: int | None = None
    ) -> None:
        self._require_lock()
        self._select(address)
        data = bytes(buffer[start:end])
        if not data:
            return  # a probe: the address acknowledged
        self._pointer = data[0]
        # Burst writes are (register, value) pairs.
        for i in range(0, len(data) - 1, 2):
            self._write_register(data[i], data[i + 1])

    def readfrom_into(
        self, address: int, buffer: bytearray, *, start: int = 0, end: int | None = None
    ) -> None:
        self._require_lock()
        self._select(address)
        end = len(buffer) if end is None else end
        if self._regs[_REG_CTRL_MEAS] & 0x03 == 0x03 and _REG_PRESS <= self._pointer <= 0xFE:
            self._convert()  # normal mode: registers hold the latest measurement
        for i in range(start, end):
            buffer[i] = self._read_register(self._pointer)
            self._pointer = (self._pointer + 1) & 0xFF

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: bytes | bytearray,
        buffer_in: bytearray,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        self.writeto(address, buffer_out, start=out_start, end=out_end)
        self.readfrom_into(address, buffer_in, start=in_start, end=in_end)

    # -- the chip -------------------------------------------------------------------------------

    def _require_lock(self) -> None:
        if not self._locked:
            raise RuntimeError("Function requires lock")

    def _answers(self, address: int | None) -> bool:
        return self.present and address is not None and address == self.address

    def _select(self, address: int) -> None:
        if not self._answers(address):
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    def _power_on_reset(self) -> None:
        self._regs[:] = bytes(256)
        for reg, value in self.calibration.registers().items():
            self._regs[reg] = value
        self._store(_REG_PRESS, _SKIPPED_20BIT, 3)
        self._store(_REG_TEMP, _SKIPPED_20BIT, 3)
        self._store(_REG_HUM, _SKIPPED_16BIT, 2)
        self._measuring_polls = 0

    def _read_register(self, reg: int) -> int:
        if reg == _REG_CHIP_ID:
            return self.chip_id & 0xFF
        if reg == _REG_STATUS:
            # Report "measuring" for one poll after a trigger, as a real conversion takes ~10 ms.
            measuring = self._measuring_polls > 0
            self._measuring_polls = max(0, self._measuring_polls - 1)
            return 0x08 if measuring else 0x00
        return self._regs[reg]

    def _write_register(self, reg: int, value: int) -> None:
        if reg == _REG_RESET:
            if value == 0xB6:
                self._power_on_reset()
        elif reg in (_REG_CTRL_HUM, _REG_CONFIG):
            self._regs[reg] = value
        elif reg == _REG_CTRL_MEAS:
            mode = value & 0x03
            if mode in (0x01, 0x02):  # forced: measure once, then back to sleep
                self._regs[reg] = value & ~0x03
                self._convert()
                self._measuring_polls = 1
            else:
                self._regs[reg] = value
                if mode == 0x03:
                    self._convert()
        # Other registers are read-only: writes are ignored, as on the chip.

    def _convert(self) -> None:
        """Measure: fill the data registers per the oversampling settings (0 = skipped)."""
        self.conversions += 1
        cal = self.calibration
        ctrl_meas = self._regs[_REG_CTRL_MEAS]
        osrs_t, osrs_p = (ctrl_meas >> 5) & 0x07, (ctrl_meas >> 2) & 0x07
        osrs_h = self._regs[_REG_CTRL_HUM] & 0x07
        adc_t = cal.adc_temperature(self.temperature_c)
        t_fine = cal.t_fine(adc_t)
        self._store(_REG_TEMP, adc_t << 4 if osrs_t else _SKIPPED_20BIT, 3)
        adc_p = cal.adc_pressure(self.pressure_hpa, t_fine)
        self._store(_REG_PRESS, adc_p << 4 if osrs_p else _SKIPPED_20BIT, 3)
        adc_h = cal.adc_humidity(self.humidity, t_fine)
        self._store(_REG_HUM, adc_h if osrs_h else _SKIPPED_16BIT, 2)

    def _store(self, reg: int, value: int, width: int) -> None:
        if width == 3 and value == _SKIPPED_20BIT:
            value <<= 4  # 0x80000 is the 20-bit code; the registers hold it left-aligned
        self._regs[reg : reg + width] = value.to_bytes(width, "big")


# -- DHT22 / DHT11 --------------------------------------------------------------------------------

DHT_FAULTS = ("checksum", "short", "absent")

# Pulse lengths in µs: the sensor's answer is 80 low + 80 high, then per bit 50 low + 26 (0) or
# 70 (1) high, then a final 50 low. Before it, the line floats high for ~30 µs after the host
# releases it. PulseIn keeps only the last ``maxlen`` (81), which is what aligns the driver on the
# 40 data bits.
_RELEASE_US = 30
_RESPONSE_US = 80
_LOW_US = 50
_ZERO_US = 26
_ONE_US = 70


class EmulatedDHT:
    """A DHT22 or DHT11 on a data pin, answering each trigger with a pulse train.

    ``fault`` (persistent) or :meth:`fail_next` (one-shot, in order) select "checksum" (last byte
    wrong), "short" (transmission cut off after 50 pulses) or "absent" (no answer at all).
    ``triggers`` records the trigger length of every measurement the driver started.
    """

    def __init__(
        self, model: str = "dht22", temperature_c: float = 21.5, humidity: float = 45.0
    ) -> None:
        if model not in ("dht22", "dht11"):
            raise ValueError(f"unknown DHT model {model!r}: dht22 or dht11")
        self.model = model
        self.fault: str | None = None
        self.triggers: list[int] = []
        self._next_faults: deque[str] = deque()
        self.temperature_c = temperature_c
        self.humidity = humidity
        self.set(temperature_c, humidity)

    def set(self, temperature_c: float | None = None, humidity: float | None = None) -> None:
        """Change what the sensor measures. Raises ValueError outside the model's range."""
        t = self.temperature_c if temperature_c is None else temperature_c
        h = self.humidity if humidity is None else humidity
        t_range = (-40.0, 80.0) if self.model == "dht22" else (0.0, 50.0)
        if not t_range[0] <= t <= t_range[1]:
            raise ValueError(f"{self.model} measures {t_range[0]:g}…{t_range[1]:g} °C, not {t}")
        if not 0.0 <= h <= 100.0:
            raise ValueError(f"humidity must be 0…100 %, not {h}")
        self.temperature_c, self.humidity = t, h

    def fail_next(self, *faults: str) -> None:
        """Make the next measurements fail, one fault each, in order."""
        for fault in faults:
            _check_fault(fault)
        self._next_faults.extend(faults)

    def frame(self) -> bytes:
        """The 5 bytes the sensor sends: humidity, temperature, checksum."""
        if self.model == "dht22":
            rh = round(self.humidity * 10)
            t = round(abs(self.temperature_c) * 10)
            sign = 0x80 if self.temperature_c < 0 and t else 0x00
            data = [rh >> 8, rh & 0xFF, sign | ((t >> 8) & 0x7F), t & 0xFF]
        else:
            tenths = round(self.temperature_c * 10)
            data = [round(self.humidity), 0, tenths // 10, tenths % 10]
        return bytes([*data, sum(data) & 0xFF])

    def respond(self) -> list[int]:
        """The pulse lengths (µs) of one answer, with the next fault applied."""
        fault = self._next_faults.popleft() if self._next_faults else self.fault
        if fault == "absent":
            return []
        frame = bytearray(self.frame())
        if fault == "checksum":
            frame[4] ^= 0x01
        pulses = [_RELEASE_US, _RESPONSE_US, _RESPONSE_US]
        for byte in frame:
            for bit in range(7, -1, -1):
                pulses += [_LOW_US, _ONE_US if byte >> bit & 1 else _ZERO_US]
        pulses.append(_LOW_US)
        if fault == "short":
            return pulses[:50]
        return pulses

    def pulse_in(self, pin: object, maxlen: int = 81, idle_state: bool = True) -> FakePulseIn:
        """A :class:`FakePulseIn` on this sensor — pass as ``DHTSensor(pulsein_factory=...)``."""
        return FakePulseIn(self, pin, maxlen=maxlen, idle_state=idle_state)


def _check_fault(fault: str) -> None:
    if fault not in DHT_FAULTS:
        raise ValueError(f"unknown DHT fault {fault!r}: choose one of {', '.join(DHT_FAULTS)}")


class FakePulseIn:
    """The part of ``pulseio.PulseIn`` that ``adafruit_dht`` uses, wired to an
    :class:`EmulatedDHT`: ``resume(trigger)`` sends the trigger and captures the answer."""

    def __init__(
        self, device: EmulatedDHT, pin: object, *, maxlen: int = 81, idle_state: bool = True
    ) -> None:
        self.device = device
        self.pin = pin
        self.maxlen = maxlen
        self.idle_state = idle_state
        self.paused = False
        self.deinitialised = False
        self._pulses: deque[int] = deque(maxlen=maxlen)

    def pause(self) -> None:
        self._check()
        self.paused = True

    def resume(self, trigger_duration: int = 0) -> None:
        self._check()
        self.paused = False
        if trigger_duration:
            self.device.triggers.append(trigger_duration)
            self._pulses.extend(self.device.respond())

    def clear(self) -> None:
        self._check()
        self._pulses.clear()

    def popleft(self) -> int:
        self._check()
        if not self._pulses:
            raise IndexError("pop from empty PulseIn")
        return self._pulses.popleft()

    def deinit(self) -> None:
        self.deinitialised = True

    def __len__(self) -> int:
        return len(self._pulses)

    def __getitem__(self, index: int) -> int:
        return self._pulses[index]

    def _check(self) -> None:
        if self.deinitialised:
            raise ValueError("Object has been deinitialized and can no longer be used.")
