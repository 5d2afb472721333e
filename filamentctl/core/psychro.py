"""Humidity physics: Magnus formula with the WMO coefficients (valid for -45..60 °C).

Pure functions, no I/O. ``es(T) = 6.112 * exp(17.62*T / (243.12 + T))`` hPa.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from operator import add, mul, sub, truediv

MAGNUS_A = 17.62
MAGNUS_B = 243.12  # °C
ES0_HPA = 6.112  # hPa
_A, _B, _ES0 = MAGNUS_A, MAGNUS_B, ES0_HPA


def c_to_f(temperature_c: float) -> float:
    """Celsius to Fahrenheit."""
    return temperature_c * 9.0 / 5.0 + 32.0


def saturation_vapour_pressure_hpa(temperature_c: float) -> float:
    """Saturation vapour pressure over water, in hPa."""
    return _ES0 * math.exp(_A * temperature_c / (_B + temperature_c))


def dew_point_c(temperature_c: float, humidity: float) -> float:
    """Dew point in °C for a temperature (°C) and relative humidity (%).

    RH of 0 has no dew point; it is clamped to 0.01 % so the result stays finite.
    """
    rh = max(humidity, 0.01) / 100.0
    gamma = math.log(rh) + _A * temperature_c / (_B + temperature_c)
    return _B * gamma / (_A - gamma)


def absolute_humidity_g_m3(temperature_c: float, humidity: float) -> float:
    """Water vapour density in g/m³ (216.7 · e / T_kelvin)."""
    e = humidity / 100.0 * saturation_vapour_pressure_hpa(temperature_c)
    return 216.7 * e / (temperature_c + 273.15)


def derived(temperature_c: float, humidity: float) -> tuple[float, float]:
    """``(dew point °C, absolute humidity g/m³)`` in one go, sharing the Magnus term.

    :meth:`Reading.fields` and the line-protocol encoder both call this (or
    :func:`derived_columns`, which must stay the same formula), so they cannot disagree.
    """
    magnus = MAGNUS_A * temperature_c / (MAGNUS_B + temperature_c)
    gamma = math.log(max(humidity, 0.01) / 100.0) + magnus
    vapour_hpa = humidity / 100.0 * ES0_HPA * math.exp(magnus)
    return (
        MAGNUS_B * gamma / (MAGNUS_A - gamma),
        216.7 * vapour_hpa / (temperature_c + 273.15),
    )


def derived_columns(
    temperatures_c: Sequence[float], humidities: Sequence[float]
) -> tuple[list[float], list[float]]:
    """:func:`derived` for whole columns: ``(dew points, absolute humidities)``, element-wise.

    Bit-for-bit the same numbers as calling :func:`derived` on each pair (the same operations in
    the same order, run by C-level ``map`` loops instead of bytecode per reading: the backlog
    drain encodes a million readings). Raises what :func:`derived` raises for the first bad pair
    (``ZeroDivisionError``, ``OverflowError``...); callers fall back to :func:`derived` per value.
    """
    ts = temperatures_c
    magnus = list(map(truediv, map(mul, repeat(MAGNUS_A), ts), map(add, repeat(MAGNUS_B), ts)))
    gamma = list(
        map(
            add,
            map(math.log, map(truediv, map(max, humidities, repeat(0.01)), repeat(100.0))),
            magnus,
        )
    )
    vapour_hpa = map(
        mul,
        map(mul, map(truediv, humidities, repeat(100.0)), repeat(ES0_HPA)),
        map(math.exp, magnus),
    )
    dew = list(map(truediv, map(mul, repeat(MAGNUS_B), gamma), map(sub, repeat(MAGNUS_A), gamma)))
    absolute = list(map(truediv, map(mul, repeat(216.7), vapour_hpa), map(add, ts, repeat(273.15))))
    return dew, absolute
