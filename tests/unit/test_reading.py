"""Readings: derived values follow the Magnus/WMO formulas; the fast path agrees with them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filamentctl.core import psychro
from filamentctl.core.reading import FIELDS, Reading, iso_utc


@pytest.mark.parametrize(
    ("t", "rh", "dew", "absolute"),
    [
        # Magnus/WMO values; 20 °C / 50 % and 25 °C / 100 % agree with psychrometric tables
        # (dew point 9.3 °C, 8.6 g/m³; saturation 23.0 g/m³).
        (20.0, 50.0, 9.26, 8.62),
        (25.0, 100.0, 25.0, 22.97),
        (0.0, 80.0, -3.04, 3.88),
        (45.0, 10.0, 6.36, 6.52),
    ],
)
def test_dew_point_and_absolute_humidity_match_reference(
    t: float, rh: float, dew: float, absolute: float
) -> None:
    r = Reading(0, 1, t, rh)
    assert r.dew_point_c == pytest.approx(dew, abs=0.02)
    assert r.absolute_humidity_g_m3 == pytest.approx(absolute, abs=0.02)


@given(st.floats(-40, 85), st.floats(0, 100), st.one_of(st.none(), st.floats(300, 1100)))
def test_fields_fast_path_equals_the_formulas(t: float, rh: float, p: float | None) -> None:
    f = Reading(0, 1, t, rh, p).fields()
    assert f["temperature_f"] == pytest.approx(round(psychro.c_to_f(t), 3), abs=1e-9)
    assert f["dew_point_c"] == pytest.approx(round(psychro.dew_point_c(t, rh), 3), abs=2e-3)
    assert f["absolute_humidity_g_m3"] == pytest.approx(
        round(psychro.absolute_humidity_g_m3(t, rh), 3), abs=2e-3
    )
    assert ("pressure_hpa" in f) == (p is not None)
    assert all(math.isfinite(v) for v in f.values())


def test_heating_lowers_relative_but_not_absolute_humidity() -> None:
    """Same water content, warmer air: RH falls, absolute humidity and dew point stay."""
    cold = Reading(0, 1, 20.0, 50.0)
    e = 0.5 * psychro.saturation_vapour_pressure_hpa(20.0)
    rh_warm = 100.0 * e / psychro.saturation_vapour_pressure_hpa(45.0)
    warm = Reading(0, 2, 45.0, rh_warm)
    assert rh_warm < 20
    assert warm.dew_point_c == pytest.approx(cold.dew_point_c, abs=0.01)
    # g/m³ changes only by the gas-law factor (T in kelvin).
    assert warm.absolute_humidity_g_m3 == pytest.approx(
        cold.absolute_humidity_g_m3 * 293.15 / 318.15, rel=1e-6
    )


def test_iso_timestamp_is_utc_with_microseconds() -> None:
    assert iso_utc(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456Z"


def test_to_dict_carries_time_seq_and_null_pressure() -> None:
    d = Reading(1_700_000_000_000_000_000, 7, 21.0, 40.0).to_dict()
    assert d["seq"] == 7 and d["time_ns"] == 1_700_000_000_000_000_000
    assert d["pressure_hpa"] is None


def test_fields_names_every_value_of_a_reading_in_order() -> None:
    assert tuple(Reading(0, 1, 21.0, 40.0, 1013.0).fields()) == FIELDS
    assert tuple(Reading(0, 1, 21.0, 40.0).fields()) == FIELDS[:-1]  # no pressure sensor
    assert set(FIELDS) <= set(Reading(0, 1, 21.0, 40.0, 1013.0).to_dict())
