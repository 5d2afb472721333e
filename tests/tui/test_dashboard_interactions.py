"""Every dashboard interaction, driven with Textual's Pilot against a scripted service on a real
Unix socket (tests/tui/fakeserver.py): what the user sees, and what the service was asked."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Button, Digits

from filamentctl.tui.app import DashboardApp
from filamentctl.tui.screens.confirm import ConfirmScreen
from filamentctl.tui.screens.flush import FlushScreen
from filamentctl.tui.screens.help import HelpScreen
from filamentctl.tui.widgets.banner import ConnectionBanner
from filamentctl.tui.widgets.chart import HistoryChart
from filamentctl.tui.widgets.eventlog import EventLog
from filamentctl.tui.widgets.readings import ReadingsPanel
from filamentctl.tui.widgets.relay import RelayPanel
from tests.helpers import wait_until
from tests.tui.driving import dashboard, palette_offers, run, screen_text, wait_for
from tests.tui.fakeserver import FakeService


def log_text(app: DashboardApp) -> str:
    return "\n".join(app.dashboard.query_one(EventLog).entries)


def relay(app: DashboardApp, name: str) -> dict[str, Any]:
    return app.dashboard.query_one(f"#{name}", RelayPanel).state or {}


def set_requests(service: FakeService, relay_name: str) -> list[Any]:
    return [args.get("mode") for op, args in service.requests if op == f"{relay_name}.set"]


def test_live_values_status_and_storage_appear_on_connect(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await pilot.pause()
            assert app.dashboard.query_one("#temperature", Digits).value == "21.3"
            assert app.dashboard.query_one("#humidity", Digits).value == "41.2"
            text = screen_text(app)
            for expected in (
                "70.3 °F",
                "dew point 7.6 °C",
                "absolute 7.7 g/m³",
                "1013.2 hPa",
                "read 0.4 s ago",
                "OFF auto",
                "on < 20.0, off > 22.0, cutoff 60 °C",
                "ON  auto",
                "victoriametrics: connected",
                "backlog 3, oldest 12 s",
                "Temperature  19.0 – 21.3 °C",
                "connected to filamentctl 0.1.0 (simulated)",
            ):
                assert expected in text
            assert "DISCONNECTED" not in text
            assert (
                "history",
                {"since_s": 3600.0, "step_s": 5.0, "limit": 20000},
            ) in service.requests

    run(scenario)


def test_reading_and_relay_events_update_values_chart_and_log(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            before = len(app.dashboard.history)
            service.push(
                "reading",
                {
                    "time": "2026-11-23T18:40:42Z",
                    "time_ns": 1795459242000000000,
                    "seq": 61,
                    "temperature_c": 17.9,
                    "temperature_f": 64.2,
                    "humidity": 44.0,
                    "dew_point_c": 5.6,
                    "absolute_humidity_g_m3": 6.7,
                    "pressure_hpa": None,
                },
            )
            digits = app.dashboard.query_one("#temperature", Digits)
            await wait_for(pilot, lambda: digits.value == "17.9", "the new temperature")
            assert len(app.dashboard.query_one("#chart", HistoryChart).readings) == before + 1
            assert "hPa" not in screen_text(app)  # no pressure sensor: no pressure shown
            service.switch("heater", True, "auto: 17.9 °C < 20.0 °C", "2026-11-23T18:40:42Z")
            await wait_for(pilot, lambda: relay(app, "heater").get("on") is True, "heater ON")
            assert "18:40:42  heater ON: auto: 17.9 °C < 20.0 °C" in log_text(app)
            service.push("alert", {"kind": "retry", "message": "5 consecutive delivery failures"})
            service.push("sensor", {"event": "failed", "message": "no answer from the sensor"})
            await wait_for(pilot, lambda: "sensor: no answer" in log_text(app), "sensor line")
            assert "ALERT: 5 consecutive delivery failures" in log_text(app)

    run(scenario)


def test_h_asks_before_heater_on_and_y_switches_it_on(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
            assert "Switch the heater ON by hand?" in screen_text(app)
            assert set_requests(service, "heater") == []  # nothing sent before confirming
            await pilot.press("y")
            await wait_for(pilot, lambda: relay(app, "heater").get("on") is True, "heater ON")
            assert set_requests(service, "heater") == ["on"]
            assert "ON  manual on" in screen_text(app)

    run(scenario)


def test_n_cancels_heater_on_and_nothing_is_sent(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
            await pilot.press("n")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "closed")
            assert "heater ON cancelled" in log_text(app)
            assert set_requests(service, "heater") == []
            assert relay(app, "heater").get("on") is False

    run(scenario)


def test_h_cycles_heater_auto_on_off_auto(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press("h", "y")
            await wait_for(pilot, lambda: relay(app, "heater").get("override") == "on", "on")
            await pilot.press("h")  # on → off needs no confirmation
            await wait_for(pilot, lambda: relay(app, "heater").get("override") == "off", "off")
            await pilot.press("h")
            await wait_for(pilot, lambda: relay(app, "heater").get("mode") == "auto", "auto")
            assert set_requests(service, "heater") == ["on", "off", "auto"]

    run(scenario)


def test_f_cycles_fan_without_confirmation(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press("f")
            await wait_for(pilot, lambda: relay(app, "fan").get("override") == "on", "fan on")
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("f")
            await wait_for(pilot, lambda: relay(app, "fan").get("override") == "off", "fan off")
            await pilot.press("f")
            await wait_for(pilot, lambda: relay(app, "fan").get("mode") == "auto", "fan auto")
            assert set_requests(service, "fan") == ["on", "off", "auto"]
            assert "fan mode off: OFF, manual off" in log_text(app)

    run(scenario)


def test_panel_buttons_switch_relays_and_heater_on_is_confirmed(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.click("#fan-off")
            await wait_for(pilot, lambda: set_requests(service, "fan") == ["off"], "fan off")
            await pilot.click("#heater-on")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
            await pilot.click("#yes")
            await wait_for(pilot, lambda: relay(app, "heater").get("on") is True, "heater ON")
            assert set_requests(service, "heater") == ["on"]
            await pilot.click("#heater-auto")
            await wait_for(pilot, lambda: set_requests(service, "heater") == ["on", "auto"], "auto")

    run(scenario)


def test_r_resets_a_latched_heater_fault(service: FakeService, socket_path: Path) -> None:
    service.status["heater"].update(
        mode="fault",
        on=False,
        latched="temperature 61.0 °C ≥ cutoff 60.0 °C",
        reason="safety: latched fault",
    )

    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            assert "FAULT (r resets): temperature 61.0" in screen_text(app)
            assert app.dashboard.query_one("#heater", RelayPanel).has_class("-fault")
            await pilot.press("r")
            await wait_for(pilot, lambda: relay(app, "heater").get("mode") == "auto", "reset")
            assert [op for op in service.ops() if op.endswith(".reset")] == ["heater.reset"]
            assert "FAULT" not in screen_text(app)
            assert "heater reset: OFF, reset: back to automatic control" in log_text(app)

    run(scenario)


def test_reset_refused_by_the_service_shows_its_reason(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.click("#fan-reset")
            await wait_for(pilot, lambda: "fan.reset failed" in log_text(app), "the refusal")
            assert "the fan has no latched fault" in log_text(app)
            assert app.is_running  # a refusal is not a crash

    run(scenario)


@pytest.mark.parametrize("key", ["question_mark", "f1"])
def test_help_opens_on_question_mark_and_f1_and_closes_on_escape(
    service: FakeService, socket_path: Path, key: str
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
            assert "heater: auto → on → off → auto" in screen_text(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")

    run(scenario)


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
def test_q_quits(service: FakeService, socket_path: Path, key: str) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press(key)
            await wait_for(pilot, lambda: not app.is_running, "the app to exit")

    run(scenario)
    # The subscription ended with the app: the service has no subscriber left.
    wait_until(lambda: service.subscriber_count() == 0, what="the subscription to end")


def test_flush_from_the_palette_shows_progress_then_the_outcome(
    service: FakeService, socket_path: Path
) -> None:
    gate = threading.Event()
    service.flush_gate = gate

    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
            await pilot.press(*"flush")
            await wait_for(pilot, lambda: palette_offers(app, "Flush"), "Flush in the palette")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, FlushScreen), "the flush dialog")
            await wait_for(pilot, lambda: "Delivered 1 of 3" in screen_text(app), "progress")
            gate.set()
            await wait_for(pilot, lambda: "Done: 3 delivered, 0 left" in screen_text(app), "done")
            assert ("flush", {"timeout": 60}) in service.requests
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, FlushScreen), "closed")
            assert "flush: 3 delivered, 0 left" in log_text(app)

    run(scenario)


def test_c_switches_the_chart_range_and_reloads_history(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await pilot.press("c")
            await wait_for(
                pilot,
                lambda: (
                    ("history", {"since_s": 21600.0, "step_s": 30.0, "limit": 20000})
                    in service.requests
                ),
                "a 6 h history request",
            )
            await wait_for(pilot, lambda: "Last 6 h" in screen_text(app), "the 6 h title")

    run(scenario)


def test_t_switches_the_theme(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            before = app.theme
            await pilot.press("t")
            assert app.theme != before
            await pilot.press("t")
            assert app.theme == before

    run(scenario)


def test_service_going_away_shows_disconnected_then_reconnects(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            banner = app.dashboard.query_one(ConnectionBanner)
            service.stop()
            await wait_for(pilot, lambda: "DISCONNECTED" in screen_text(app), "the banner")
            assert app.dashboard.query_one(ReadingsPanel).stale
            assert "STALE" in screen_text(app)
            assert "21.3" == app.dashboard.query_one("#temperature", Digits).value  # last known
            await pilot.press("h")  # no crash and no dialog while disconnected
            assert not isinstance(app.screen, ConfirmScreen)
            service.status["reading"]["temperature_c"] = 22.8
            service.start()
            await wait_for(pilot, lambda: app.connected, "the reconnect")
            await wait_for(pilot, lambda: "DISCONNECTED" not in screen_text(app), "no banner")
            assert not banner.has_class("-shown")
            assert app.dashboard.query_one("#temperature", Digits).value == "22.8"
            assert "STALE" not in screen_text(app)
            assert log_text(app).count("connected to filamentctl") == 2
            assert service.ops().count("subscribe") >= 2

    run(scenario)


def test_no_service_at_start_shows_disconnected_and_keys_do_not_crash(
    socket_path: Path,
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24), connect=False) as (app, pilot):
            await wait_for(pilot, lambda: "DISCONNECTED" in screen_text(app), "the banner")
            assert "no filamentctl service is running" in screen_text(app)
            for key in ("h", "f", "r", "c"):
                await pilot.press(key)
            assert app.is_running
            assert isinstance(app.screen.query_one("#heater-on", Button), Button)

    run(scenario)


def test_odd_data_from_the_service_never_crashes_the_dashboard(
    service: FakeService, socket_path: Path
) -> None:
    """Wrong types where numbers or objects belong: shown as unknown, the app keeps running."""

    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40), tick_s=0.05) as (app, pilot):
            service.push(
                "reading",
                {
                    "time": "x",
                    "time_ns": "1",
                    "seq": "a",
                    "temperature_c": "hot",
                    "humidity": None,
                    "age_s": "n/a",
                },
            )
            service.push("relay", {"relay": "heater", "on": "yes", "reason": 5})
            service.push(
                "status",
                {"heater": "off", "fan": [1], "reading": "none", "storage": {"backlog": "many"}},
            )
            service.push("storage.rejected", "not an object")
            ticks = app.dashboard.ticks
            # Past a few ticks that age the (odd) reading and mark the panels.
            await wait_for(pilot, lambda: app.dashboard.ticks >= ticks + 3, "three more ticks")
            assert app.is_running
            service.push(
                "reading",
                {
                    "time": "2026-11-23T18:40:37.100000Z",
                    "time_ns": 1_795_459_237_100_000_000,
                    "seq": 99,
                    "temperature_c": 22.2,
                    "humidity": 40.0,
                },
            )
            await wait_for(
                pilot,
                lambda: app.dashboard.query_one("#temperature", Digits).value == "22.2",
                "a good reading after the odd ones",
            )

    run(scenario)
