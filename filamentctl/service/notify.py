"""Notifications through Apprise: the service tells the user's phone what needs them.

The :class:`Notifier` subscribes to the service's event bus like any in-process subscriber (a
heater latch or delivery alert on ``alert``, sensor fault episodes on ``sensor``, readings for
the humidity alarm, ``storage.recovered``, ``drying.ended``), turns the events ``notify.events``
selects into messages (``core.notify_messages``), lets ``core.notify.NotifyGate`` hold back what
``notify.min_interval`` or ``notify.quiet_hours`` say must wait, and sends the rest.

Threads: ``notify`` reads the bus and applies the rules (never any network I/O, so it keeps up
with readings); ``notify-send`` sends from a bounded outbox, one message at a time, each URL with
Apprise's own timeouts, retrying failed URLs with backoff (``core.backoff``). Neither thread is
on the sampling or control path, and publishing on the bus never blocks: a slow, hanging or dead
notification service delays nothing but other notifications. Failures show in ``status``
(``notifications``), are logged once per failure, and retried until delivered or
:data:`MAX_AGE_S` old.

Secrets: the URLs (``notify.urls``, a secret, or a ``vault:`` reference resolved when sending)
are never logged, shown or stored elsewhere: targets are named by number and service
("1 (ntfy)"), and failure reasons from Apprise have every part of the URL removed. Apprise's own
log lines (which repeat URLs) are kept away from every log handler.

Apprise (and its ~190 plugins) is imported only when a message is sent: a service without
``notify.urls`` never imports this module.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from filamentctl import __version__, protocol
from filamentctl.core import notify_messages as texts
from filamentctl.core.backoff import retry_delay
from filamentctl.core.humidity_alarm import HumidityAlarm
from filamentctl.core.notify import (
    Message,
    NotifyGate,
    QuietHours,
    enabled_kinds,
    parse_quiet_hours,
    quiet_apprise_logger,
    split_urls,
)
from filamentctl.core.notify_messages import Origin
from filamentctl.core.reading import iso_utc
from filamentctl.core.schema import number
from filamentctl.protocol import ProtocolError
from filamentctl.service.api import ServiceAPI
from filamentctl.service.bus import EventBus
from filamentctl.store.notify_state import NotifyState, NotifyStateStore

log = logging.getLogger("filamentctl.notify")

#: The bus topics the notifier listens to (``drying`` may not exist yet in every build).
TOPICS = frozenset({"alert", "sensor", "reading", "storage", "drying"})
OUTBOX_LIMIT = 50  # messages waiting to be sent; beyond it the oldest non-safety one is dropped
RETRY_BASE_S = 5.0  # first retry of a failed URL; doubles per failure ...
RETRY_MAX_S = 600.0  # ... up to ten minutes
MAX_AGE_S = 24 * 3600.0  # a message still undelivered after a day is dropped (and logged)
RECENT = 10  # how many recent notifications ``status`` lists
STOP_WAIT_S = 2.0  # how long stop() waits for a send in progress
IDLE_WAIT_S = 1.0  # the rules thread re-checks held summaries at least this often


# -- Apprise ------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    """Collects Apprise's warnings on the current thread: they carry the failure reason."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None:
            lines.append(record.getMessage())


_capture: _Capture | None = None
_capture_lock = threading.Lock()


def _apprise_capture() -> _Capture:
    global _capture
    with _capture_lock:
        if _capture is None:
            quiet_apprise_logger()
            _capture = _Capture()
            logging.getLogger("apprise").addHandler(_capture)
        return _capture


def sanitise(text: str, url: str) -> str:
    """``text`` with the URL and each part of it (host, user, password, path, query values)
    replaced by "…", so no token can leak through an error message."""
    parts = {url}
    try:
        split = urllib.parse.urlsplit(url)
        parts.update({split.netloc, split.hostname or "", split.username or ""})
        parts.update({split.password or "", split.path, split.query})
        parts.update(p for p in re.split(r"[/?&=#@:,]", url.split("://", 1)[-1]) if p)
        parts.update(urllib.parse.unquote(p) for p in list(parts))
    except ValueError:
        pass
    for part in sorted((p for p in parts if len(p) >= 3), key=len, reverse=True):
        text = text.replace(part, "…")
    return text


