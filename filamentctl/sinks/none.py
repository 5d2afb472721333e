"""The "none" backend: readings stay in the local history only.

The delivery engine does not call ``write`` for this backend; if something does, it acknowledges
so nothing piles up in a backlog that no server will ever drain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from filamentctl.core.outcome import ACKED, WriteResult
from filamentctl.core.reading import Reading


class NoneSink:
    """Accepts every batch and stores it nowhere."""

    name = "none"

    def open(self) -> None:
        """Nothing to prepare."""

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        return ACKED

    def describe(self) -> str:
        return "none (local history only)"

    def close(self) -> None:
        """Nothing to release."""


def create(settings: Mapping[str, Any]) -> NoneSink:
    """Build the "none" sink; it reads no settings and never fails."""
    return NoneSink()
