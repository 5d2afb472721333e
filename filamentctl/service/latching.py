"""The heater's latched fault as the control loop keeps it: restored at start, stored as it
latches, logged loudly, announced, and forgotten only by an accepted ``heater reset``.

A latch (cutoff, runaway, over-temperature) is written to the state directory
(``store.latch``) in the same step that latches it, and read back before any relay is driven,
so no restart can undo it. Who cleared it is always logged, never rate-limited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from filamentctl.core.reading import iso_utc
from filamentctl.store.latch import Latch, LatchStore

log = logging.getLogger("filamentctl.control")

Announce = Callable[[dict[str, Any]], None]


class LatchKeeper:
    """The current latch (``latch``: None when nothing is latched)."""

    def __init__(
        self, store: LatchStore | None, wall: Callable[[], float], announce: Announce
    ) -> None:
        self._store = store
        self._wall = wall
        self._announce = announce
        self.latch: Latch | None = store.load() if store is not None else None

    def log_restored(self) -> None:
        """One ERROR line at start when a latch came back from the state directory."""
        if self.latch is not None:
            log.error(
                "heater LATCHED OFF since %s (kept across the restart): %s; check the box, "
                "then run 'filamentctl heater reset'",
                iso_utc(self.latch.since_ns),
                self.latch.cause,
            )

    def note(self, fault: str | None, temperature_c: float | None) -> None:
        """The controller's fault after a step: a new one is stored (before anything else can
        happen), logged at CRITICAL with its cause and announced, whether or not the relay
        changed. Nothing to do when nothing is latched or the latch is already known."""
        if fault is None or (self.latch is not None and self.latch.cause == fault):
            return
        latch = Latch(fault, temperature_c, int(self._wall() * 1e9))
        self.latch = latch
        stored = ""
        if self._store is not None:
            try:
                self._store.save(latch)
                stored = f"; stored in {self._store.path}"
            except OSError as exc:
                stored = f"; could NOT be stored ({exc}), so a restart would forget it"
        log.critical(
            "heater LATCHED OFF: %s%s; check the box, then run 'filamentctl heater reset'",
            fault,
            stored,
        )
        self._announce(
            {"kind": "heater_latched", "message": f"heater latched off: {fault}", **latch.to_dict()}
        )

    def forget(self, peer: object) -> str:
        """After an accepted reset: drop the latch and its stored copy; returns a warning for
        the reply ("" when all went well)."""
        cause = self.latch.cause if self.latch is not None else "?"
        self.latch = None
        log.warning("heater latch cleared by %s (it was: %s)", peer, cause)
        if self._store is None:
            return ""
        try:
            self._store.clear()
        except OSError as exc:
            log.error("could not remove the stored latch %s: %s", self._store.path, exc)
            return (
                f"the stored latch could not be removed ({exc}); the heater will be latched "
                "again after a restart"
            )
        return ""

    def since(self) -> str | None:
        """When the current latch latched (UTC, RFC 3339), None when nothing is latched."""
        return iso_utc(self.latch.since_ns) if self.latch is not None else None
