"""The "desiccant spent" alarm: relative humidity above a level for a duration, once.

Pure: readings and their times come in as arguments (``now`` in seconds on any clock that does
not jump, normally the reading's own timestamp).

Rules, per reading:

- off while ``above_rh`` is 0;
- the humidity must stay above ``above_rh`` for ``for_s`` without a break: a reading at or below
  the level restarts the count;
- the alarm fires once (``raised``), then stays quiet while the box is wet;
- it re-arms (``cleared``) only when the humidity falls ``HYSTERESIS_RH`` below the level, so
  readings wobbling around the level do not fire it again and again;
- ``alarmed`` may be restored at start (the service stores it), so a restart while the box is
  still wet does not fire it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

HYSTERESIS_RH = 2.0  # %RH below the level that re-arms a fired alarm


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """What one reading changed: ``raised`` (notify) or ``cleared`` (re-armed)."""

    kind: Literal["raised", "cleared"]
    humidity: float
    above_rh: float
    for_s: float
    since: float | None  # when the humidity went above the level (raised only)
    at: float  # the reading that caused it


class HumidityAlarm:
    """One alarm rule; feed it every accepted reading with :meth:`observe`."""

    def __init__(self, above_rh: float, for_s: float, *, alarmed: bool = False) -> None:
        self.above_rh = float(above_rh)
        self.for_s = float(for_s)
        self.alarmed = alarmed
        self.above_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self.above_rh > 0

    def reconfigure(self, above_rh: float, for_s: float) -> None:
        """New level or duration; a running count restarts (it was measured against the old
        level), a fired alarm stays fired until the humidity falls below the new level."""
        if (float(above_rh), float(for_s)) != (self.above_rh, self.for_s):
            self.above_since = None
        self.above_rh, self.for_s = float(above_rh), float(for_s)

    def observe(self, humidity: float, now: float) -> AlarmEvent | None:
        """The reading ``humidity`` (%RH) taken at ``now``; returns an event or None."""
        if not self.enabled or not math.isfinite(humidity):
            return None
        if humidity <= self.above_rh:
            self.above_since = None
            if self.alarmed and humidity < self.above_rh - HYSTERESIS_RH:
                self.alarmed = False
                return AlarmEvent("cleared", humidity, self.above_rh, self.for_s, None, now)
            return None
        if self.alarmed:
            return None
        if self.above_since is None or now < self.above_since:  # a clock step back restarts
            self.above_since = now
        if now - self.above_since >= self.for_s:
            self.alarmed = True
            return AlarmEvent("raised", humidity, self.above_rh, self.for_s, self.above_since, now)
        return None

    def state(self) -> str:
        """``off``, ``ok``, ``above`` (counting) or ``alarmed``."""
        if not self.enabled:
            return "off"
        if self.alarmed:
            return "alarmed"
        return "above" if self.above_since is not None else "ok"

    def snapshot(self, now: float) -> dict[str, Any]:
        """For ``status``: the rule and where it stands (``above_for_s`` while counting)."""
        return {
            "state": self.state(),
            "above": self.above_rh,
            "for_s": self.for_s,
            "above_for_s": (
                None if self.above_since is None else round(max(0.0, now - self.above_since), 1)
            ),
        }
