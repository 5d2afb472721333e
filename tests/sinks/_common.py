"""What every sink test builds the same way: a run of readings and one backend's settings.

Each backend's test keeps its own timestamps (a server that stores milliseconds gets whole
milliseconds back, one that stores nanoseconds gets odd nanoseconds) and its own keys; the shape
of the readings and of the settings is here once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from filamentctl.core.reading import Reading
from tests.servers import MS


def minute_ago_whole_ms() -> int:
    """About a minute ago in ns since the epoch, on a whole millisecond (what a server that
    stores milliseconds gives back exactly)."""
    return (time.time_ns() // MS - 60_000) * MS


def readings(
    n: int,
    *,
    start_ns: int,
    step_ns: int = 1000 * MS,
    first_seq: int = 0,
    per_degree: int = 10,
    per_percent: int = 1,
    pressure_rises: bool = True,
    pressure: bool = True,
) -> list[Reading]:
    """``n`` readings ``step_ns`` apart from ``start_ns``, numbered from ``first_seq``: from 20 °C
    up 1 °C every ``per_degree`` readings, from 40 %RH up 1 % every ``per_percent``, at 1013 hPa
    (rising 1 hPa a reading with ``pressure_rises``; no pressure sensor: ``pressure=False``)."""
    return [
        Reading(
            start_ns + i * step_ns,
            first_seq + i,
            20.0 + i / per_degree,
            40.0 + i / per_percent,
            (1013.0 + i if pressure_rises else 1013.0) if pressure else None,
        )
        for i in range(n)
    ]


def sink_settings(
    backend: str,
    keys: Mapping[str, Any],
    *,
    tags: Mapping[str, str],
    timeout: float,
    **extra: Any,
) -> dict[str, Any]:
    """The settings ``create_sink`` gets for ``backend``: its ``database.<backend>.*`` ``keys``,
    the measurement ``environment``, ``tags``, ``timeout``; ``extra`` overrides any of them."""
    return {
        "database.type": backend,
        **{f"database.{backend}.{name}": value for name, value in keys.items()},
        "data.measurement": "environment",
        "data.tags": dict(tags),
        "database.timeout": timeout,
        **extra,
    }
