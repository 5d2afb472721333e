"""Is the box healthy? A judgement of one ``status`` document, for ``status --check`` and monitors.

Unhealthy means someone should look: no reading yet or a stale one, a sensor in FAULT, a heater or
fan in a safety fault or latched, a delivery alert, or local history that cannot be written. A
DEGRADED sensor (recent errors, but readings arrive) is still healthy. Pure: the status document
in, one short text per problem out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from filamentctl import display

RELAYS = ("heater", "fan")


def problems(status: Mapping[str, Any]) -> list[str]:
    """Every active problem in ``status`` (the ``status`` op's document), most basic first.

    Never raises: missing or odd sections are skipped, so a partial document yields what it can.
    """
    out: list[str] = []
    reading = status.get("reading")
    if not isinstance(reading, Mapping) or not reading:
        out.append("no reading yet")
    else:
        age = _number(reading.get("age_s"))
        limit = _stale_after(status)
        if age is not None and limit is not None and age > limit:
            out.append(f"reading stale ({display.age(age)} old, limit {display.age(limit)})")
    sensor = _section(status, "sensor")
    if sensor.get("health") == "FAULT":
        error = sensor.get("last_error")
        out.append("sensor FAULT" + (f": {error}" if error else ""))
    for name in RELAYS:
        relay = _section(status, name)
        if relay.get("latched"):  # even on a disabled relay: a latch waits for a person
            out.append(
                f"{name} latched: {relay['latched']} (clear with 'filamentctl {name} reset')"
            )
        elif relay.get("enabled") is False:
            continue
        elif relay.get("mode") == "fault":
            out.append(f"{name} in safety fault: {relay.get('reason') or 'no reason given'}")
    storage = _section(status, "storage")
    alert = storage.get("alert")
    if alert:
        if isinstance(alert, Mapping):
            out.append(f"delivery alert ({alert.get('kind', '?')}): {alert.get('message', '')}")
        else:
            out.append(f"delivery alert: {alert}")
    if storage.get("history_error"):
        out.append(f"local history failing: {storage['history_error']}")
    return out


def _section(status: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = status.get(name)
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _stale_after(status: Mapping[str, Any]) -> float | None:
    """The service's ``sensor.stale_after``, which it reports with each relay's thresholds."""
    for name in RELAYS:
        thresholds = _section(status, name).get("thresholds")
        if isinstance(thresholds, Mapping):
            value = _number(thresholds.get("stale_after_s"))
            if value is not None:
                return value
    return None