class Targets:
    """The notification URLs, each sent to separately (a result per URL).

    Each URL's Apprise plugin is built on first use; sending uses Apprise's own timeouts
    (connect and read, 4 s each by default; ``?cto=`` and ``?rto=`` in a URL change them).
    """

    def __init__(self, urls: list[str]) -> None:
        self.urls = list(urls)
        self._plugins: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.urls)

    def _plugin(self, index: int) -> Any:
        plugin = self._plugins.get(index)
        if plugin is None:
            import apprise  # heavy: only when a notification is really sent

            _apprise_capture()
            plugin = apprise.Apprise.instantiate(self.urls[index], suppress_exceptions=True)
            if plugin is not None:
                self._plugins[index] = plugin
        return plugin

    def describe(self, index: int) -> str:
        """``2 (ntfy)``: the target's number and service, never its URL."""
        from filamentctl.core.notify import scheme_of

        plugin = self._plugins.get(index)
        name = getattr(plugin, "service_name", None) or scheme_of(self.urls[index])
        return f"{index + 1} ({name})"

    def send(self, index: int, message: Message) -> str | None:
        """Send to one target; None when it took the message, else why not (no URL in it)."""
        url = self.urls[index]
        capture = _apprise_capture()
        capture.local.lines = []
        try:
            plugin = self._plugin(index)
            if plugin is None:
                return "Apprise cannot parse this URL (check it with `filamentctl config validate`)"
            import apprise

            kinds = {
                "info": apprise.NotifyType.INFO,
                "success": apprise.NotifyType.SUCCESS,
                "warning": apprise.NotifyType.WARNING,
                "failure": apprise.NotifyType.FAILURE,
            }
            ok = plugin.notify(
                body=message.body,
                title=message.title,
                notify_type=kinds.get(message.severity, apprise.NotifyType.INFO),
            )
            if ok:
                return None
            reason = "; ".join(capture.local.lines[-2:]) or "the service did not accept it"
            return sanitise(reason, url)[:300]
        except Exception as exc:  # a plugin bug is a failed send, never a dead thread
            return sanitise(f"{type(exc).__name__}: {exc}", url)[:300]
        finally:
            capture.local.lines = None


def resolve_urls(settings: Mapping[str, object]) -> list[str]:
    """The URLs of ``notify.urls``, a ``vault:`` reference read from Vault.

    Raises VaultError/ConfigError (the message names the reference, never a secret).
    """
    from filamentctl.store.vault import resolve_secret

    return split_urls(resolve_secret(str(settings.get("notify.urls") or "")))


def host_name() -> str:
    return socket.gethostname() or "localhost"


def send_test(
    settings: Mapping[str, object], box: str, via: str, wall: Callable[[], float] = time.time
) -> list[dict[str, Any]]:
    """Send a test message to every URL; one result per URL (``ok``, ``error``, no URL).

    Raises VaultError/ConfigError when ``notify.urls`` cannot be resolved. Takes up to Apprise's
    timeouts per URL.
    """
    targets = Targets(resolve_urls(settings))
    message = texts.test_message(Origin(box, host_name()), __version__, via, wall())
    results = []
    for index in range(len(targets)):
        error = targets.send(index, message)
        results.append(
            {
                "target": index + 1,
                "name": targets.describe(index),
                "ok": error is None,
                "error": error,
            }
        )
    return results


# -- the outbox ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Pending:
    """A message waiting to be sent: to which targets still (None: all), when next."""

    message: Message
    created: float  # clock()
    next_at: float
    seq: int
    targets: set[int] | None = None
    attempts: int = 0
    urls_key: str | None = None  # the URL set the pending targets refer to


