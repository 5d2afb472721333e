"""The event log's words: what a service event, or the reply to a request, says (pure).

The payloads come cleaned by :mod:`filamentctl.tui.payloads` but may still miss any key, so
every text has a fallback for a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from filamentctl import display

RELAYS = ("heater", "fan")


@dataclass(frozen=True)
class Note:
    """One event-log line. ``at`` is the clock time the service gave for it (None: now);
    ``status_changed`` says the status shows what happened, so it is worth fetching again."""

    text: str
    at: str | None = None
    status_changed: bool = False


def _sensor(d: dict[str, Any]) -> str:
    return f"sensor: {d.get('message', d.get('event', ''))}"


def _alert(d: dict[str, Any]) -> str:
    return f"ALERT: {d.get('message', '')}"


def _dropped(d: dict[str, Any]) -> str:
    return f"storage: {d.get('dropped', '?')} readings dropped (backlog full)"


def _rejected(d: dict[str, Any]) -> str:
    return (
        f"storage: {d.get('backend', '?')} rejected {d.get('count', '?')} readings"
        f" ({d.get('status', '?')}): {d.get('error', '')}"
    )


def _recovered(d: dict[str, Any]) -> str:
    return f"storage: delivery recovered after {d.get('failures', '?')} failures"


#: The events with words of their own (``relay`` and ``drying.*`` are handled apart).
_TEXTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "sensor": _sensor,
    "alert": _alert,
    "storage.dropped": _dropped,
    "storage.rejected": _rejected,
    "storage.recovered": _recovered,
}
#: Events whose consequences the status shows (an alert, delivery back to normal).
_CHANGE_STATUS = frozenset({"alert", "storage.recovered"})


def event_note(name: str, data: Any) -> Note:
    """The log line for subscription event ``name`` with payload ``data``."""
    d = data if isinstance(data, dict) else {}
    if name == "relay":
        relay = str(d.get("relay", "?"))
        word = "ON" if d.get("on") else "OFF"
        return Note(
            f"{relay} {word}: {d.get('reason', '')}",
            at=display.iso_clock(d.get("time")),
            status_changed=relay in RELAYS,
        )
    if name.startswith("drying."):
        return Note(str(d.get("message") or name), status_changed=True)
    text = _TEXTS.get(name)
    if text is None:
        return Note(f"{name}: {d.get('message', '') if d else data}")
    return Note(text(d), status_changed=name in _CHANGE_STATUS)


def flush_note(result: Any, error: str | None) -> str:
    """The log line for the end of a ``flush`` request."""
    if error:
        return f"flush failed: {error}"
    res = result if isinstance(result, dict) else {}
    return f"flush: {res.get('delivered', 0)} delivered, {res.get('remaining', 0)} left" + (
        f" ({res.get('error')})" if res.get("error") else ""
    )


def relay_reply_note(relay: str, verb: str, state: dict[str, Any]) -> str:
    """The log line for the reply to ``heater.set``/``fan.reset``/…: the relay's new state."""
    what = "reset" if verb == "reset" else f"mode {state.get('override') or 'auto'}"
    return f"{relay} {what}: {'ON' if state.get('on') else 'OFF'}, {state.get('reason', '')}"
