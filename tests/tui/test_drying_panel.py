"""The dashboard's Drying panel: hidden while idle, a session's progress, start from a material
picker (``d`` or the palette), stop from the panel's button or ``d``. Driven with Pilot against
the scripted service on a real Unix socket (tests/tui/fakeserver.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from filamentctl.tui.app import DashboardApp
from filamentctl.tui.screens.confirm import ConfirmScreen
from filamentctl.tui.screens.drying import DryStartScreen
from filamentctl.tui.widgets.drying import DryingPanel
from filamentctl.tui.widgets.eventlog import EventLog
from tests.tui.driving import (
    dashboard,
    palette_offers,
    requests_answered,
    run,
    screen_text,
    wait_for,
)
from tests.tui.fakeserver import FakeService, drying_section


def panel(app: DashboardApp) -> DryingPanel:
    return app.dashboard.query_one(DryingPanel)


def log_text(app: DashboardApp) -> str:
    return "\n".join(line.text for line in app.dashboard.query_one(EventLog).lines)


def test_the_panel_is_hidden_while_no_session_runs(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await pilot.pause()
            assert panel(app).display is False
            assert "Drying" not in screen_text(app)

    run(scenario)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_a_running_session_shows_target_progress_end_and_water(
    service: FakeService, socket_path: Path, size: tuple[int, int]
) -> None:
    service.status["drying"] = drying_section("PLA", elapsed_s=7200.0)

    async def scenario() -> None:
        async with dashboard(socket_path, size=size) as (app, pilot):
            await pilot.pause()
            assert panel(app).display is True
            text = screen_text(app)
            for expected in (
                "Drying",
                "PLA at 50 °C (of 55)",
                "[###.........]  25% 2h/8h",
                "ends by 01:10, or once dry",
                "water ≥ 1.1 ± 0.2 g · closed",
                "Stop",
            ):
                assert expected in text, (expected, text)

    run(scenario)


def test_d_picks_a_material_and_starts_drying(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DryStartScreen), "the picker")
            await pilot.pause()
            text = screen_text(app)
            assert "PLA      55 °C → 50 °C  4h–8h" in text
            assert "TPU      45 °C" in text and "cap 50 °C: dry.max_temp_c" in text
            await pilot.press("enter")  # the first profile
            await wait_for(pilot, lambda: "dry.start" in service.ops(), "dry.start")
            assert ("dry.start", {"material": "PLA"}) in service.requests
            await wait_for(pilot, lambda: panel(app).display is True, "the panel")
            await wait_for(pilot, lambda: "drying PLA at 50 °C" in log_text(app), "the event")

    run(scenario)


def test_escape_cancels_the_picker(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DryStartScreen), "the picker")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, DryStartScreen), "closed")
            await pilot.pause()  # the picker's answer is handled
            await wait_for(pilot, lambda: requests_answered(app), "the requests' replies")
            assert "dry.start" not in service.ops()

    run(scenario)


def test_the_stop_button_ends_the_session(service: FakeService, socket_path: Path) -> None:
    service.status["drying"] = drying_section("PETG")

    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await wait_for(pilot, lambda: panel(app).display is True, "the panel")
            await pilot.click("#dry-stop")
            await wait_for(pilot, lambda: "dry.stop" in service.ops(), "dry.stop")
            await wait_for(pilot, lambda: panel(app).display is False, "the panel to hide")
            await wait_for(
                pilot, lambda: "drying PETG ended (stopped)" in log_text(app), "the ended event"
            )

    run(scenario)


def test_d_during_a_session_asks_before_stopping(service: FakeService, socket_path: Path) -> None:
    service.status["drying"] = drying_section("PLA")

    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await wait_for(pilot, lambda: panel(app).display is True, "the panel")
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            assert "Stop drying PLA now?" in screen_text(app)
            await pilot.press("n")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "closed")
            await pilot.pause()  # the answer is handled
            await wait_for(pilot, lambda: requests_answered(app), "the requests' replies")
            assert "dry.stop" not in service.ops()
            await pilot.press("d", "y")
            await wait_for(pilot, lambda: "dry.stop" in service.ops(), "dry.stop")

    run(scenario)


def test_the_palette_offers_drying(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(120, 40)) as (app, pilot):
            await pilot.press("ctrl+p")
            await pilot.press(*"dry start")
            await wait_for(pilot, lambda: palette_offers(app, "Dry: start"), "Dry: start offered")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DryStartScreen), "the picker")

    run(scenario)