class Outbox:
    """Bounded, retry-scheduling queue of messages (time comes in as ``now``)."""

    def __init__(self, limit: int = OUTBOX_LIMIT, rng: Callable[[], float] = random.random):
        self.limit = limit
        self.rng = rng
        self.items: list[Pending] = []
        self.dropped = 0
        self._seq = 0

    def __len__(self) -> int:
        return len(self.items)

    def put(self, message: Message, now: float) -> Message | None:
        """Queue ``message`` for now; returns a message dropped to make room, if any."""
        self._seq += 1
        self.items.append(Pending(message, now, now, self._seq))
        if len(self.items) <= self.limit:
            return None
        victims = [p for p in self.items if not p.message.safety] or self.items
        victim = min(victims, key=lambda p: p.seq)
        self.items.remove(victim)
        self.dropped += 1
        return victim.message

    def next_due(self) -> float | None:
        return min((p.next_at for p in self.items), default=None)

    def take_due(self, now: float) -> Pending | None:
        """The most overdue message (oldest first among equals), removed; None if none due."""
        due = [p for p in self.items if p.next_at <= now]
        if not due:
            return None
        item = min(due, key=lambda p: (p.next_at, p.seq))
        self.items.remove(item)
        return item

    def retry(self, item: Pending, failed: set[int] | None, now: float) -> float | None:
        """Put ``item`` back for the ``failed`` targets; returns the delay, or None when it is
        too old to try again (then it is dropped and counted)."""
        item.attempts += 1
        item.targets = failed
        if now - item.created >= MAX_AGE_S:
            self.dropped += 1
            return None
        delay = retry_delay(item.attempts, RETRY_BASE_S, RETRY_MAX_S, self.rng())
        item.next_at = now + delay
        self.items.append(item)
        return delay


# -- the notifier -------------------------------------------------------------------------------


