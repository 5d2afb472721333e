"""Relays on gpiozero's real MockFactory: levels a multimeter on the pin would show."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from filamentctl.errors import UserError
from filamentctl.hw.relays import DisabledRelay, Relay, RelayBoard, make_pin_factory

HEATER_PIN = 17
FAN_PIN = 27


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    mock = MockFactory()
    Device.pin_factory = mock
    try:
        yield mock
    finally:
        mock.reset()
        Device.pin_factory = previous


def settings(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "heater.enabled": True,
        "heater.gpio_pin": HEATER_PIN,
        "heater.active_high": True,
        "fan.enabled": True,
        "fan.gpio_pin": FAN_PIN,
        "fan.active_high": True,
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return base


def level(factory: MockFactory, pin: int) -> int:
    return 1 if factory.pin(pin).state else 0


@pytest.mark.parametrize(
    ("active_high", "off_level", "on_level"),
    [(True, 0, 1), (False, 1, 0)],
    ids=["active-high", "active-low"],
)
def test_relay_starts_off_and_switches_to_the_wired_levels(
    factory: MockFactory, active_high: bool, off_level: int, on_level: int
) -> None:
    relay = Relay("heater", HEATER_PIN, active_high)
    assert (relay.is_on, relay.pin_level, level(factory, HEATER_PIN)) == (
        False,
        off_level,
        off_level,
    )
    relay.on()
    assert (relay.is_on, relay.pin_level, level(factory, HEATER_PIN)) == (True, on_level, on_level)
    relay.off()
    assert (relay.is_on, relay.pin_level, level(factory, HEATER_PIN)) == (
        False,
        off_level,
        off_level,
    )
    relay.close()


@pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
def test_active_low_relay_is_never_energised_while_being_created(
    factory: MockFactory, active_high: bool
) -> None:
    # With initial_value=None gpiozero would leave an active-low relay ON; every level the
    # device itself drove must be the OFF level.
    Relay("fan", FAN_PIN, active_high)
    off = not active_high
    # states[0] is the mock's idle level before any device existed; the rest were driven.
    driven = [s.state for s in factory.pin(FAN_PIN).states[1:]]
    assert all(bool(state) == off for state in driven)
    assert bool(factory.pin(FAN_PIN).state) == off


@pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
def test_close_drives_the_relay_off_before_releasing_the_pin(
    factory: MockFactory, active_high: bool
) -> None:
    relay = Relay("heater", HEATER_PIN, active_high)
    relay.on()
    relay.close()
    assert level(factory, HEATER_PIN) == (0 if active_high else 1)
    assert relay.pin_level is None
    relay.close()  # twice is harmless


@pytest.mark.parametrize(
    ("heater_on", "fan_on"),
    [(False, False), (True, False), (False, True), (True, True)],
)
@pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
def test_all_off_leaves_both_relays_off_from_any_state(
    factory: MockFactory, active_high: bool, heater_on: bool, fan_on: bool
) -> None:
    board = RelayBoard.from_settings(
        settings(heater__active_high=active_high, fan__active_high=active_high)
    )
    if heater_on:
        board.heater.on()
    if fan_on:
        board.fan.on()
    assert board.all_off() is True
    off_level = 0 if active_high else 1
    assert (level(factory, HEATER_PIN), level(factory, FAN_PIN)) == (off_level, off_level)
    assert (board.heater.is_on, board.fan.is_on) == (False, False)
    board.close()


def test_board_wires_each_relay_with_its_own_polarity(factory: MockFactory) -> None:
    board = RelayBoard.from_settings(settings(heater__active_high=False, fan__active_high=True))
    assert (board.heater.pin_level, board.fan.pin_level) == (1, 0)
    board.heater.on()
    board.fan.on()
    assert (level(factory, HEATER_PIN), level(factory, FAN_PIN)) == (0, 1)
    board.close()


def test_all_off_never_raises_and_still_switches_the_other_relay(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenRelay(DisabledRelay):
        # Stand-in for a relay whose driver fails; no real device can be made to fail on demand.
        def off(self) -> None:
            raise OSError("GPIO chip went away")

    fan = Relay("fan", FAN_PIN, True)
    fan.on()
    board = RelayBoard(BrokenRelay("heater"), fan)
    with caplog.at_level(logging.ERROR, logger="filamentctl.relays"):
        assert board.all_off() is False
    assert level(factory, FAN_PIN) == 0
    assert "could not switch the heater relay OFF" in caplog.text
    assert board.close() is False


def test_pin_already_in_use_is_a_one_line_user_error(factory: MockFactory) -> None:
    first = Relay("heater", HEATER_PIN, True)
    with pytest.raises(UserError) as info:
        Relay("fan", HEATER_PIN, True)
    message = str(info.value)
    assert "GPIO 17 is already in use" in message and "fan.gpio_pin" in message
    assert "\n" not in message
    first.close()


def test_board_refuses_heater_and_fan_on_the_same_pin(factory: MockFactory) -> None:
    with pytest.raises(UserError, match="each relay needs its own pin"):
        RelayBoard.from_settings(settings(fan__gpio_pin=HEATER_PIN))


def test_failed_fan_relay_releases_the_heater_pin(factory: MockFactory) -> None:
    blocker = Relay("other", FAN_PIN, True)
    with pytest.raises(UserError, match="GPIO 27 is already in use"):
        RelayBoard.from_settings(settings())
    # The heater pin was released, so it can be claimed again.
    Relay("heater", HEATER_PIN, True).close()
    blocker.close()


def test_invalid_pin_is_a_user_error(factory: MockFactory) -> None:
    with pytest.raises(UserError, match="check heater.gpio_pin"):
        Relay("heater", 99, True)


def test_no_gpio_library_is_a_user_error_pointing_to_simulate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This machine is not a Pi: with no factory set and every library failing, gpiozero raises
    # BadPinFactory. Force that selection rather than rely on which libraries are installed.
    previous = Device.pin_factory
    Device.pin_factory = None
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    try:
        with pytest.raises(UserError, match="--simulate"):
            Relay("heater", HEATER_PIN, True)
    finally:
        Device.pin_factory = previous


def test_disabled_relays_claim_no_pin_and_stay_off(factory: MockFactory) -> None:
    board = RelayBoard.from_settings(
        settings(heater__enabled=False, fan__enabled=False, fan__gpio_pin=HEATER_PIN)
    )
    board.heater.on()
    assert (board.heater.is_on, board.heater.pin_level, board.heater.pin) == (False, None, None)
    # Nothing claimed GPIO 17: a real relay can take it.
    Relay("heater", HEATER_PIN, True).close()
    assert board.all_off() is True


def test_simulate_uses_gpiozero_mock_pins() -> None:
    mock = make_pin_factory(simulate=True)
    assert isinstance(mock, MockFactory)
    relay = Relay("heater", HEATER_PIN, False, pin_factory=mock)
    relay.on()
    assert mock.pin(HEATER_PIN).state == 0
    relay.close()
    mock.reset()
    assert make_pin_factory(simulate=False) is None
