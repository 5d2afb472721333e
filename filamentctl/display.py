"""Text for people: numbers, ages, clock times, thresholds (pure; shared by the CLI and the TUI).

Every function accepts ``None`` (a value the service did not send) and returns "—" for it, so a
half-filled ``status`` never breaks the screen.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

DASH = "—"


def num(value: Any, digits: int = 1, unit: str = "") -> str:
    """``21.3 °C``-style text; "—" for None, NaN or a non-number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH
    if isinstance(value, float) and not math.isfinite(value):
        return DASH
    return f"{value:.{digits}f}{unit}"


def age(seconds: Any) -> str:
    """``0.4 s``, ``12 s``, ``5 min``, ``2.5 h``, ``3.0 d``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return DASH
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def clock_time(epoch_s: float) -> str:
    """Local ``HH:MM:SS`` of a Unix time."""
    return time.strftime("%H:%M:%S", time.localtime(epoch_s))


def iso_clock(text: Any) -> str:
    """Local ``HH:MM:SS`` of the service's ISO UTC time (``2026-11-23T18:40:37.1Z``)."""
    if not isinstance(text, str):
        return DASH
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return clock_time(moment.timestamp())


def iso_local(text: Any) -> str:
    """Local ``YYYY-MM-DD HH:MM`` of the service's ISO UTC time (a date: latches last days)."""
    if not isinstance(text, str):
        return DASH
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment.timestamp()))


def latch(relay: Any) -> str | None:
    """``latched since 2026-11-30 14:05, cause: 61.2 °C ≥ cutoff 60.0 °C`` for a relay's status
    section, or None when nothing is latched."""
    if not isinstance(relay, dict) or not relay.get("latched"):
        return None
    since = relay.get("latched_since")
    when = f" since {iso_local(since)}" if since else ""
    return f"latched{when}, cause: {relay['latched']}"


def range_label(seconds: float) -> str:
    """``1 h``, ``6 h``, ``30 min``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min"


def thresholds(relay: str, values: Any) -> str:
    """The switching band in one line: heater by temperature, fan by humidity."""
    th = values if isinstance(values, dict) else {}
    if relay == "heater":
        text = f"on < {num(th.get('min_temp_c'), 1)}, off > {num(th.get('max_temp_c'), 1)}"
        if th.get("cutoff_temp_c") is not None:
            text += f", cutoff {num(th.get('cutoff_temp_c'), 0)}"
        return text + " °C"
    return (
        f"on > {num(th.get('max_humidity'), 0, ' %')}, off < {num(th.get('min_humidity'), 0, ' %')}"
    )


def downsample(values: list[float], points: int) -> list[float]:
    """At most ``points`` values: means of equal runs, so a long range stays cheap to draw."""
    if points <= 0 or len(values) <= points:
        return list(values)
    out: list[float] = []
    n = len(values)
    for i in range(points):
        chunk = values[i * n // points : (i + 1) * n // points]
        if chunk:
            out.append(sum(chunk) / len(chunk))
    return out


def plural(count: int, word: str) -> str:
    """``1 reading``, ``2 readings``: the count and the word, in the plural unless it is one."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
