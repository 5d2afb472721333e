"""Heater and fan control in a real in-process service: simulated box, gpiozero mock pins.

Most tests drive readings themselves: the sampler is set to read once at start and then every
hour, and the test calls ``service.sample_once`` — exactly one reading — so "within one reading"
is checked without any waiting. Timer-driven behaviour (staleness, override expiry) polls with a
generous timeout. Pin levels come from gpiozero's MockFactory, as a multimeter would see them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from filamentctl.client import Client, ServiceError
from filamentctl.core.reading import Reading
from filamentctl.protocol import ProtocolError
from filamentctl.service.app import Service
from filamentctl.service.control import ControlLoop
from tests.helpers import in_process_service, settings, wait_until

HEATER_PIN = 16
FAN_PIN = 20

# Band 18–22 °C, cutoff 40 °C; fan band 40–60 %RH; no minimum cycle so every crossing switches.
CONTROL = {
    "heater__enabled": True,
    "heater__gpio_pin": HEATER_PIN,
    "heater__min_temp_c": 18.0,
    "heater__max_temp_c": 22.0,
    "heater__cutoff_temp_c": 40.0,
    "heater__min_cycle_s": 0.0,
    "fan__enabled": True,
    "fan__gpio_pin": FAN_PIN,
    "fan__min_humidity": 40.0,
    "fan__max_humidity": 60.0,
    "fan__min_cycle_s": 0.0,
}
# The test takes the readings: one at start, then none for an hour (and none goes stale).
MANUAL_READINGS = {"sensor__read_interval": 3600.0, "sensor__stale_after": 7200.0}


def control_settings(**overrides: Any) -> dict[str, Any]:
    return settings(**{**CONTROL, **MANUAL_READINGS, **overrides})


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


@pytest.fixture
def service(factory: MockFactory) -> Iterator[Service]:
    with in_process_service(control_settings(), pin_factory=factory) as svc:
        # The sampler's own first read is held back until a second one agrees (it reads once
        # an hour here): take that second one now.
        wait_until(lambda: svc.box is not None and svc.box.reads >= 1, what="the first read")
        svc.sample_once(None)
        wait_until(lambda: svc.readings_total >= 1, what="the first reading")
        yield svc


def level(factory: MockFactory, pin: int) -> int:
    return 1 if factory.pin(pin).state else 0


def reading_at(
    svc: Service, temperature: float | None = None, humidity: float | None = None
) -> None:
    """Pin the simulated box to these values and take exactly one reading."""
    svc.box.set(temperature_c=temperature, humidity=humidity)
    svc.filter.trust_next()  # as `sim set` does: a deliberate change, not a jump to confirm
    svc.sample_once(None)
    if temperature is not None:
        assert svc.latest is not None and svc.latest.temperature_c == temperature


def call(svc: Service, op: str, **args: Any) -> Any:
    with Client.connect(svc.paths.socket, timeout=5.0) as client:
        return client.call(op, args)


def refused(svc: Service, op: str, **args: Any) -> str:
    with pytest.raises(ServiceError) as info:
        call(svc, op, **args)
    assert info.value.code == "refused", info.value
    return str(info.value)


# --------------------------------------------------------------------------- heater hysteresis


def test_heater_turns_on_within_one_reading_below_the_band(
    service: Service, factory: MockFactory
) -> None:
    reading_at(service, temperature=17.0)

    assert level(factory, HEATER_PIN) == 1
    heater = service.status()["heater"]
    assert (heater["on"], heater["pin_level"], heater["mode"]) == (True, 1, "auto")
    assert heater["reason"] == "auto: 17.0 °C < 18.0 °C"


def test_heater_turns_off_within_one_reading_above_the_band(
    service: Service, factory: MockFactory
) -> None:
    reading_at(service, temperature=17.0)
    assert level(factory, HEATER_PIN) == 1

    reading_at(service, temperature=23.0)

    assert level(factory, HEATER_PIN) == 0
    heater = service.status()["heater"]
    assert (heater["on"], heater["pin_level"]) == (False, 0)
    assert heater["reason"] == "auto: 23.0 °C > 22.0 °C"


@pytest.mark.parametrize(("before", "expected_level"), [(17.0, 1), (23.0, 0)], ids=["on", "off"])
def test_heater_inside_the_band_stays_as_it_was(
    service: Service, factory: MockFactory, before: float, expected_level: int
) -> None:
    reading_at(service, temperature=before)

    for temperature in (20.0, 18.0, 22.0):  # inside, and exactly on both thresholds
        reading_at(service, temperature=temperature)
        assert level(factory, HEATER_PIN) == expected_level, temperature
    assert "staying" in service.status()["heater"]["reason"]


def test_active_low_wiring_inverts_the_pin_levels() -> None:
    factory = MockFactory()
    values = control_settings(heater__active_high=False, fan__active_high=False)
    with in_process_service(values, pin_factory=factory) as svc:
        wait_until(lambda: svc.box is not None and svc.box.reads >= 1, what="the first read")
        reading_at(svc, temperature=23.0, humidity=50.0)
        # OFF is the HIGH level on an active-low board.
        assert (level(factory, HEATER_PIN), level(factory, FAN_PIN)) == (1, 1)
        status = svc.status()
        assert (status["heater"]["on"], status["heater"]["pin_level"]) == (False, 1)
        assert (status["fan"]["on"], status["fan"]["pin_level"]) == (False, 1)

        reading_at(svc, temperature=17.0, humidity=70.0)

        assert (level(factory, HEATER_PIN), level(factory, FAN_PIN)) == (0, 0)
        status = svc.status()
        assert (status["heater"]["on"], status["heater"]["pin_level"]) == (True, 0)
        assert (status["fan"]["on"], status["fan"]["pin_level"]) == (True, 0)


# --------------------------------------------------------------------------- fan hysteresis


def test_fan_on_above_max_humidity_off_below_min_unchanged_inside(
    service: Service, factory: MockFactory
) -> None:
    reading_at(service, humidity=65.0)
    assert level(factory, FAN_PIN) == 1
    assert service.status()["fan"]["reason"] == "auto: 65.0 % > 60.0 %"

    for humidity in (50.0, 40.0, 60.0):
        reading_at(service, humidity=humidity)
        assert level(factory, FAN_PIN) == 1, humidity

    reading_at(service, humidity=35.0)
    assert level(factory, FAN_PIN) == 0
    assert service.status()["fan"]["reason"] == "auto: 35.0 % < 40.0 %"

    for humidity in (50.0, 40.0, 60.0):
        reading_at(service, humidity=humidity)
        assert level(factory, FAN_PIN) == 0, humidity


# --------------------------------------------------------------------------- safety


def test_stale_sensor_turns_heater_off_and_control_resumes_when_cleared() -> None:
    factory = MockFactory()
    # The sampler really runs here. The box sits at a 22 °C room, below a 25–28 °C band, so
    # automatic control wants the heater ON whenever readings are fresh.
    values = control_settings(
        sensor__read_interval=0.1,
        sensor__stale_after=1.0,
        heater__min_temp_c=25.0,
        heater__max_temp_c=28.0,
    )
    with in_process_service(values, pin_factory=factory) as svc:
        wait_until(lambda: level(factory, HEATER_PIN) == 1, what="heater ON in a cold box")

        call(svc, "sim.set", fault="stale")

        wait_until(lambda: level(factory, HEATER_PIN) == 0, what="heater OFF on a stale sensor")
        heater = svc.status()["heater"]
        assert (heater["on"], heater["mode"]) == (False, "fault")
        assert heater["reason"].startswith("safety: ")
        assert "old" in heater["reason"] or "no reading" in heater["reason"]
        assert "cannot be switched on" in refused(svc, "heater.set", mode="on")

        call(svc, "sim.clear")

        wait_until(lambda: level(factory, HEATER_PIN) == 1, what="heater back under control")
        heater = svc.status()["heater"]
        assert (heater["on"], heater["mode"]) == (True, "auto")


def test_cutoff_during_manual_on_latches_until_reset(
    service: Service, factory: MockFactory
) -> None:
    reading_at(service, temperature=20.0)
    assert level(factory, HEATER_PIN) == 0
    state = call(service, "heater.set", mode="on")
    assert (state["on"], state["mode"], level(factory, HEATER_PIN)) == (True, "manual", 1)

    reading_at(service, temperature=41.0)

    assert level(factory, HEATER_PIN) == 0
    heater = service.status()["heater"]
    assert (heater["on"], heater["mode"]) == (False, "fault")
    assert "41.0 °C ≥ cutoff 40.0 °C" in heater["reason"]
    assert "latched" in refused(service, "heater.set", mode="on")
    assert "cutoff" in refused(service, "heater.reset")  # still too hot to reset

    reading_at(service, temperature=20.0)  # cooled down: still latched
    assert level(factory, HEATER_PIN) == 0
    assert service.status()["heater"]["mode"] == "fault"
    assert "latched" in refused(service, "heater.set", mode="on")

    state = call(service, "heater.reset")

    # The latch cancelled the manual ON: back in auto, inside the band, so still OFF.
    assert (state["mode"], state["on"], level(factory, HEATER_PIN)) == ("auto", False, 0)
    state = call(service, "heater.set", mode="on")
    assert (state["mode"], state["on"], level(factory, HEATER_PIN)) == ("manual", True, 1)


def test_manual_override_with_expiry_returns_to_auto_on_the_timer(
    service: Service, factory: MockFactory
) -> None:
    reading_at(service, temperature=17.0)
    assert level(factory, HEATER_PIN) == 1

    state = call(service, "heater.set", mode="off", for_s=0.5)

    assert (state["on"], state["mode"], level(factory, HEATER_PIN)) == (False, "manual", 0)
    assert state["override_until"] is not None
    # No new reading arrives: the control timer alone ends the override.
    wait_until(lambda: level(factory, HEATER_PIN) == 1, what="override expiry")
    heater = service.status()["heater"]
    assert (heater["mode"], heater["override_until"]) == ("auto", None)
    assert "manual off expired" in heater["reason"]


def test_auto_request_re_evaluates_at_once(service: Service, factory: MockFactory) -> None:
    reading_at(service, temperature=17.0)
    call(service, "heater.set", mode="off")
    assert level(factory, HEATER_PIN) == 0

    state = call(service, "heater.set", mode="auto")

    assert (state["mode"], state["on"], level(factory, HEATER_PIN)) == ("auto", True, 1)


def test_status_shows_heater_and_fan_sections(service: Service) -> None:
    reading_at(service, temperature=17.0, humidity=50.0)
    call(service, "fan.set", mode="on", for_s=3600)

    status = call(service, "status")

    for name in ("heater", "fan"):
        section = status[name]
        assert {"on", "pin_level", "mode", "reason", "override_until", "thresholds"} <= set(section)
        assert section["pin_level"] in (0, 1)
        assert section["mode"] in ("auto", "manual", "fault")
    assert status["heater"]["thresholds"]["min_temp_c"] == 18.0
    assert status["heater"]["thresholds"]["cutoff_temp_c"] == 40.0
    assert status["fan"]["thresholds"]["max_humidity"] == 60.0
    assert status["fan"]["mode"] == "manual"
    assert status["fan"]["override_until"].endswith("Z")  # a UTC time a script can parse
    assert status["heater"]["override_until"] is None


def test_disabled_fan_claims_no_pin_and_refuses_on(factory: MockFactory) -> None:
    with in_process_service(control_settings(fan__enabled=False), pin_factory=factory) as svc:
        reading_at(svc, humidity=90.0)

        fan = svc.status()["fan"]
        assert (fan["enabled"], fan["on"], fan["pin_level"]) == (False, False, None)
        assert "disabled" in refused(svc, "fan.set", mode="on")
        assert factory.pin(FAN_PIN).function == "input"  # never claimed as an output


def test_invalid_request_arguments_are_invalid_args(service: Service) -> None:
    for args in ({"mode": "blast"}, {"mode": "on", "for_s": -1}, {"mode": "auto", "for_s": 60}):
        with pytest.raises(ServiceError) as info:
            call(service, "heater.set", **args)
        assert info.value.code == "invalid_args", args


# --------------------------------------------------------------------------- relays that misbehave


class GatedPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type hints
    """A mock pin whose driver can be made to hang or fail when switched to ``hold_level``.

    Stands in for a broken or stuck GPIO driver, which no real counterpart can produce on demand.
    """

    gate: threading.Event | None = None  # set on the class by the test; None: no hang
    fail = False
    hold_level = True
    entered = threading.Event()

    def _set_state(self, value: bool) -> None:
        if bool(value) == type(self).hold_level and self.function == "output":
            type(self).entered.set()
            if type(self).fail:
                raise OSError(5, "Input/output error")
            gate = type(self).gate
            if gate is not None:
                gate.wait(timeout=30)
        super()._set_state(value)


@pytest.fixture
def gated() -> Iterator[type[GatedPin]]:
    cls = type("Gated", (GatedPin,), {"entered": threading.Event()})
    yield cls


def _reading(temperature: float, humidity: float) -> Reading:
    return Reading(0, 1, temperature, humidity)


def test_all_off_wins_over_a_switching_already_under_way(gated: type[GatedPin]) -> None:
    factory = MockFactory(pin_class=gated)
    gated.gate = threading.Event()
    loop = ControlLoop(control_settings(fan__enabled=False), clock=lambda: 0.0, pin_factory=factory)
    try:
        # The sampler thread starts switching the heater ON and its driver hangs mid-way...
        sampler = threading.Thread(target=loop.on_reading, args=(_reading(17.0, 50.0), 0.0))
        sampler.start()
        assert gated.entered.wait(10)

        loop.all_off("signal SIGTERM")  # ...when the signal handler switches everything OFF.

        gated.gate.set()  # the hung switching now completes
        sampler.join(10)
        assert level(factory, HEATER_PIN) == 0
        loop.tick(1.0)
        loop.on_reading(_reading(17.0, 50.0), 2.0)
        assert level(factory, HEATER_PIN) == 0  # nothing switches ON after all_off
        with pytest.raises(ProtocolError, match="stopping"):
            loop.set_mode("heater", {"mode": "on"}, 3.0)
    finally:
        gated.gate.set()
        loop.close()


def test_relay_that_cannot_be_switched_leaves_both_off_and_reports_a_fault(
    gated: type[GatedPin],
) -> None:
    factory = MockFactory(pin_class=gated)
    gated.fail = True
    values = control_settings(heater__min_temp_c=25.0, heater__max_temp_c=28.0)
    with in_process_service(values, pin_factory=factory) as svc:
        # 22 °C box: the heater is asked ON and its pin fails; the fan must not stay ON either.
        wait_until(lambda: svc.box is not None and svc.box.reads >= 1, what="the first read")
        svc.sample_once(None)  # confirms the first read: the heater is asked ON
        wait_until(lambda: svc.control.failure, what="the relay failure")
        reading_at(svc, temperature=17.0, humidity=90.0)

        assert (level(factory, HEATER_PIN), level(factory, FAN_PIN)) == (0, 0)
        heater = svc.status()["heater"]
        assert heater["mode"] == "fault"
        assert "heater relay could not be switched" in heater["reason"]
        assert svc.control.healthy() is False
        assert "restart" in refused(svc, "fan.set", mode="on")


def test_changed_thresholds_apply_at_once_and_disabling_switches_off(
    service: Service, factory: MockFactory
) -> None:
    reading_at(service, temperature=20.0)
    assert level(factory, HEATER_PIN) == 0

    service.control.reconfigure(control_settings(heater__min_temp_c=21.0), service.clock())

    assert level(factory, HEATER_PIN) == 1  # 20 °C is now below the band, no new reading needed
    assert service.status()["heater"]["thresholds"]["min_temp_c"] == 21.0

    service.control.reconfigure(
        control_settings(heater__min_temp_c=21.0, heater__enabled=False), service.clock()
    )

    assert level(factory, HEATER_PIN) == 0
    reading_at(service, temperature=10.0)
    assert level(factory, HEATER_PIN) == 0
    assert "disabled" in refused(service, "heater.set", mode="on")
    with pytest.raises(ValueError):
        service.control.reconfigure(control_settings(heater__max_temp_c=50.0), service.clock())
