"""Messages the dashboard's socket workers post to the app (messages up).

Each is named for what happened (past tense). They carry the service's own JSON shapes
(docs/protocol.md) unchanged, so widgets read the same keys ``status --json`` prints.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class StatusReceived(Message):
    """A whole ``status`` document: the first event of a subscription, or a periodic refresh."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__()
        self.status = status


class ServiceDisconnected(Message):
    """The connection failed or ended; the link retries after ``retry_in_s``."""

    def __init__(self, reason: str, retry_in_s: float, attempt: int) -> None:
        super().__init__()
        self.reason = reason
        self.retry_in_s = retry_in_s
        self.attempt = attempt


class ReadingReceived(Message):
    """A new reading (``reading`` event): the ``status`` reading shape without ``age_s``."""

    def __init__(self, reading: dict[str, Any]) -> None:
        super().__init__()
        self.reading = reading


class ServiceEventReceived(Message):
    """Any other subscription event: ``relay``, ``sensor``, ``alert``, ``dropped``, …"""

    def __init__(self, name: str, data: Any) -> None:
        super().__init__()
        self.name = name
        self.data = data


class HistoryLoaded(Message):
    """Readings of the last ``range_s`` seconds from the ``history`` op, oldest first."""

    def __init__(self, range_s: float, readings: list[dict[str, Any]]) -> None:
        super().__init__()
        self.range_s = range_s
        self.readings = readings


class CommandFinished(Message):
    """A request the user made (``heater.set``, ``flush``, …) got its reply or failed."""

    def __init__(self, op: str, result: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.op = op
        self.result = result
        self.error = error


class FlushProgressed(Message):
    """One ``flush.progress`` event."""

    def __init__(self, delivered: int, total: int) -> None:
        super().__init__()
        self.delivered = delivered
        self.total = total
