"""The control loop: pure controllers (``core.control``) applied to real relays (``hw.relays``).

Called on every new reading (reaction time is one function call) and on a timer, so a dead
sensor still turns the heater OFF and overrides expire. After :meth:`all_off` (any way the
process ends) nothing can switch a relay ON again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from filamentctl import protocol
from filamentctl.core.control import (
    Decision,
    FanController,
    FanSettings,
    HeaterController,
    HeaterSettings,
    RequestResult,
)
from filamentctl.core.reading import Reading, iso_utc
from filamentctl.protocol import ProtocolError

log = logging.getLogger("filamentctl.control")

Publish = Callable[[str, Any], None]


class ControlLoop:
    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        publish: Publish | None = None,
        simulate: bool = False,
        pin_factory: Any = None,
    ) -> None:
        from filamentctl.hw.relays import RelayBoard, make_pin_factory

        self._clock = clock
        self._wall = wall
        self._publish = publish or (lambda _name, _data: None)
        self._lock = threading.RLock()
        self._shutdown = False
        self.enabled = {
            "heater": bool(settings["heater.enabled"]),
            "fan": bool(settings["fan.enabled"]),
        }
        factory = pin_factory if pin_factory is not None else make_pin_factory(simulate)
        self.board = RelayBoard.from_settings(settings, factory)
        now = clock()
        self.heater = HeaterController(
            HeaterSettings.from_settings(settings), now, self._until_text
        )
        self.fan = FanController(FanSettings.from_settings(settings), now, self._until_text)

    def _until_text(self, until: float, now: float) -> str:
        return "until " + time.strftime("%H:%M:%S", time.localtime(self._wall() + until - now))

    def _relay(self, name: str) -> Any:
        return self.board.heater if name == "heater" else self.board.fan

    # -- inputs -----------------------------------------------------------------------------
    def on_reading(self, reading: Reading, now: float) -> None:
        with self._lock:
            if self.enabled["heater"]:
                self._apply("heater", self.heater.observe(reading.temperature_c, 0.0, now))
            if self.enabled["fan"]:
                self._apply("fan", self.fan.observe(reading.humidity, 0.0, now))

    def tick(self, latest: Reading | None, latest_at: float | None, now: float) -> None:
        with self._lock:
            if self.enabled["heater"]:
                self._apply("heater", self.heater.tick(now))
            if self.enabled["fan"]:
                self._apply("fan", self.fan.tick(now))

    def _apply(self, name: str, decision: Decision[Any]) -> None:
        relay = self._relay(name)
        want_on = decision.on and not self._shutdown
        try:
            if want_on and not relay.is_on:
                relay.on()
            elif not want_on and relay.is_on:
                relay.off()
        except Exception as exc:  # a relay that cannot be driven: make sure it's OFF, report
            log.error("%s relay: cannot switch (%s); forcing OFF", name, exc)
            self.all_off(f"{name} relay error")
            return
        if decision.changed:
            log.info("%s %s: %s", name, "ON" if want_on else "OFF", decision.reason)
            self._publish(
                "relay",
                {
                    "relay": name,
                    "on": want_on,
                    "reason": decision.reason,
                    "time": iso_utc(time.time_ns()),
                },
            )

    # -- requests from the socket -----------------------------------------------------------
    def set_mode(self, name: str, args: Mapping[str, Any], now: float) -> dict[str, Any]:
        mode = args.get("mode")
        if mode not in ("auto", "on", "off"):
            raise ProtocolError(protocol.INVALID_ARGS, "'mode' must be auto, on or off")
        for_s = args.get("for_s")
        until: float | None = None
        if for_s is not None:
            if (
                isinstance(for_s, bool)
                or not isinstance(for_s, (int, float))
                or not math.isfinite(for_s)
                or for_s <= 0
            ):
                raise ProtocolError(
                    protocol.INVALID_ARGS, "'for_s' must be a positive number of seconds"
                )
            until = now + float(for_s)
        if not self.enabled[name]:
            raise ProtocolError(
                protocol.REFUSED,
                f"the {name} is disabled ({name}.enabled is false); "
                f"enable it with 'filamentctl config set {name}.enabled true'",
            )
        controller = self.heater if name == "heater" else self.fan
        with self._lock:
            if self._shutdown:
                raise ProtocolError(protocol.REFUSED, "the service is stopping")
            try:
                result: RequestResult[Any] = controller.request(str(mode), until, now)
            except ValueError as exc:
                raise ProtocolError(protocol.INVALID_ARGS, str(exc)) from None
            self._apply(name, result.decision)
        if not result.accepted:
            raise ProtocolError(protocol.REFUSED, result.reason)
        log.info("%s %s requested%s", name, mode, f" for {for_s} s" if for_s else "")
        return self.relay_status(name, now)

    def reset(self, name: str, now: float) -> dict[str, Any]:
        controller = self.heater if name == "heater" else self.fan
        with self._lock:
            result: RequestResult[Any] = controller.reset(now)
            self._apply(name, result.decision)
        if not result.accepted:
            raise ProtocolError(protocol.REFUSED, result.reason)
        log.info("%s reset: %s", name, result.reason)
        return self.relay_status(name, now)

    # -- status -----------------------------------------------------------------------------
    def relay_status(self, name: str, now: float) -> dict[str, Any]:
        relay = self._relay(name)
        controller = self.heater if name == "heater" else self.fan
        with self._lock:
            st = controller.status(now).to_dict()
            level = relay.pin_level
            is_on = bool(relay.is_on)
        until = st.get("override_until")
        st["override_until"] = (
            iso_utc(int((self._wall() + until - now) * 1e9)) if until is not None else None
        )
        st.update(
            enabled=self.enabled[name],
            on=is_on,
            pin_level=level,
            gpio_pin=getattr(relay, "pin", None),
            active_high=getattr(relay, "active_high", None),
        )
        if not self.enabled[name]:
            st.update(mode="auto", reason=f"disabled ({name}.enabled is false)")
        return st

    def status(self, now: float) -> dict[str, Any]:
        return {"heater": self.relay_status("heater", now), "fan": self.relay_status("fan", now)}

    def heater_is_on(self) -> bool:
        return bool(self.board.heater.is_on)

    def fan_is_on(self) -> bool:
        return bool(self.board.fan.is_on)

    # -- the safety exit --------------------------------------------------------------------
    def all_off(self, reason: str) -> None:
        """Both relays OFF and stay OFF; never raises. Safe from a signal handler."""
        self._shutdown = True
        try:
            self.board.all_off()
        except Exception:  # all_off itself must never raise; belt and braces
            log.critical("could not switch the relays off (%s)", reason, exc_info=True)
            return
        log.info("relays OFF: %s", reason)

    def close(self) -> None:
        self.all_off("closing")
        try:
            self.board.close()
        except Exception:
            log.debug("relay close failed", exc_info=True)