class Notifier:
    """Sends notifications for one box; see the module docstring. ``start``/``stop`` own its
    two threads; ``reconfigure`` applies changed ``notify.*`` settings at once."""

    def __init__(
        self,
        settings: Mapping[str, object],
        bus: EventBus,
        origin: Origin,
        state_store: NotifyStateStore | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        localtime: Callable[[float], time.struct_time] = time.localtime,
    ) -> None:
        self._bus = bus
        self.origin = origin
        self._store = state_store
        self._clock = clock
        self._wall = wall
        self._localtime = localtime
        # Settings, rules, counters. Never held while sending; the small state file is written
        # under it (rarely: when a kind notifies or the desiccant alarm changes).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sub: Any = None
        state = state_store.load() if state_store is not None else NotifyState()
        self.settings = dict(settings)
        self._kinds = enabled_kinds(settings)
        self._gate = NotifyGate(
            number(settings, "notify.min_interval"), self._quiet(settings), state.last_sent
        )
        self._humidity = HumidityAlarm(
            number(settings, "notify.humidity_above"),
            number(settings, "notify.humidity_for"),
            alarmed=state.humidity_alarmed,
        )
        self._outbox = Outbox(rng=rng)
        self._targets: Targets | None = None
        self._targets_key: str | None = None
        self.sent = 0
        self.failed_attempts = 0
        self.last_sent: dict[str, Any] | None = None
        self.last_error: str | None = None
        self.last_error_time: str | None = None
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    @staticmethod
    def _quiet(settings: Mapping[str, object]) -> QuietHours | None:
        try:
            return parse_quiet_hours(str(settings.get("notify.quiet_hours") or ""))
        except ValueError:  # validated on set; a bad value here means "no quiet hours"
            return None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._sub = self._bus.subscribe(TOPICS)
        for name, target in (("notify", self._rules_loop), ("notify-send", self._send_loop)):
            t = threading.Thread(target=self._guarded(name, target), name=name, daemon=True)
            self._threads.append(t)
            t.start()
        log.info("notifications on: events %s", ", ".join(self._kinds) or "none")

    def _guarded(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:  # notifications failing must never take the service down
                log.exception("notifications: thread %s failed; notifications stopped", name)
                with self._lock:
                    self.last_error = f"internal error in {name}; see the log"

        return run

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Stop both threads; waits at most about ``timeout`` s (a send in progress may be cut)."""
        self._stop.set()
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
        with self._cond:
            self._cond.notify_all()
        deadline = self._clock() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - self._clock()))
        with self._lock:
            left = len(self._outbox)
        if left:
            log.warning("notifications: %d message(s) not sent (service stopping)", left)

    def reconfigure(self, settings: Mapping[str, object]) -> None:
        """Apply changed ``notify.*`` settings now (held messages and the alarm state stay)."""
        with self._cond:
            self.settings = dict(settings)
            self._kinds = enabled_kinds(settings)
            self._gate.reconfigure(number(settings, "notify.min_interval"), self._quiet(settings))
            self._humidity.reconfigure(
                number(settings, "notify.humidity_above"), number(settings, "notify.humidity_for")
            )
            self._targets = None  # rebuilt (and the URLs resolved again) at the next send
            self._cond.notify_all()

    # -- the rules thread -----------------------------------------------------------------------
    def _rules_loop(self) -> None:
        while not self._stop.is_set():
            item = self._sub.get(timeout=IDLE_WAIT_S)
            if item is not None:
                self.handle(item[0], item[1])
            self.flush_due()

    def _minute(self, now: float) -> int:
        t = self._localtime(now)
        return t.tm_hour * 60 + t.tm_min

    def _fmt_time(self, when: float) -> str:
        return time.strftime("%H:%M:%S", self._localtime(when))

    def handle(self, topic: str, data: Any) -> None:
        """One bus event: notify, hold, or ignore it (called by the rules thread)."""
        if not isinstance(data, Mapping):
            return
        now = self._wall()
        with self._lock:
            settings = self.settings
            kinds = self._kinds
            message = self._message_for(topic, data, settings, now)
        if message is None or message.kind not in kinds:
            return
        self.offer(message, now)

    def _message_for(
        self, topic: str, data: Mapping[str, Any], settings: Mapping[str, object], now: float
    ) -> Message | None:
        origin = self.origin
        if topic == "reading":
            return self._humidity_message(data, settings)
        if topic == "alert":
            if data.get("kind") == "heater_latched":
                return texts.heater_latched(data, settings, origin)
            if data.get("kind") in ("delivery", "auth"):
                return texts.delivery_alert(data, settings, origin, now)
            return None
        if topic == "sensor":
            return texts.sensor_event(data, settings, origin, now)
        if topic == "storage.recovered" and data.get("had_alert"):
            return texts.delivery_recovered(data, origin, now)
        if topic == "drying.ended":
            return texts.drying_ended(data, origin, now)
        return None

    def _humidity_message(
        self, data: Mapping[str, Any], settings: Mapping[str, object]
    ) -> Message | None:
        humidity, time_ns = data.get("humidity"), data.get("time_ns")
        if not isinstance(humidity, int | float) or not isinstance(time_ns, int):
            return None
        if "humidity_alarm" not in self._kinds:
            return None
        # The reading's own time: a queue delay on this thread cannot shorten the duration.
        event = self._humidity.observe(float(humidity), time_ns / 1e9)
        if event is None:
            return None
        self._save_state_locked()
        if event.kind == "cleared":
            log.info("humidity alarm re-armed: %.1f %%RH", event.humidity)
            return None
        log.warning(
            "humidity alarm: %.1f %%RH above %.1f %% for %.0f s",
            event.humidity,
            event.above_rh,
            event.for_s,
        )
        return texts.humidity_alarm(event, settings, self.origin, self._fmt_time)

    def offer(self, message: Message, now: float) -> None:
        """Send ``message`` now, or hold it (rate limit, quiet hours)."""
        with self._cond:
            if not self._gate.offer(message, now, self._minute(now)):
                self._remember(message, "held")
                log.debug("notification %s held back", message.kind)
                return
            self._save_state_locked()
            self._enqueue_locked(message)

    def flush_due(self) -> None:
        """Send the summaries of held messages whose time has come."""
        now = self._wall()
        with self._cond:
            due = self._gate.due(now, self._minute(now), self._fmt_time)
            if due:
                self._save_state_locked()
            for message in due:
                self._enqueue_locked(message)

    def _enqueue_locked(self, message: Message) -> None:
        dropped = self._outbox.put(message, self._clock())
        self._remember(message, "pending")
        if dropped is not None:
            self._mark(dropped, "dropped")
            log.error(
                "notifications: outbox full (%d), dropped the oldest: %s",
                OUTBOX_LIMIT,
                dropped.title,
            )
        self._cond.notify_all()

    def _save_state_locked(self) -> None:
        if self._store is None:
            return
        state = NotifyState(dict(self._gate.last_sent), self._humidity.alarmed)
        try:
            self._store.save(state)
        except OSError as exc:
            log.warning("notifications: cannot store the state in %s: %s", self._store.path, exc)

    # -- the sending thread ---------------------------------------------------------------------
    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                item = self._outbox.take_due(self._clock())
                if item is None:
                    due = self._outbox.next_due()
                    wait = IDLE_WAIT_S * 10 if due is None else due - self._clock()
                    self._cond.wait(min(max(wait, 0.01), IDLE_WAIT_S * 10))
                    continue
            self._deliver(item)

    def _current_targets(self) -> Targets:
        """The targets for the current settings; URLs resolved (Vault) when they changed."""
        with self._lock:
            settings = self.settings
            targets = self._targets
        if targets is not None:
            return targets
        urls = resolve_urls(settings)  # may wait on Vault: never under the lock
        with self._lock:
            key = "\n".join(urls)
            if self._targets_key != key or self._targets is None:
                self._targets = Targets(urls)
                self._targets_key = key
            return self._targets

    def _deliver(self, item: Pending) -> None:
        failed: dict[int, str] = {}
        try:
            targets = self._current_targets()
        except Exception as exc:  # Vault down, bad reference: retry later like a failed send
            targets = None
            failed = {-1: f"cannot read notify.urls: {str(exc).splitlines()[0][:200]}"}
        if targets is not None:
            key = "\n".join(targets.urls)
            if item.urls_key != key:  # the URLs changed since: send to all of the new ones
                item.targets, item.urls_key = None, key
            todo = sorted(item.targets if item.targets is not None else range(len(targets)))
            for index in todo:
                if self._stop.is_set():
                    failed[index] = "service stopping"
                    continue
                error = targets.send(index, item.message)
                if error is not None:
                    failed[index] = f"target {targets.describe(index)}: {error}"
        now = self._clock()
        with self._cond:
            if failed and self._stop.is_set():
                self._outbox.items.append(item)  # counted as not sent by stop()
                return
            if not failed:
                self.sent += 1
                if not any(p.attempts for p in self._outbox.items):
                    self.last_error = None  # every failure so far has been made good
                self.last_sent = {
                    "kind": item.message.kind,
                    "title": item.message.title,
                    "time": iso_utc(int(self._wall() * 1e9)),
                }
                self._mark(item.message, "sent")
                log.info("notification sent: %s", item.message.title)
                return
            self.failed_attempts += 1
            self.last_error = "; ".join(failed.values())
            self.last_error_time = iso_utc(int(self._wall() * 1e9))
            # Only the URLs that failed are tried again (None: the URLs could not be read).
            again = None if targets is None else set(failed)
            delay = self._outbox.retry(item, again, now)
            if delay is None:
                self._mark(item.message, "dropped")
                log.error(
                    "notification not sent, giving up: %s (%s)", item.message.title, self.last_error
                )
                return
            if item.attempts == 1 or item.message.safety:
                log.warning(
                    "notification not sent: %s (%s); retrying in %.0f s",
                    item.message.title,
                    self.last_error,
                    delay,
                )
            else:
                log.debug("notification still not sent (%d): %s", item.attempts, self.last_error)
            self._mark(item.message, "retrying")

    # -- status ---------------------------------------------------------------------------------
    def _remember(self, message: Message, state: str) -> None:
        entry: dict[str, Any] = {
            "kind": message.kind,
            "title": message.title,
            "time": iso_utc(int(self._wall() * 1e9)),
            "event_time": message.event_time,
            "state": state,
            "details": dict(message.details),
        }
        entry["_message"] = message  # identifies it for _mark (and keeps its id unique)
        self._recent.append(entry)

    def _mark(self, message: Message, state: str) -> None:
        for entry in reversed(self._recent):
            if entry.get("_message") is message:
                entry["state"] = state
                return

    def status(self) -> dict[str, Any]:
        """The ``notifications`` section of ``status`` (no URL, no token)."""
        now = self._clock()
        with self._lock:
            due = self._outbox.next_due()
            n_targets = len(self._targets) if self._targets is not None else None
            return {
                "enabled": True,
                "targets": n_targets
                if n_targets is not None
                else _count_urls(self.settings.get("notify.urls")),
                "events": list(self._kinds),
                "min_interval_s": self._gate.min_interval_s,
                "quiet_hours": str(self._gate.quiet) if self._gate.quiet else None,
                "sent": self.sent,
                "failed_attempts": self.failed_attempts,
                "pending": len(self._outbox),
                "dropped": self._outbox.dropped,
                "held": self._gate.held(),
                "last_sent": self.last_sent,
                "last_error": self.last_error,
                "last_error_time": self.last_error_time,
                "next_retry_s": None if due is None else round(max(0.0, due - now), 1),
                "humidity_alarm": self._humidity.snapshot(self._wall()),
                "recent": [
                    {k: v for k, v in e.items() if not k.startswith("_")} for e in self._recent
                ],
            }


def _count_urls(value: Any) -> int | None:
    text = str(value or "")
    if text.startswith("vault:"):
        return None  # unknown until resolved
    return len(split_urls(text))


# -- wiring into the service (kept here so app.py and reload.py stay small) ----------------------


def start_notifier(service: ServiceAPI) -> Notifier | None:
    """Start notifications for ``service`` if ``notify.urls`` is set; never raises (a problem
    is logged and shown in ``status``: notifications must never stop the box)."""
    if not str(service.settings.get("notify.urls") or "").strip():
        return None
    try:
        notifier = Notifier(
            service.settings,
            service.bus,
            Origin(service.paths.box, host_name()),
            NotifyStateStore(service.paths.state_dir),
        )
        notifier.start()
    except Exception as exc:
        log.error("notifications not started: %s", str(exc).splitlines()[0][:200])
        return None
    return notifier


def reconfigure_service(service: ServiceAPI, settings: Mapping[str, object]) -> None:
    """Live reload of ``notify.*``: start, stop or reconfigure the service's notifier."""
    notifier = service.notifier
    wanted = bool(str(settings.get("notify.urls") or "").strip())
    if notifier is not None and not wanted:
        service.notifier = None
        notifier.stop()
        log.info("notifications off (notify.urls is empty)")
    elif notifier is None and wanted:
        service.notifier = start_notifier(service)
    elif notifier is not None:
        notifier.reconfigure(settings)


def status_of(service: ServiceAPI) -> dict[str, Any]:
    notifier = service.notifier
    if notifier is not None:
        return notifier.status()
    configured = bool(str(service.settings.get("notify.urls") or "").strip())
    return {
        "enabled": False,
        "targets": 0,
        "last_error": "notifications could not start; see the log" if configured else None,
    }


def handle_test(service: ServiceAPI, req: Any, conn: Any) -> dict[str, Any]:
    """The ``notify.test`` op: a test message to every URL, with the service's settings."""
    if req.args:
        raise ProtocolError(
            protocol.INVALID_ARGS, f"notify.test takes no arguments (got {sorted(req.args)})"
        )
    box = service.paths.box
    if not str(service.settings.get("notify.urls") or "").strip():
        return {"box": box, "via": "service", "configured": False, "results": []}
    try:
        results = send_test(service.settings, box, "by the service")
    except Exception as exc:  # Vault down or a bad reference: say so, never the value
        raise ProtocolError(
            protocol.REFUSED, f"cannot read notify.urls: {str(exc).splitlines()[0][:200]}"
        ) from None
    ok = sum(1 for r in results if r["ok"])
    log.info(
        "notify.test from %s: %d of %d target(s) took the message", conn.peer, ok, len(results)
    )
    return {"box": box, "via": "service", "configured": True, "results": results}
