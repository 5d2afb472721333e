"""Drying sessions in the service: start, stop, resume after a restart, end, and tell everyone.

The decisions are ``core.drying``'s; this shell feeds it readings and time, drives the control
loop's session band and vent schedule (``ControlLoop.set_drying``), stores the running session
(``store.drying``) and past ones, and publishes ``drying.started`` / ``drying.ended`` events.

A session only moves the heater's band and schedules the fan: every safety rule stays in the
control loop. A latched heater fault (new, or restored at start) ends the session with reason
``fault``; so does a relay that cannot be driven, or the heater being disabled.

Threads: the sampler (``on_reading``), the control timer (``tick``) and socket clients (the
``op_*`` handlers) all come here; one lock serialises them. The lock is taken before the control
loop's, never after it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filamentctl import protocol
from filamentctl.core import drying as core
from filamentctl.core.duration import format_duration
from filamentctl.core.reading import Reading, iso_utc
from filamentctl.protocol import ProtocolError
from filamentctl.store.drying import DryingLog, SessionStore

if TYPE_CHECKING:
    from filamentctl.service.control import ControlLoop
    from filamentctl.store.history import History

log = logging.getLogger("filamentctl.drying")

Publish = Callable[[str, Any], None]

#: The running session is written at most this often while only its figures change.
SAVE_EVERY_S = 60.0
HISTORY_DEFAULT = 50
HISTORY_MAX = 500
#: Readings read back from the history when a session resumes.
RESUME_LIMIT = 50_000
_KEYS = (
    "dry.max_temp_c",
    "heater.cutoff_temp_c",
    "dry.plateau_window",
    "dry.plateau_slope",
    "dry.vent_every",
    "dry.vent_for",
    "box.volume_l",
    "dry.profiles",
)
VENT_REASON = "drying: venting moist air"
CLOSED_REASON = "drying: box closed between vents"


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _grams(value: float) -> float:
    return round(value, 2)


class DryingManager:
    """The box's drying session, if any. ``settings`` is the service's live settings dict."""

    def __init__(
        self,
        settings: Mapping[str, object],
        state_dir: Path,
        control: ControlLoop,
        history: History,
        *,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._live = settings
        self._control = control
        self._history = history
        self._publish = publish or (lambda _name, _data: None)
        self._clock = clock
        self._wall_ns = wall_ns
        self._store = SessionStore(state_dir)
        self.log = DryingLog(state_dir)
        self._lock = threading.RLock()
        self._signature = ""
        self.settings = self._read_settings(core.DryingSettings())
        self.session: core.DryingSession | None = None
        self._venting: bool | None = None
        self._saved_at = 0.0

    # -- settings ---------------------------------------------------------------------------
    def _read_settings(self, current: core.DryingSettings) -> core.DryingSettings:
        """The settings from the live dict (a config reload changes it in place); the current
        ones when they cannot be read (already validated by the schema: a bug, logged)."""
        signature = json.dumps([self._live.get(k) for k in _KEYS], sort_keys=True, default=str)
        if signature == self._signature:
            return current
        try:
            new = core.DryingSettings.from_settings(self._live)
        except (KeyError, ValueError) as exc:
            log.error("drying settings not applied: %s", exc)
            return current
        self._signature = signature
        return new

    def _refresh(self) -> None:
        new = self._read_settings(self.settings)
        if new is self.settings:
            return
        self.settings = new
        session = self.session
        if session is None:
            return
        session.settings = new
        if session.state.target_c > new.cap_c:
            # The cap came down under a running session: follow it at once.
            session.state = replace(session.state, target_c=new.cap_c, capped=True)
            session.changed = True
            log.warning("drying: target lowered to the new cap of %s", new.cap_text())
        self._apply(session)

    def _now(self) -> float:
        return self._wall_ns() / 1e9

    # -- lifecycle ----------------------------------------------------------------------------
    def resume(self) -> None:
        """At service start: resume a stored session, or end it (``fault`` when the heater is
        latched or disabled, ``time`` when its maximum time passed while the service was down)."""
        data = self._store.load()
        if data is None:
            return
        try:
            state = core.SessionState.from_dict(data)
        except ValueError as exc:
            log.error("drying session file not resumed (%s); removing it", exc)
            self._clear_store()
            return
        now = self._now()
        with self._lock:
            points = self._points_since(state.started_at, now)
            session = core.DryingSession(state, self.settings, points)
            self.session = session
            refusal = self._fault()
            if refusal is not None:
                self._end("fault", f"{refusal} when the service started", now)
                return
            if session.elapsed(now) >= state.max_s:
                self._end(
                    "time",
                    "its maximum time passed while the service was not running",
                    state.started_at + state.max_s,
                )
                return
            self._venting = None
            self._apply(session)
            log.info(
                "drying %s resumed: %s into the session, target %.1f °C",
                state.material,
                format_duration(round(session.elapsed(now))),
                state.target_c,
            )
            self._emit("drying.started", {**self._started_event(session), "resumed": True})

    def _points_since(self, started_at: float, now: float) -> list[core.Point]:
        s = self.settings
        keep = max(s.plateau_window_s, s.vent_every_s) + s.vent_every_s + core.BEFORE_S
        since = max(started_at, now - keep)
        try:
            rows = self._history.query(_ns(since), limit=RESUME_LIMIT)
        except Exception as exc:  # a damaged history must not stop the session
            log.warning("drying: could not read the readings since the start (%s)", exc)
            return []
        return [_point(r) for r in rows]

    def on_reading(self, reading: Reading) -> None:
        """Each accepted reading (from the sampler)."""
        with self._lock:
            if self.session is not None:
                self.session.observe(_point(reading))

    def tick(self) -> None:
        """On the control timer: end the session when a rule says so, drive the vent schedule,
        store changed figures."""
        with self._lock:
            session = self.session
            if session is None:
                return
            self._refresh()
            now = self._now()
            fault = self._fault()
            if fault is not None:
                self._end("fault", fault, now)
                return
            reason = session.check(now)
            if reason is not None:
                self._end(reason, "", now)
                return
            if session.vent_on(now) != self._venting:
                self._apply(session)
            if session.changed and now - self._saved_at >= SAVE_EVERY_S:
                self._save(session, now)

    def abandon(self, detail: str) -> None:
        """End the session with reason ``fault`` after an internal error; never raises. Whatever
        fails here, the heater is handed back to its storage band."""
        with self._lock:
            if self.session is None:
                return
            try:
                self._end("fault", detail, self._now())
            except Exception:
                log.exception("drying: could not end the session cleanly")
                self.session = None
                try:
                    self._control.set_drying(None, None, self._clock())
                except Exception:
                    log.critical("drying: could not restore the heater's storage band")

    def close(self) -> None:
        """At service stop: store the running session's latest figures (it resumes from them).
        Never raises."""
        with self._lock:
            session = self.session
            if session is not None and session.changed:
                try:
                    self._save(session, self._now())
                except Exception:
                    log.exception("drying: could not store the session at stop")

    def _fault(self) -> str | None:
        """Why the heater cannot run a session now (None: it can)."""
        control = self._control
        if control.latch is not None:
            return f"heater latched off: {control.latch.cause}"
        if control.failure is not None:
            return str(control.failure)
        if not control.enabled["heater"]:
            return "heater disabled (heater.enabled is false)"
        return None

    def _apply(self, session: core.DryingSession) -> None:
        vent = session.vent_on(self._now())
        schedule = (vent, VENT_REASON if vent else CLOSED_REASON)
        self._control.set_drying(session.plan.band, schedule, self._clock())
        self._venting = vent

    def _save(self, session: core.DryingSession, now: float) -> None:
        try:
            self._store.save(session.state.to_dict())
        except OSError as exc:
            log.error("drying: could not store the session (%s); a restart would lose it", exc)
        session.changed = False
        self._saved_at = now

    def _clear_store(self) -> None:
        try:
            self._store.clear()
        except OSError as exc:
            log.error("drying: could not remove %s (%s)", self._store.path, exc)

    def _end(self, reason: str, detail: str, ended_at: float) -> dict[str, Any]:
        """End the running session: storage band first, then the record and the event."""
        session = self.session
        assert session is not None
        self.session = None
        self._venting = None
        try:
            self._control.set_drying(None, None, self._clock())
        except Exception:  # the control loop may be shut down: its relays are OFF anyway
            log.debug("could not hand the heater back to its storage band", exc_info=True)
        session.measure_vents(ended_at)
        record = session_record(session, reason, detail, ended_at)
        self._clear_store()
        try:
            self.log.append(record)
        except OSError as exc:
            log.error("drying: could not add the session to %s (%s)", self.log.path, exc)
        level = logging.WARNING if reason == "fault" else logging.INFO
        log.log(level, "%s", record["message"])
        self._emit("drying.ended", record)
        return record

    def _session_status(self, session: core.DryingSession, now: float) -> dict[str, Any]:
        fan = bool(self._control.enabled.get("fan"))
        return session_status(session, self.settings, fan, now)

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        try:
            self._publish(name, data)
        except Exception:  # telling subscribers never breaks a session
            log.debug("could not publish %s", name, exc_info=True)

    def _started_event(self, session: core.DryingSession) -> dict[str, Any]:
        st = session.state
        capped = f" (profile {st.profile_temp_c:g} °C, capped)" if st.capped else ""
        return {
            "id": st.id,
            "material": st.material,
            "target_c": st.target_c,
            "profile_temp_c": st.profile_temp_c,
            "capped": st.capped,
            "started": iso_utc(_ns(st.started_at)),
            "min_s": st.min_s,
            "max_s": st.max_s,
            "message": (
                f"drying {st.material} at {st.target_c:g} °C{capped}, "
                f"{core.duration_text(st.min_s)} to {core.duration_text(st.max_s)}"
            ),
        }

    # -- socket operations --------------------------------------------------------------------
    def op_start(self, args: Mapping[str, Any], peer: object = "in-process") -> dict[str, Any]:
        """``dry.start``: ``{"material": str, "temp_c": number?, "for_s": number?}``.

        ``invalid_args`` for bad arguments, an unknown material (listing the profiles) or a
        ``temp_c`` above the cap (naming it); ``refused`` while a session runs or the heater is
        disabled, latched or shut down.
        """
        unknown = sorted(set(args) - {"material", "temp_c", "for_s"})
        if unknown:
            raise ProtocolError(
                protocol.INVALID_ARGS,
                f"unknown argument(s) {unknown}; dry.start takes material, temp_c, for_s",
            )
        material = args.get("material")
        if not isinstance(material, str) or not material.strip():
            raise ProtocolError(protocol.INVALID_ARGS, "'material' must be a profile name")
        temp_c = _optional_number(args, "temp_c")
        for_s = _optional_number(args, "for_s")
        with self._lock:
            self._refresh()
            try:
                plan = core.plan_session(self.settings, material, temp_c, for_s)
            except core.DryingError as exc:
                raise ProtocolError(protocol.INVALID_ARGS, str(exc)) from None
            if self.session is not None:
                st = self.session.state
                raise ProtocolError(
                    protocol.REFUSED,
                    f"a drying session ({st.material}, started {iso_utc(_ns(st.started_at))}) "
                    "is already running; stop it first with 'filamentctl dry stop'",
                )
            self._refuse_unless_ready()
            now = self._now()
            state = core.SessionState(
                id=uuid.uuid4().hex[:12],
                material=plan.material,
                target_c=plan.target_c,
                profile_temp_c=plan.profile_temp_c,
                capped=plan.capped,
                min_s=plan.min_s,
                max_s=plan.max_s,
                started_at=now,
            )
            session = core.DryingSession(state, self.settings)
            self.session = session
            try:
                self._apply(session)
            except ValueError as exc:  # the band would not fit under the cutoff: a bug
                self.session = None
                self._control.set_drying(None, None, self._clock())
                raise ProtocolError(protocol.REFUSED, f"cannot start drying: {exc}") from None
            self._save(session, now)
            event = self._started_event(session)
            self._control.audit.record("dry.start", peer, event["message"])
            log.info("%s", event["message"])
            self._emit("drying.started", event)
            status = self._session_status(session, now)
        return status

    def _refuse_unless_ready(self) -> None:
        control = self._control
        if not control.enabled["heater"]:
            raise ProtocolError(
                protocol.REFUSED,
                "cannot dry without a heater: heater.enabled is false; enable it with "
                "'filamentctl config set heater.enabled true' and restart the service",
            )
        if control.latch is not None:
            raise ProtocolError(
                protocol.REFUSED,
                f"the heater is latched off by a safety fault ({control.latch.cause}); check the "
                "box, then run 'filamentctl heater reset' before drying",
            )
        if not control.healthy():
            raise ProtocolError(
                protocol.REFUSED,
                "the heater is not under control (the service is stopping or a relay failed); "
                "see 'filamentctl status'",
            )

    def op_stop(self, args: Mapping[str, Any], peer: object = "in-process") -> dict[str, Any]:
        """``dry.stop``: end the running session (reason ``stopped``); ``refused`` when idle."""
        if args:
            raise ProtocolError(protocol.INVALID_ARGS, "dry.stop takes no arguments")
        with self._lock:
            if self.session is None:
                raise ProtocolError(protocol.REFUSED, "no drying session is running")
            record = self._end("stopped", "", self._now())
        self._control.audit.record("dry.stop", peer, record["message"])
        return record

    def op_profiles(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``dry.profiles``: every profile, what it would run at, and the cap."""
        with self._lock:
            self._refresh()
            return profiles_document(self.settings)

    def op_history(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``dry.history``: past sessions, oldest first (the newest ``limit``)."""
        limit = args.get("limit", HISTORY_DEFAULT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HISTORY_MAX:
            raise ProtocolError(
                protocol.INVALID_ARGS, f"'limit' must be a whole number from 1 to {HISTORY_MAX}"
            )
        try:
            return self.log.read(limit)
        except OSError as exc:
            raise ProtocolError(
                protocol.REFUSED, f"cannot read the drying history: {exc}"
            ) from None

    def status(self) -> dict[str, Any] | None:
        """The ``drying`` section of ``status``: None when no session runs."""
        with self._lock:
            if self.session is None:
                return None
            return self._session_status(self.session, self._now())


def session_record(
    session: core.DryingSession, reason: str, detail: str, ended_at: float
) -> dict[str, Any]:
    """An ended session as ``dry.history`` and the ``drying.ended`` event show it."""
    st = session.state
    water, plus_minus = session.water()
    duration = max(0.0, ended_at - st.started_at)
    message = (
        f"drying {st.material} ended ({reason}{': ' + detail if detail else ''}) after "
        f"{core.duration_text(duration)}; about {water:.1f} ± {plus_minus:.1f} g of water "
        "removed"
    )
    return {
        "id": st.id,
        "material": st.material,
        "target_c": st.target_c,
        "profile_temp_c": st.profile_temp_c,
        "capped": st.capped,
        "started": iso_utc(_ns(st.started_at)),
        "started_ns": _ns(st.started_at),
        "ended": iso_utc(_ns(ended_at)),
        "ended_ns": _ns(ended_at),
        "duration_s": round(duration, 1),
        "reason": reason,
        "detail": detail or None,
        "peak_temp_c": None if st.peak_c is None else round(st.peak_c, 2),
        "water_removed_g": _grams(water),
        "water_uncertainty_g": _grams(plus_minus),
        "vents_measured": st.vents_measured,
        "message": message,
    }


def session_status(
    session: core.DryingSession, s: core.DryingSettings, fan_enabled: bool, now: float
) -> dict[str, Any]:
    """A running session as the ``drying`` section of ``status`` shows it."""
    st = session.state
    elapsed = session.elapsed(now)
    low, high = session.plan.band
    trend = session.update_trend(now)
    expected = session.expectation(now)
    water, plus_minus = session.water()
    venting = session.vent_on(now)
    if not fan_enabled:
        vent_state = "no fan (fan.enabled is false): nothing vents"
    else:
        vent_state = "venting" if venting else "closed"
    return {
        "id": st.id,
        "material": st.material,
        "target_c": st.target_c,
        "profile_temp_c": st.profile_temp_c,
        "capped": st.capped,
        "cap_c": s.cap_c,
        "cap_reason": s.cap_reason,
        "band": {"min_temp_c": low, "max_temp_c": high},
        "started": iso_utc(_ns(st.started_at)),
        "started_ns": _ns(st.started_at),
        "elapsed_s": round(elapsed, 1),
        "min_s": st.min_s,
        "max_s": st.max_s,
        "remaining_s": round(max(0.0, st.max_s - elapsed), 1),
        "ends_by": iso_utc(_ns(st.started_at + st.max_s)),
        "progress": round(min(1.0, elapsed / st.max_s), 4) if st.max_s > 0 else 1.0,
        "vent": vent_state,
        "vent_every_s": s.vent_every_s,
        "vent_for_s": s.vent_for_s,
        "trend": None if trend is None else trend.to_dict(),
        "plateau": session.plateau(now),
        "plateau_slope": s.plateau_slope,
        "plateau_window_s": s.plateau_window_s,
        "expected": {
            "reason": expected.reason,
            "at": iso_utc(_ns(expected.at)),
            "in_s": round(max(0.0, expected.at - now), 1),
            "note": expected.note,
        },
        "peak_temp_c": None if st.peak_c is None else round(st.peak_c, 2),
        "water_removed_g": _grams(water),
        "water_uncertainty_g": _grams(plus_minus),
        "vents_measured": st.vents_measured,
        "water_note": (
            "a lower bound: box.volume_l × the humidity drop of each vent; water that leaks "
            "out between vents is not counted"
        ),
    }


def profiles_document(settings: core.DryingSettings) -> dict[str, Any]:
    """The ``dry.profiles`` result: the cap and each profile with the target it would run at."""
    cap = settings.cap_c
    return {
        "cap_c": cap,
        "cap_reason": settings.cap_reason,
        "profiles": [
            {**p.to_dict(), "runs_at_c": min(p.temp_c, cap), "capped": p.temp_c > cap}
            for p in settings.profiles.values()
        ],
    }


def _point(reading: Reading) -> core.Point:
    return core.Point(reading.time_ns / 1e9, reading.absolute_humidity_g_m3, reading.temperature_c)


def _optional_number(args: Mapping[str, Any], name: str) -> float | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be a number")
    return float(value)
