"""Heater and fan relays on GPIO pins, through gpiozero (imported lazily).

Each relay is one gpiozero ``OutputDevice`` created with ``initial_value=False``, so it starts
OFF whatever the wiring: with ``active_high=False`` (common active-low relay boards) OFF is
electrical level 1. ``--simulate`` uses gpiozero's own ``MockFactory``, so the simulated service
runs the same code as a Raspberry Pi. A relay that is disabled in the settings is a
:class:`DisabledRelay`: always OFF, no pin claimed.

:meth:`RelayBoard.all_off` is the safety path used by every way the service ends; it never
raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from filamentctl.errors import UserError

log = logging.getLogger("filamentctl.relays")


class RelayLike(Protocol):
    """What the service needs from a relay."""

    @property
    def name(self) -> str: ...

    @property
    def pin(self) -> int | None: ...

    @property
    def is_on(self) -> bool: ...

    @property
    def pin_level(self) -> int | None: ...

    def on(self) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None: ...


def make_pin_factory(simulate: bool) -> Any:
    """gpiozero's ``MockFactory`` when simulating, else None (gpiozero picks the Pi's library)."""
    if not simulate:
        return None
    from gpiozero.pins.mock import MockFactory

    return MockFactory()


class Relay:
    """One relay on a GPIO pin (BCM numbering), created OFF.

    Raises UserError (one line: what, why, what to do) when the pin is in use, invalid, or no
    GPIO library can drive it on this machine.
    """

    def __init__(
        self, name: str, pin: int, active_high: bool = True, pin_factory: Any = None
    ) -> None:
        from gpiozero import OutputDevice
        from gpiozero.exc import BadPinFactory, GPIOPinInUse, GPIOZeroError

        self._name = name
        self._pin = pin
        self._active_high = active_high
        try:
            self._device = OutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            )
        except GPIOPinInUse:
            raise UserError(
                f"cannot drive the {name} relay: GPIO {pin} is already in use (by the other "
                f"relay or another program); choose a different {name}.gpio_pin"
            ) from None
        except BadPinFactory:
            raise UserError(
                f"cannot drive the {name} relay on GPIO {pin}: no GPIO library works on this "
                "machine; on a Raspberry Pi install python3-lgpio, elsewhere use "
                "'filamentctl run --simulate'"
            ) from None
        except GPIOZeroError as exc:
            raise UserError(
                f"cannot drive the {name} relay on GPIO {pin}: {exc}; check {name}.gpio_pin"
            ) from None
        log.debug(
            "%s relay on GPIO %d (%s) initialised OFF",
            name,
            pin,
            "active-high" if active_high else "active-low",
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def pin(self) -> int | None:
        return self._pin

    @property
    def active_high(self) -> bool:
        return self._active_high

    def on(self) -> None:
        self._device.on()

    def off(self) -> None:
        self._device.off()

    @property
    def is_on(self) -> bool:
        """The logical state (ON = relay energised), whatever the wiring."""
        return bool(self._device.value)

    @property
    def pin_level(self) -> int | None:
        """The electrical level on the pin, 0 or 1 (None once closed)."""
        if self._device.closed:
            return None
        return 1 if self._device.pin.state else 0

    def close(self) -> None:
        """Drive the relay OFF, then release the pin. Safe to call twice."""
        if self._device.closed:
            return
        try:
            self._device.off()
        finally:
            self._device.close()


class DisabledRelay:
    """A relay switched off in the settings: claims no pin, is always OFF, ignores ``on()``."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def pin(self) -> int | None:
        return None

    @property
    def is_on(self) -> bool:
        return False

    @property
    def pin_level(self) -> int | None:
        return None

    def on(self) -> None:
        # The controller never asks a disabled heater to turn on; if something does, OFF wins.
        pass

    def off(self) -> None:
        pass

    def close(self) -> None:
        pass


class RelayBoard:
    """The heater and fan relays of one box."""

    def __init__(self, heater: RelayLike, fan: RelayLike) -> None:
        self.heater = heater
        self.fan = fan

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], pin_factory: Any = None) -> RelayBoard:
        """Create both relays OFF from ``heater.*`` / ``fan.*`` settings.

        Raises UserError when both enabled relays share a pin, or when a pin cannot be driven
        (any relay already created is closed first, so nothing is left claimed).
        """
        heater_on = bool(settings["heater.enabled"])
        fan_on = bool(settings["fan.enabled"])
        if (
            heater_on
            and fan_on
            and int(settings["heater.gpio_pin"]) == int(settings["fan.gpio_pin"])
        ):
            raise UserError(
                f"heater.gpio_pin and fan.gpio_pin are both GPIO {settings['heater.gpio_pin']}; "
                "each relay needs its own pin"
            )
        heater: RelayLike = DisabledRelay("heater")
        if heater_on:
            heater = Relay(
                "heater",
                int(settings["heater.gpio_pin"]),
                bool(settings["heater.active_high"]),
                pin_factory,
            )
        fan: RelayLike = DisabledRelay("fan")
        if fan_on:
            try:
                fan = Relay(
                    "fan",
                    int(settings["fan.gpio_pin"]),
                    bool(settings["fan.active_high"]),
                    pin_factory,
                )
            except BaseException:
                heater.close()
                raise
        return cls(heater, fan)

    @property
    def relays(self) -> tuple[RelayLike, RelayLike]:
        return (self.heater, self.fan)

    def all_off(self) -> bool:
        """Drive every relay OFF. Never raises; logs and returns False if any relay failed."""
        ok = True
        for relay in self.relays:
            try:
                relay.off()
            except Exception:
                ok = False
                # Keep going: one broken relay must not leave the other one ON.
                log.exception("could not switch the %s relay OFF", relay.name)
        if ok:
            log.info("all relays OFF")
        return ok

    def close(self) -> bool:
        """All relays OFF, then release the pins. Never raises; False if anything failed."""
        ok = self.all_off()
        for relay in self.relays:
            try:
                relay.close()
            except Exception:
                ok = False
                log.exception("could not release the %s relay", relay.name)
        return ok
