"""Messages the dashboard's socket workers post (messages up).

Each is named for what happened (past tense). They carry the service's own JSON shapes
(docs/protocol.md), cleaned by :mod:`filamentctl.tui.payloads`, so widgets read the same keys
``status --json`` prints. The link's messages go to the dashboard screen, which shows them; the
replies to the user's requests go to the app, which sent them.

A status or a reading can arrive faster than a slow terminal draws (a Pi Zero over SSH): when
several wait in the screen's queue, ``can_replace`` lets Textual handle only the newest status,
and one reading message that carries every waiting reading, so the chart loses none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from filamentctl.tui.payloads import clean_section, clean_status


@dataclass
class StatusReceived(Message, bubble=False):
    """A whole ``status`` document: the first event of a subscription, or a periodic refresh."""

    status: dict[str, Any]

    def can_replace(self, message: Message) -> bool:
        # A newer status says everything this one does.
        return isinstance(message, StatusReceived)


@dataclass
class ReadingReceived(Message, bubble=False):
    """New readings (``reading`` events, oldest first): the ``status`` reading shape without
    ``age_s``. Usually one; more when a burst was coalesced."""

    readings: list[dict[str, Any]] = field(default_factory=list)

    def can_replace(self, message: Message) -> bool:
        """Whether ``message`` (the next one waiting) supersedes this one: it does when it holds
        readings too, and then takes this one's readings in front of its own.

        Textual asks only when it is about to drop this message for ``message``, so each
        reading ends up in exactly one message that is handled.
        """
        if not isinstance(message, ReadingReceived):
            return False
        message.readings[:0] = self.readings
        return True


@dataclass
class ServiceDisconnected(Message, bubble=False):
    """The connection failed or ended; the link retries after ``retry_in_s``."""

    reason: str
    retry_in_s: float
    attempt: int


@dataclass
class ServiceEventReceived(Message, bubble=False):
    """Any other subscription event: ``relay``, ``sensor``, ``alert``, ``storage.dropped``, …"""

    name: str
    data: Any


@dataclass
class HistoryLoaded(Message, bubble=False):
    """Readings of the last ``range_s`` seconds from the ``history`` op, oldest first."""

    range_s: float
    readings: list[dict[str, Any]]


@dataclass
class CommandFinished(Message, bubble=False):
    """A request the user made (``heater.set``, ``flush``, …) got its reply or failed."""

    op: str
    result: Any = None
    error: str | None = None


@dataclass
class FlushProgressed(Message, bubble=False):
    """One ``flush.progress`` event."""

    delivered: int
    total: int

    def can_replace(self, message: Message) -> bool:
        # The dialog shows the latest count only.
        return isinstance(message, FlushProgressed)


def event_message(name: str, data: Any) -> StatusReceived | ReadingReceived | ServiceEventReceived:
    """The message for one subscription event, its payload cleaned for showing."""
    if name == "status" and isinstance(data, dict):
        return StatusReceived(clean_status(data))
    if name == "reading" and isinstance(data, dict):
        return ReadingReceived([clean_section(data)])
    if name == "relay" and isinstance(data, dict):
        return ServiceEventReceived(name, clean_section(data))
    return ServiceEventReceived(name, data)
