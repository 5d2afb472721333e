"""Notification rules: which events notify, quiet hours, and the per-kind rate limit.

Pure: no threads, sockets, files or clocks; time comes in as arguments (``now`` in Unix
seconds, so the rate limit survives a restart when the service stores what it returns, and the
local minute of the day for quiet hours).

- ``notify.urls``: Apprise URLs separated by commas or newlines (:func:`split_urls`); the cheap
  shape check (:func:`urls_shape_problem`) runs on every load, Apprise's own parser
  (:func:`urls_apprise_problem`) when a person enters a value or asks for validation.
- ``notify.events``: the event kinds that notify (:data:`EVENT_KINDS`).
- ``notify.quiet_hours``: ``HH:MM-HH:MM`` local time (may wrap midnight); safety events are never
  quiet.
- ``notify.min_interval``: per event kind, at most one message per interval; what comes in
  between is held and sent as one summary when the interval is over (:class:`NotifyGate`).

Errors: the parsers raise ValueError with a one-line message that never repeats a URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: Every event kind that can notify, in the order the docs list them.
EVENT_KINDS = (
    "heater_latched",
    "sensor_fault",
    "delivery_alert",
    "drying_done",
    "humidity_alarm",
)
DEFAULT_EVENTS = ",".join(EVENT_KINDS)
#: Never held back by quiet hours or the rate limit: each one needs a person (``heater reset``).
SAFETY_KINDS = frozenset({"heater_latched"})
#: The kind of ``filamentctl notify test`` messages (never rate-limited; not an event kind).
TEST_KIND = "test"
MAX_URLS = 20

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"
# A comma separates two URLs only when a new scheme follows: commas inside a URL's query
# (e.g. several e-mail recipients) stay with their URL.
_SEPARATOR = re.compile(rf"\s*(?:\n|\r|,(?=\s*{_SCHEME}))\s*")


def split_urls(text: str) -> list[str]:
    """The URLs in a ``notify.urls`` value: split on newlines, and on commas before a scheme."""
    return [part.strip() for part in _SEPARATOR.split(text or "") if part.strip()]


def urls_shape_problem(text: str) -> str | None:
    """None when every entry looks like ``scheme://...``, else what is allowed (no URL in it)."""
    urls = split_urls(text)
    if len(urls) > MAX_URLS:
        return f"at most {MAX_URLS} Apprise URLs"
    for n, url in enumerate(urls, 1):
        if not re.match(_SCHEME + r"\S", url) or re.search(r"\s", url):
            return (
                "Apprise URLs such as ntfy://ntfy.sh/TOPIC, separated by commas or newlines "
                f"(entry {n} is not scheme://...)"
            )
    return None


def scheme_of(url: str) -> str:
    """``ntfy`` for ``ntfy://...``; "?" when there is no scheme (never more of the URL)."""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    return m.group(1).lower() if m else "?"


def urls_apprise_problem(text: str) -> str | None:
    """None when Apprise's own parser accepts every URL, else which entry it refused and why.

    Imports Apprise (and loads its plugin list, ~0.5 s on a laptop): called when a person sets
    the value or runs ``config validate``, not on every load. Apprise's log lines, which repeat
    the URL, are kept off the console.
    """
    shape = urls_shape_problem(text)
    if shape is not None:
        return shape
    urls = split_urls(text)
    if not urls:
        return None
    try:
        import apprise  # heavy: only when there are URLs to check
        from apprise.manager_plugins import NotificationManager
    except ImportError as exc:
        return f"Apprise URLs, but Apprise cannot be imported ({exc}); reinstall filamentctl"

    quiet_apprise_logger()
    for n, url in enumerate(urls, 1):
        if apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None:
            continue
        scheme = scheme_of(url)
        if scheme not in NotificationManager():  # type: ignore[no-untyped-call]
            return (
                f"Apprise URLs of a service Apprise supports (entry {n}: unknown scheme "
                f"'{scheme}://'; see https://github.com/caronc/apprise/wiki)"
            )
        return (
            f"Apprise URLs that Apprise can parse (entry {n}, a '{scheme}://' URL, is "
            "incomplete or malformed; see its page on https://github.com/caronc/apprise/wiki)"
        )
    return None


def quiet_apprise_logger() -> None:
    """Keep Apprise's log lines (they repeat URLs, tokens included) out of every log handler.

    Apprise logs to the ``apprise`` logger, which has no handler of ours: its warnings would go
    to Python's last-resort handler, i.e. stderr. A NullHandler with no propagation stops that;
    the service adds its own handler to read failure reasons (and removes the URLs from them).
    """
    import logging

    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def parse_events(text: str) -> tuple[str, ...]:
    """``"heater_latched, sensor_fault"`` → the kinds, in :data:`EVENT_KINDS` order.

    ``all`` stands for every kind; empty text means none. Raises ValueError naming an unknown
    kind.
    """
    names = [n.strip().lower() for n in re.split(r"[,\s]+", text or "") if n.strip()]
    if "all" in names:
        return EVENT_KINDS
    unknown = [n for n in names if n not in EVENT_KINDS]
    if unknown:
        raise ValueError(f"unknown event kind '{unknown[0]}'")
    return tuple(k for k in EVENT_KINDS if k in names)


