"""``filamentctl relays-off``: drive this box's relay pins to OFF directly, without the service.

systemd runs it as ``ExecStopPost=`` after the service ended in any way, including the ways the
service cannot handle itself (SIGKILL, the OOM killer, a hang ended by the watchdog). So it
refuses nothing and needs nothing the service might have broken: the pins come from the record
the service writes at start (``store.pins``), or from the configuration when there is no record;
it never talks to the socket and takes no lock.

Each pin is claimed through gpiozero (``GPIOZERO_PIN_FACTORY`` is honoured, so tests use the
mock factory) with its OFF level as the initial value, read back, and released. What a released
pin does next is up to the GPIO driver: on a Raspberry Pi the line normally keeps the level last
driven, which is why this runs last — but a pin is only software, so docs/control.md asks for a
thermal fuse or thermostat in series with the heater.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from filamentctl.paths import Paths
from filamentctl.store.pins import PinRecord, PinSpec

log = logging.getLogger("filamentctl.relays")


@dataclass(frozen=True, slots=True)
class PinResult:
    relay: str
    gpio_pin: int
    active_high: bool
    level: int | None  # read back after driving it; None when it could not be driven
    error: str | None

    @property
    def off(self) -> bool:
        return self.error is None and self.level == (0 if self.active_high else 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "relay": self.relay,
            "gpio_pin": self.gpio_pin,
            "active_high": self.active_high,
            "level": self.level,
            "off": self.off,
            "error": self.error,
        }


def known_pins(paths: Paths) -> tuple[PinRecord | None, str]:
    """The relay pins of this box and where they came from ("record" or "configuration"), or
    (None, why not)."""
    record = PinRecord.load(paths.state_dir)
    if record is not None:
        return record, "record"
    from filamentctl.store.settings import load_settings

    try:
        settings = load_settings(paths, check_rules=False)
    except Exception as exc:  # no key, a damaged file: there is simply nothing to go on
        return None, f"no pin record in {paths.state_dir} and the configuration: {exc}"
    return PinRecord.from_settings(settings), "configuration"


def drive_off(spec: PinSpec, pin_factory: Any = None) -> PinResult:
    """Claim one pin at its OFF level, read the level back, release it. Never raises."""
    try:
        from gpiozero import OutputDevice

        device = OutputDevice(
            spec.pin, active_high=spec.active_high, initial_value=False, pin_factory=pin_factory
        )
    except Exception as exc:
        busy = " (is the service still running? it holds its pins)" if "in use" in str(exc) else ""
        return PinResult(spec.name, spec.pin, spec.active_high, None, f"{exc}{busy}")
    try:
        device.off()
        level = 1 if device.pin.state else 0
    except Exception as exc:
        return PinResult(spec.name, spec.pin, spec.active_high, None, str(exc))
    finally:
        try:
            device.close()
        except Exception:
            log.debug("releasing GPIO %d failed", spec.pin, exc_info=True)
    return PinResult(spec.name, spec.pin, spec.active_high, level, None)


def relays_off(paths: Paths, pin_factory: Any = None) -> tuple[list[PinResult], str]:
    """Drive every known relay pin OFF; returns the results and where the pins came from.

    An empty list with the reason when no pin is known (the service never ran here and the
    configuration cannot be read, or no relay is enabled).
    """
    record, source = known_pins(paths)
    if record is None:
        return [], source
    return [drive_off(spec, pin_factory) for spec in record.relays], source
