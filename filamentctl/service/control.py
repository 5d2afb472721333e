"""The control loop: pure controllers (``core.control``) applied to real relays (``hw.relays``).

Called on every new reading (reaction time is one function call), on every rejected sample
(the heater goes OFF at that read) and on a timer, so a dead sensor still turns the heater OFF
and overrides expire. After :meth:`ControlLoop.all_off` (any way the process ends, or a relay
that cannot be driven) nothing can switch a relay ON again.

A latched heater fault is written to the state directory (``store.latch``) in the same step
that latches it and restored before any relay is driven, so no restart can undo it; only
``heater reset`` clears it. Requests that change something are logged with the peer that sent
them (``service.audit``: rate-limited, so a flood of requests cannot flood the log).

Threads: the sampler (``on_reading``), the control timer (``tick``), socket clients
(``set_mode``, ``reset``, ``status``) and a signal handler on the main thread (``all_off``)
all come here. One re-entrant lock serialises the controllers and the relays;
:meth:`~ControlLoop.all_off` does not depend on getting it (see there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from filamentctl import protocol
from filamentctl.core.control import (
    Decision,
    FanController,
    FanSettings,
    HeaterController,
    HeaterSettings,
    RequestResult,
    override_problem,
)
from filamentctl.core.reading import Reading, Sample, iso_utc
from filamentctl.protocol import ProtocolError
from filamentctl.service.audit import AuditLog
from filamentctl.service.latching import LatchKeeper
from filamentctl.store.latch import Latch, LatchStore

log = logging.getLogger("filamentctl.control")


Publish = Callable[[str, Any], None]

RELAYS = ("heater", "fan")

# How long all_off waits for a concurrent switching to finish before it switches OFF again.
# Bounded so that a signal handler can never deadlock on a lock held by a stuck thread.
ALL_OFF_LOCK_TIMEOUT_S = 1.0


class ControlLoop:
    """The heater and fan controllers and their relays, for one box.

    Raises UserError (from the relays) when a pin cannot be claimed and ValueError when the
    control settings are inconsistent; either way no relay is left claimed.
    """

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        publish: Publish | None = None,
        simulate: bool = False,
        pin_factory: object | None = None,
        latch_store: LatchStore | None = None,
    ) -> None:
        from filamentctl.hw.relays import RelayBoard, make_pin_factory

        self._clock = clock
        self._wall = wall
        self._publish = publish or (lambda _name, _data: None)
        self._latch_store = latch_store
        self.audit = AuditLog(log, clock=clock)
        self._lock = threading.RLock()
        self._shutdown = False
        self._closed = False
        self.failure: str | None = None  # a relay that could not be driven: control is over
        self.enabled = {
            "heater": bool(settings["heater.enabled"]),
            "fan": bool(settings["fan.enabled"]),
        }
        # Settings first: a ValueError here must not leave pins claimed.
        heater_settings = HeaterSettings.from_settings(settings)
        fan_settings = FanSettings.from_settings(settings)
        # The stored latch before any pin is claimed: a restart must never undo a latch.
        self._latches = LatchKeeper(latch_store, wall, lambda data: self._emit(data, topic="alert"))
        factory = pin_factory if pin_factory is not None else make_pin_factory(simulate)
        self.board = RelayBoard.from_settings(settings, factory)
        now = clock()
        # A drying session's heater band and fan schedule go over the configured settings
        # (see set_drying); these are the configured ones, kept to return to.
        self._configured = (heater_settings, fan_settings)
        self._drying: tuple[tuple[float, float], tuple[bool, str]] | None = None
        restored = self.latch.cause if self.latch is not None else None
        self.heater = HeaterController(heater_settings, now, self._until_text, latched=restored)
        self.fan = FanController(fan_settings, now, self._until_text)
        self._latches.log_restored()

    @property
    def latch(self) -> Latch | None:
        """The heater's latched fault (stored across restarts), None when nothing is latched."""
        return self._latches.latch

    def _until_text(self, until: float, now: float) -> str:
        return "until " + time.strftime("%H:%M:%S", time.localtime(self._wall() + until - now))

    def _relay(self, name: str) -> Any:
        return self.board.heater if name == "heater" else self.board.fan

    def _controller(self, name: str) -> Any:
        return self.heater if name == "heater" else self.fan

    # -- inputs -----------------------------------------------------------------------------
    def on_reading(self, reading: Reading | Sample, now: float) -> None:
        """Control on a new accepted sample taken at ``now`` (the clock value of the sample).

        The service calls this before it stores the reading, so control never waits on the
        history (a long query or a slow disk).
        """
        with self._lock:
            if self.enabled["heater"]:
                self._apply("heater", self.heater.observe(reading.temperature_c, 0.0, now))
            if self.enabled["fan"]:
                self._apply("fan", self.fan.observe(reading.humidity, 0.0, now))

    def on_rejected(self, reason: str, now: float, *, too_hot: bool = False) -> None:
        """The reading filter rejected the sample read at ``now``: the heater goes OFF at once
        (and latches when the sample was ``too_hot`` for the sensor), the fan to its fault
        state, until the next accepted reading."""
        with self._lock:
            if self.enabled["heater"]:
                self._apply("heater", self.heater.reject(reason, now, over_temperature=too_hot))
            if self.enabled["fan"]:
                self._apply("fan", self.fan.reject(reason, now))

    def tick(self, now: float) -> None:
        """Re-evaluate without a new reading: staleness, override expiry, max on-time (the
        controllers remember when their last reading arrived)."""
        with self._lock:
            if self.enabled["heater"]:
                self._apply("heater", self.heater.tick(now))
            if self.enabled["fan"]:
                self._apply("fan", self.fan.tick(now))
        self.audit.flush()

    def _apply(self, name: str, decision: Decision[Any]) -> None:
        """Drive one relay to the decision (OFF once shut down). Caller holds the lock."""
        if name == "heater":
            self._latches.note(decision.state.fault, decision.state.last_value)
        if self._closed:
            return  # the pins are released; all_off has already left them OFF
        relay = self._relay(name)
        want_on = decision.on and not self._shutdown
        try:
            if want_on:
                if not relay.is_on:
                    relay.on()
            else:
                # Unconditionally: OFF must not depend on reading the state back correctly.
                relay.off()
        except Exception as exc:
            self._relay_failed(name, exc)
            return
        if want_on and self._shutdown:
            # all_off ran while we were switching ON (a signal handler interrupting this very
            # thread, or all_off giving up on the lock): undo it, OFF wins.
            self._force_off()
            return
        if decision.changed:
            log.info("%s %s: %s", name, "ON" if want_on else "OFF", decision.reason)
            self._emit(
                {
                    "relay": name,
                    "on": want_on,
                    "reason": decision.reason,
                    "time": iso_utc(int(self._wall() * 1e9)),
                }
            )

    def _emit(self, data: dict[str, Any], topic: str = "relay") -> None:
        # Telling subscribers is best effort: it must never break control.
        try:
            self._publish(topic, data)
        except Exception:
            log.debug("could not publish a %s event", topic, exc_info=True)

    def _relay_failed(self, name: str, exc: Exception) -> None:
        self.failure = f"{name} relay could not be switched ({type(exc).__name__}: {exc})"
        log.critical("%s; both relays held OFF until the service restarts", self.failure)
        self.all_off(f"{name} relay error")
        self._emit(
            {
                "relay": name,
                "on": False,
                "reason": self._failure_reason(),
                "time": iso_utc(int(self._wall() * 1e9)),
            }
        )

    def _failure_reason(self) -> str:
        return f"safety: {self.failure}; both relays held OFF, restart the service"

    def reconfigure(self, settings: Mapping[str, object], now: float) -> None:
        """Apply changed thresholds and limits at once (a latch stays latched).

        Raises ValueError, changing nothing, when the new settings are inconsistent. Switching
        a relay off with ``*.enabled = false`` applies now; enabling one, or another pin or
        polarity, needs a restart (the pins are claimed at start) and is ignored until then.
        """
        heater = HeaterSettings.from_settings(settings)
        fan = FanSettings.from_settings(settings)
        with self._lock:
            for name, new in (("heater", heater), ("fan", fan)):
                if new.enabled and not self.enabled[name]:
                    log.warning("%s.enabled = true takes effect after a restart", name)
                self.enabled[name] = self.enabled[name] and new.enabled
            heater = replace(heater, enabled=self.enabled["heater"])
            fan = replace(fan, enabled=self.enabled["fan"])
            self._configured = (heater, fan)
            try:
                heater, fan = self._with_drying(heater, fan)
            except ValueError as exc:
                # The new cutoff leaves no room for the session's band: the configured band
                # (the safe one) until the session follows its lowered cap.
                log.warning("drying band suspended: %s", exc)
            # Applied even when now disabled: the controller's decision is then OFF.
            self._apply("heater", self.heater.reconfigure(heater, now))
            self._apply("fan", self.fan.reconfigure(fan, now))

    def set_drying(
        self,
        band: tuple[float, float] | None,
        schedule: tuple[bool, str] | None,
        now: float,
    ) -> None:
        """A drying session's heater band ``(on below, off above)`` and fan schedule
        ``(on, reason)``, applied at once; ``band`` None returns both to the configured settings.

        Only the band moves: every safety rule of the controllers still applies (the cutoff
        included, which the band must stay below: ValueError otherwise, changing nothing).
        """
        with self._lock:
            previous = self._drying
            self._drying = None if band is None else (band, schedule or (False, ""))
            try:
                heater, fan = self._with_drying(*self._configured)
            except ValueError:
                self._drying = previous
                raise
            self._apply("heater", self.heater.reconfigure(heater, now))
            self._apply("fan", self.fan.reconfigure(fan, now))

    def _with_drying(
        self, heater: HeaterSettings, fan: FanSettings
    ) -> tuple[HeaterSettings, FanSettings]:
        if self._drying is None:
            return heater, fan
        (low, high), schedule = self._drying
        return (
            replace(heater, min_temp_c=low, max_temp_c=high),
            replace(fan, schedule=schedule if schedule[1] else None),
        )

    # -- requests from the socket -----------------------------------------------------------
    def set_mode(
        self, name: str, args: Mapping[str, Any], now: float, peer: object = "in-process"
    ) -> dict[str, Any]:
        """``heater.set`` / ``fan.set``: ``{"mode": "auto"|"on"|"off", "for_s": seconds}``.

        Raises ProtocolError ``invalid_args`` for a bad or unknown argument and ``refused`` when
        the relay is disabled, the service is stopping, or a safety rule forbids the request.
        ``peer`` (who asked) goes to the audit log.
        """
        unknown = sorted(set(args) - {"mode", "for_s"})
        if unknown:
            raise ProtocolError(
                protocol.INVALID_ARGS,
                f"unknown argument(s) {unknown}; {name}.set takes mode, for_s",
            )
        mode, for_s = args.get("mode"), args.get("for_s")
        problem = override_problem(mode, for_s, for_name="'for_s'")
        if problem is not None:
            raise ProtocolError(protocol.INVALID_ARGS, problem)
        until = None if for_s is None else now + float(for_s)
        if not self.enabled[name]:
            raise ProtocolError(
                protocol.REFUSED,
                f"the {name} is disabled ({name}.enabled is false); "
                f"enable it with 'filamentctl config set {name}.enabled true'",
            )
        controller = self._controller(name)
        with self._lock:
            self._refuse_when_shut_down()
            try:
                result: RequestResult[Any] = controller.request(str(mode), until, now)
            except ValueError as exc:
                raise ProtocolError(protocol.INVALID_ARGS, str(exc)) from None
            self._apply(name, result.decision)
        asked = f"{name} {mode}" + (f" for {for_s:g} s" if for_s else "")
        if not result.accepted:
            self.audit.record(f"{name}.set", peer, f"{asked} refused: {result.reason}")
            raise ProtocolError(protocol.REFUSED, result.reason)
        self.audit.record(f"{name}.set", peer, f"{asked}: {result.reason}")
        return self.relay_status(name, now)

    def reset(self, name: str, now: float, peer: object = "in-process") -> dict[str, Any]:
        """``heater.reset`` / ``fan.reset``; ProtocolError ``refused`` when not allowed now.

        Clearing a heater latch also removes the stored one, and is logged with ``peer``.
        """
        controller = self._controller(name)
        with self._lock:
            self._refuse_when_shut_down()
            before = self.latch if name == "heater" else None
            result: RequestResult[Any] = controller.reset(now)
            self._apply(name, result.decision)
            cleared = before is not None and getattr(result.decision.state, "fault", None) is None
            note = self._latches.forget(peer) if cleared else ""
        if not result.accepted:
            self.audit.record(f"{name}.reset", peer, f"{name} reset refused: {result.reason}")
            raise ProtocolError(protocol.REFUSED, result.reason)
        if not cleared:
            self.audit.record(f"{name}.reset", peer, f"{name} reset: {result.reason}")
        status = self.relay_status(name, now)
        if note:
            status["warning"] = note
        return status

    def _refuse_when_shut_down(self) -> None:
        if self.failure is not None:
            raise ProtocolError(protocol.REFUSED, self._failure_reason())
        if self._shutdown:
            raise ProtocolError(protocol.REFUSED, "the service is stopping; relays are OFF")

    # -- status -----------------------------------------------------------------------------
    def relay_status(self, name: str, now: float) -> dict[str, Any]:
        """One relay's ``status`` section (``on`` and ``pin_level`` read back from the pin)."""
        relay = self._relay(name)
        with self._lock:
            st: dict[str, Any] = self._controller(name).status(now).to_dict()
            is_on, level = self._read_back(relay)
        until = st.get("override_until")
        st["override_until"] = (
            iso_utc(int((self._wall() + until - now) * 1e9)) if until is not None else None
        )
        pins = {"pin_level": level, "gpio_pin": getattr(relay, "pin", None)}
        st.update(pins, enabled=self.enabled[name], on=is_on)
        st["active_high"] = getattr(relay, "active_high", None)  # none for a disabled relay
        if name == "heater":
            st["latched_since"] = self._latches.since()
        overruled = self._overruled(name)
        if overruled is not None:
            st.update(overruled)
        return st

    def _overruled(self, name: str) -> dict[str, str] | None:
        """What status says instead of the controller's mode and reason, if anything."""
        if not self.enabled[name]:
            return {"mode": "auto", "reason": f"disabled ({name}.enabled is false)"}
        if self.failure is not None:
            return {"mode": "fault", "reason": self._failure_reason()}
        if self._shutdown:
            return {"reason": "service stopping: relays OFF"}
        return None

    def _read_back(self, relay: Any) -> tuple[bool, int | None]:
        if self._closed:
            return False, None
        try:
            return bool(relay.is_on), relay.pin_level
        except Exception:  # a broken or released pin: report what we know, never fail status
            return False, None

    def status(self, now: float) -> dict[str, Any]:
        """The ``heater`` and ``fan`` sections of ``status``."""
        return {name: self.relay_status(name, now) for name in RELAYS}

    def heater_is_on(self) -> bool:
        """The heater relay's state, for the simulated box (False once released or broken)."""
        return self._read_back(self.board.heater)[0]

    def fan_is_on(self) -> bool:
        """The fan relay's state, for the simulated box (False once released or broken)."""
        return self._read_back(self.board.fan)[0]

    def healthy(self) -> bool:
        """False once a relay could not be driven or control has been shut down."""
        return self.failure is None and not self._shutdown

    # -- the safety exit --------------------------------------------------------------------
    def all_off(self, reason: str) -> None:
        """Both relays OFF and kept OFF from now on. Never raises; safe from a signal handler.

        When another thread holds the lock, switches OFF at once without it (that thread must
        not delay this), then waits a bounded time for the lock and switches OFF again, so a
        switching already under way cannot leave a relay ON afterwards. Whatever is still
        running after that sees the shutdown flag and keeps OFF (see ``_apply``).
        """
        self._shutdown = True
        got = self._lock.acquire(blocking=False)
        ok = True
        if not got:
            ok = self._force_off()
            got = self._lock.acquire(timeout=ALL_OFF_LOCK_TIMEOUT_S)
        try:
            ok = self._force_off() and ok
        finally:
            if got:
                self._lock.release()
        if ok:
            # The state line promised in docs/control.md: levels read back from the pins.
            log.info("relays OFF: %s (%s)", reason, self._levels_text())
        else:
            log.critical("relays OFF FAILED: %s (%s)", reason, self._levels_text())

    def _levels_text(self) -> str:
        """``heater GPIO 16 level 1, fan disabled``: what a multimeter on the pins would show."""
        levels = {name: self._read_back(self._relay(name))[1] for name in RELAYS}
        return levels_text(
            {name: getattr(self._relay(name), "pin", None) for name in RELAYS}, levels
        )

    def _force_off(self) -> bool:
        if self._closed:
            return True
        try:
            return self.board.all_off()
        except Exception:  # RelayBoard.all_off never raises; belt and braces
            log.critical("could not switch the relays off", exc_info=True)
            return False

    def close(self) -> None:
        """All relays OFF, then release the pins. Never raises; safe to call twice."""
        if not self._shutdown:
            self.all_off("closing")
        got = self._lock.acquire(timeout=ALL_OFF_LOCK_TIMEOUT_S)
        try:
            if self._closed:
                return
            self._closed = True
            try:
                self.board.close()
            except Exception:
                log.debug("relay close failed", exc_info=True)
        finally:
            if got:
                self._lock.release()


def levels_text(pins: dict[str, int | None], levels: dict[str, int | None]) -> str:
    """``heater GPIO 16 level 1, fan disabled`` from each relay's pin and read-back level."""
    parts = []
    for name, pin in pins.items():
        if pin is None:
            parts.append(f"{name} disabled")
        else:
            level = levels.get(name)
            parts.append(f"{name} GPIO {pin} level {'?' if level is None else level}")
    return ", ".join(parts)
