"""The text of each notification: what happened, the reading and the limit, what the service
did, what the user can do, and which box.

Pure: the event data (as published on the service's bus), the settings and the box come in;
a :class:`~filamentctl.core.notify.Message` or None (an event that does not notify) comes out.
Times are formatted by the caller's ``fmt_time`` (local time, Unix seconds in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from filamentctl.core.duration import format_duration
from filamentctl.core.humidity_alarm import HYSTERESIS_RH, AlarmEvent
from filamentctl.core.notify import TEST_KIND, Message

FmtTime = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Origin:
    """Which box speaks: its name and the machine it runs on."""

    box: str
    host: str

    def title(self, headline: str) -> str:
        # A machine usually has one box: its host name says more than "default".
        return f"[{self.box if self.box != 'default' else self.host}] {headline}"

    def footer(self) -> str:
        return f"Box '{self.box}' on {self.host}."


def _num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def _message(
    kind: str,
    origin: Origin,
    headline: str,
    lines: list[str],
    severity: str,
    event_time: float | None,
    **details: Any,
) -> Message:
    body = "\n".join([*lines, origin.footer()])
    return Message(kind, origin.title(headline), body, severity, event_time, details)


def heater_latched(data: Mapping[str, Any], settings: Mapping[str, Any], origin: Origin) -> Message:
    """The heater latched OFF (cutoff, runaway, over-temperature): a safety event."""
    cause = str(data.get("cause") or data.get("message") or "a safety rule")
    since_ns = data.get("since_ns")
    when = since_ns / 1e9 if isinstance(since_ns, int) else None
    temp = data.get("temperature_c")
    reading = f" (last reading {_num(temp)} °C)" if temp is not None and "°C" not in cause else ""
    lines = [f"heater latched OFF: {cause}{reading}."]
    if "cutoff" not in cause:
        cutoff = _num(settings.get("heater.cutoff_temp_c"))
        lines.append(f"Limits: cutoff heater.cutoff_temp_c = {cutoff} °C.")
    return _message(
        "heater_latched",
        origin,
        "heater latched OFF",
        [
            *lines,
            "The service switched the heater off and keeps it off, also across restarts.",
            "Check the box, then run `filamentctl heater reset`.",
        ],
        "failure",
        when,
        cause=cause,
        temperature_c=temp,
    )


def sensor_event(
    data: Mapping[str, Any], settings: Mapping[str, Any], origin: Origin, now: float
) -> Message:
    """A sensor fault episode started, changed cause, or ended."""
    event = str(data.get("event") or "started")
    sensor = str(data.get("type") or "sensor")
    message = str(data.get("message") or "sensor failing")
    if event == "ended":
        return _message(
            "sensor_fault",
            origin,
            "sensor recovered",
            [f"{message} ({sensor}).", "Automatic heater and fan control has resumed."],
            "success",
            now,
            event=event,
        )
    headline = "sensor fault" if event == "started" else "sensor still failing"
    stale = _num(settings.get("sensor.stale_after"), 0)
    return _message(
        "sensor_fault",
        origin,
        headline,
        [
            f"{message} (sensor {sensor}, health {data.get('health', 'FAULT')}).",
            f"Limit: a reading older than sensor.stale_after = {stale} s, or one out of range, "
            "does not count.",
            "The service keeps the heater OFF and the fan in its fault state "
            f"(fan.on_fault = {settings.get('fan.on_fault', 'off')}) until good readings return; "
            "then automatic control resumes by itself.",
            "Check the sensor's wiring and power; `filamentctl status` shows its health.",
        ],
        "warning",
        now,
        event=event,
    )


def delivery_alert(
    data: Mapping[str, Any], settings: Mapping[str, Any], origin: Origin, now: float
) -> Message:
    """Delivery to the database failed ``retry.alert_threshold`` times, or was refused."""
    kind = str(data.get("kind") or "delivery")
    backend = str(data.get("backend") or settings.get("database.type") or "the database")
    backlog = data.get("backlog")
    waiting = f"{backlog} readings waiting" if isinstance(backlog, int) and backlog >= 0 else ""
    if kind == "auth":
        headline = f"{backend} refused the credentials"
        action = (
            "Check the database credentials (`filamentctl config list`), then run "
            "`filamentctl flush`."
        )
    else:
        headline = f"delivery to {backend} failing"
        action = "Check that the database is up and reachable; `filamentctl status` shows why."
    threshold = settings.get("retry.alert_threshold")
    return _message(
        "delivery_alert",
        origin,
        headline,
        [
            f"{data.get('message') or headline}.",
            f"Limit: retry.alert_threshold = {threshold} consecutive failures.",
            "The service keeps every reading in its local history"
            + (f" ({waiting})" if waiting else "")
            + " and retries with backoff; nothing is lost while the backlog stays under "
            f"storage.max_backlog = {settings.get('storage.max_backlog')}.",
            action,
        ],
        "warning",
        now,
        backend=backend,
    )


def delivery_recovered(data: Mapping[str, Any], origin: Origin, now: float) -> Message:
    """Delivery works again after an alert."""
    backend = str(data.get("backend") or "the database")
    return _message(
        "delivery_alert",
        origin,
        f"delivery to {backend} recovered",
        [
            f"Delivery to {backend} works again after {data.get('failures', '?')} failed "
            "attempts; the backlog is being sent, oldest first.",
        ],
        "success",
        now,
        backend=backend,
    )


def drying_ended(data: Mapping[str, Any], origin: Origin, now: float) -> Message:
    """A drying session finished (or was stopped)."""
    material = str(data.get("material") or "filament")
    reason = str(data.get("reason") or "finished")
    water = data.get("water_removed_g")
    removed = (
        f" About {_num(water)} g of water removed."
        if isinstance(water, int | float) and not isinstance(water, bool)
        else ""
    )
    return _message(
        "drying_done",
        origin,
        f"drying {material} ended",
        [
            f"Drying {material} ended: {reason}.{removed}",
            "The heater is back on its storage settings.",
            "Take the spool out, or leave it in the box to stay dry.",
        ],
        "success",
        now,
        material=material,
        reason=reason,
    )


def humidity_alarm(
    event: AlarmEvent, settings: Mapping[str, Any], origin: Origin, fmt_time: FmtTime
) -> Message:
    """Humidity stayed above ``notify.humidity_above`` for ``notify.humidity_for``."""
    since = fmt_time(event.since) if event.since is not None else "?"
    return _message(
        "humidity_alarm",
        origin,
        f"humidity {_num(event.humidity)} % — desiccant spent?",
        [
            f"Humidity {_num(event.humidity)} %RH has stayed above notify.humidity_above = "
            f"{_num(event.above_rh)} % for {format_duration(event.for_s)} (since {since}).",
            "The desiccant is probably spent: replace or regenerate it.",
            "The service only reports this; the fan keeps following fan.max_humidity = "
            f"{_num(settings.get('fan.max_humidity'))} %. The alarm fires again only after the "
            f"humidity has fallen below {_num(event.above_rh - HYSTERESIS_RH)} %.",
        ],
        "warning",
        event.at,
        humidity=event.humidity,
        since=event.since,
        at=event.at,
    )


def test_message(origin: Origin, version: str, via: str, now: float) -> Message:
    """``filamentctl notify test``."""
    return _message(
        TEST_KIND,
        origin,
        "test notification",
        [
            f"This is a test from filamentctl {version} (sent {via}).",
            "If you can read this, this box's notifications reach you.",
        ],
        "info",
        now,
    )
