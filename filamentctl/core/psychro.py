"""Humidity physics: Magnus formula with the WMO coefficients (valid for -45..60 °C).

Pure functions, no I/O. ``es(T) = 6.112 * exp(17.62*T / (243.12 + T))`` hPa.
"""

from __future__ import annotations

import math

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

    The hot path of a backlog drain: :meth:`Reading.fields` and the line-protocol encoder both
    call this, so they cannot disagree.
    """
    magnus = MAGNUS_A * temperature_c / (MAGNUS_B + temperature_c)
    gamma = math.log(max(humidity, 0.01) / 100.0) + magnus
    vapour_hpa = humidity / 100.0 * ES0_HPA * math.exp(magnus)
    return (
        MAGNUS_B * gamma / (MAGNUS_A - gamma),
        216.7 * vapour_hpa / (temperature_c + 273.15),
    )
