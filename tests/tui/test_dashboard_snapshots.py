"""The dashboard's screen, as plain text, at 80×24 and 120×40, compared with committed snapshots.

Clocks are frozen and the service is scripted, so the text is stable. After an intended change,
regenerate with ``FILAMENTCTL_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/tui`` and review
the diff of ``tests/tui/snapshots/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from filamentctl.tui.app import DashboardApp
from filamentctl.tui.screens.confirm import ConfirmScreen
from filamentctl.tui.screens.help import HelpScreen
from tests.tui.driving import dashboard, run, screen_text, update_snapshots, wait_for
from tests.tui.fakeserver import FakeService

SNAPSHOTS = Path(__file__).parent / "snapshots"


def check(name: str, text: str, socket_path: Path) -> None:
    # The socket directory is random but always the same length: mask it, keep the wrapping.
    text = text.replace(str(socket_path.parent), re.sub(r"[^/]", "X", str(socket_path.parent)))
    path = SNAPSHOTS / f"{name}.txt"
    if update_snapshots() or not path.exists():
        if not update_snapshots():
            pytest.fail(f"no snapshot {path.name}; create it with FILAMENTCTL_UPDATE_SNAPSHOTS=1")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8").rstrip("\n")
    assert text == expected, f"screen differs from {path.name} (see the diff above)"


async def settled(pilot: object, app: DashboardApp) -> None:
    await wait_for(pilot, lambda: app.connected and app.dashboard.history, "status and history")
    await wait_for(pilot, lambda: "Temperature  19.0" in screen_text(app), "the chart")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_dashboard_layout_connected(
    service: FakeService, socket_path: Path, size: tuple[int, int]
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=size) as (app, pilot):
            await settled(pilot, app)
            await pilot.pause()
            check(f"dashboard_{size[0]}x{size[1]}", screen_text(app), socket_path)

    run(scenario)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_dashboard_layout_disconnected(
    service: FakeService, socket_path: Path, size: tuple[int, int]
) -> None:
    async def scenario() -> None:
        async with dashboard(
            socket_path, size=size, reconnect_base_s=60.0, reconnect_max_s=60.0
        ) as (app, pilot):
            await settled(pilot, app)
            service.stop()
            await wait_for(pilot, lambda: "DISCONNECTED" in screen_text(app), "the banner")
            await pilot.pause()
            check(f"disconnected_{size[0]}x{size[1]}", screen_text(app), socket_path)

    run(scenario)


def test_confirm_dialog_and_help_at_80x24(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await settled(pilot, app)
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
            await pilot.pause()
            check("confirm_heater_on_80x24", screen_text(app), socket_path)
            await pilot.press("n", "f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
            await pilot.pause()
            check("help_80x24", screen_text(app), socket_path)

    run(scenario)


def test_no_color_keeps_every_state_readable(
    service: FakeService, socket_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without colour, state is still in words: ON/OFF, FAULT, STALE, DISCONNECTED."""
    monkeypatch.setenv("NO_COLOR", "1")
    service.status["heater"].update(mode="fault", latched="runaway: no rise in 600 s")

    async def scenario() -> None:
        async with dashboard(
            socket_path, size=(80, 24), connect=False, reconnect_base_s=60.0, reconnect_max_s=60.0
        ) as (app, pilot):
            assert app.no_color
            await settled(pilot, app)
            text = screen_text(app)
            assert "OFF fault" in text and "ON  auto" in text
            assert "FAULT (r resets): runaway" in text
            service.stop()
            await wait_for(pilot, lambda: "DISCONNECTED" in screen_text(app), "the banner")
            assert "STALE" in screen_text(app)

    run(scenario)