def events_problem(text: str) -> str | None:
    """Schema validator for ``notify.events``."""
    try:
        parse_events(text)
    except ValueError as exc:
        return f"a comma-separated list of {', '.join(EVENT_KINDS)} (or all); {exc}"
    return None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """``start``..``end`` in minutes of the local day; wraps midnight when start > end."""

    start: int
    end: int

    def contains(self, minute_of_day: int) -> bool:
        m = minute_of_day % 1440
        if self.start <= self.end:
            return self.start <= m < self.end
        return m >= self.start or m < self.end

    def minutes_left(self, minute_of_day: int) -> int:
        """Minutes until quiet hours end (0 when not quiet now)."""
        if not self.contains(minute_of_day):
            return 0
        return (self.end - minute_of_day % 1440) % 1440

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )


_HHMM = r"([01]?\d|2[0-3]):([0-5]\d)"


def parse_quiet_hours(text: str) -> QuietHours | None:
    """``"22:00-07:00"`` → QuietHours; empty → None. ValueError for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    m = re.fullmatch(rf"{_HHMM}\s*-\s*{_HHMM}", text)
    if m is None:
        raise ValueError("use HH:MM-HH:MM in local time, e.g. 22:00-07:00")
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = int(m.group(3)) * 60 + int(m.group(4))
    if start == end:
        raise ValueError("start and end are the same time")
    return QuietHours(start, end)


def quiet_hours_problem(text: str) -> str | None:
    """Schema validator for ``notify.quiet_hours``."""
    try:
        parse_quiet_hours(text)
    except ValueError as exc:
        return f"empty (off) or HH:MM-HH:MM local time, e.g. 22:00-07:00 ({exc})"
    return None


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: its kind, a short title, the body, and how urgent (Apprise's type:
    info, success, warning or failure). ``event_time`` is when it happened (Unix seconds)."""

    kind: str
    title: str
    body: str
    severity: str = "warning"
    event_time: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def safety(self) -> bool:
        return self.kind in SAFETY_KINDS or self.kind == TEST_KIND


@dataclass(slots=True)
class _Held:
    count: int
    first_at: float
    latest: Message
    reason: str  # "quiet hours" or "notify.min_interval"


class NotifyGate:
    """Decides, per event kind, whether a message goes out now or is held for a summary.

    A kind sends at most one message per ``min_interval_s`` (so a flapping condition sends one
    message, then one summary per interval) and nothing during ``quiet`` hours; safety kinds
    always go out at once. ``last_sent`` (kind → Unix seconds) may come from a previous run so
    that a restart loop does not repeat messages.
    """

    def __init__(
        self,
        min_interval_s: float,
        quiet: QuietHours | None = None,
        last_sent: Mapping[str, float] | None = None,
    ) -> None:
        self.min_interval_s = max(0.0, float(min_interval_s))
        self.quiet = quiet
        self.last_sent: dict[str, float] = dict(last_sent or {})
        self._held: dict[str, _Held] = {}

    def reconfigure(self, min_interval_s: float, quiet: QuietHours | None) -> None:
        self.min_interval_s = max(0.0, float(min_interval_s))
        self.quiet = quiet

    def _too_soon(self, kind: str, now: float) -> bool:
        last = self.last_sent.get(kind)
        # A clock that went backwards (now < last) does not hold messages back for ever.
        return last is not None and 0.0 <= now - last < self.min_interval_s

    def _quiet(self, minute_of_day: int) -> bool:
        return self.quiet is not None and self.quiet.contains(minute_of_day)

    def offer(self, message: Message, now: float, minute_of_day: int) -> bool:
        """True: send ``message`` now (and it counts as sent). False: it is held."""
        if message.safety:
            if message.kind != TEST_KIND:
                self.last_sent[message.kind] = now
            return True
        reason = None
        if self._quiet(minute_of_day):
            reason = "quiet hours"
        elif message.kind in self._held or self._too_soon(message.kind, now):
            reason = "notify.min_interval"
        if reason is None:
            self.last_sent[message.kind] = now
            return True
        held = self._held.get(message.kind)
        if held is None:
            self._held[message.kind] = _Held(1, now, message, reason)
        else:
            held.count += 1
            held.latest = message
            if reason == "quiet hours":
                held.reason = reason
        return False

    def due(
        self, now: float, minute_of_day: int, fmt_time: Callable[[float], str]
    ) -> list[Message]:
        """The summaries whose time has come (interval over, not quiet); each kind's held
        messages go out as one (a single held message goes out as it was, with a note)."""
        if self._quiet(minute_of_day):
            return []
        out: list[Message] = []
        for kind in [k for k in self._held if not self._too_soon(k, now)]:
            held = self._held.pop(kind)
            self.last_sent[kind] = now
            out.append(_summary(held, fmt_time))
        return out

    def held(self) -> dict[str, int]:
        """How many messages each kind holds right now."""
        return {kind: h.count for kind, h in self._held.items()}


def _summary(held: _Held, fmt_time: Callable[[float], str]) -> Message:
    latest = held.latest
    since = fmt_time(held.first_at)
    if held.count == 1:
        note = f"\n\n(Held back since {since} by {held.reason}.)"
        return replace(latest, body=latest.body + note)
    title = f"{latest.title} (and {held.count - 1} more since {since})"
    body = (
        f"{held.count} {latest.kind.replace('_', ' ')} notifications were held back since "
        f"{since} by {held.reason}; this is the latest:\n\n{latest.body}"
    )
    return replace(latest, title=title, body=body, details={**latest.details, "held": held.count})


def enabled_kinds(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The kinds ``notify.events`` enables (an invalid value: every kind, the safe side)."""
    try:
        return parse_events(str(settings.get("notify.events", DEFAULT_EVENTS)))
    except ValueError:
        return EVENT_KINDS
