"""The reading: one accepted sample with its UTC timestamp and sequence number.

Sensors produce :class:`Sample` (raw values, no time); the sampler stamps it into a
:class:`Reading`. Derived values are computed, never stored, so they cannot disagree.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from filamentctl.core import psychro

#: The measured and derived values of a reading, in the order :meth:`Reading.fields` gives them
#: (``pressure_hpa`` last, and only when the sensor measures it): the columns of every export.
FIELDS = (
    "temperature_c",
    "temperature_f",
    "humidity",
    "dew_point_c",
    "absolute_humidity_g_m3",
    "pressure_hpa",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """What a sensor returns: raw values in °C, %RH and hPa (None when the sensor has none)."""

    temperature_c: float
    humidity: float
    pressure_hpa: float | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """An accepted sample: sampled at ``time_ns`` (UTC, ns since the epoch), numbered ``seq``."""

    time_ns: int
    seq: int
    temperature_c: float
    humidity: float
    pressure_hpa: float | None = None

    @property
    def temperature_f(self) -> float:
        return psychro.c_to_f(self.temperature_c)

    @property
    def dew_point_c(self) -> float:
        return psychro.dew_point_c(self.temperature_c, self.humidity)

    @property
    def absolute_humidity_g_m3(self) -> float:
        return psychro.absolute_humidity_g_m3(self.temperature_c, self.humidity)

    def fields(self) -> dict[str, float]:
        """The measured and derived values, as written to databases (pressure only when present).

        Values are rounded to 3 decimals (the sensors' resolution is far coarser).
        """
        t = self.temperature_c
        rh = self.humidity
        dew, absolute = psychro.derived(t, rh)
        out = {
            "temperature_c": round(t, 3),
            "temperature_f": round(t * 1.8 + 32.0, 3),
            "humidity": round(rh, 3),
            "dew_point_c": round(dew, 3),
            "absolute_humidity_g_m3": round(absolute, 3),
        }
        if self.pressure_hpa is not None:
            out["pressure_hpa"] = round(self.pressure_hpa, 3)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by the socket and ``--json`` output."""
        return {
            "time": iso_utc(self.time_ns),
            "time_ns": self.time_ns,
            "seq": self.seq,
            **self.fields(),
            "pressure_hpa": None if self.pressure_hpa is None else round(self.pressure_hpa, 3),
        }


# A reading as a plain tuple in the order of Reading's constructor: (time_ns, seq, temperature_c,
# humidity, pressure_hpa). The backlog drain moves these instead of Reading objects (building a
# frozen dataclass per row costs as much as encoding it); ``Reading(*row)`` turns one back.
ReadingRow = tuple[int, int, float, float, float | None]


def iso_utc(time_ns: int) -> str:
    """RFC 3339 UTC timestamp with microseconds, e.g. ``2026-11-23T18:40:37.123456Z``."""
    secs, ns = divmod(time_ns, 1_000_000_000)
    moment = _dt.datetime.fromtimestamp(secs, tz=_dt.UTC).replace(microsecond=ns // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
