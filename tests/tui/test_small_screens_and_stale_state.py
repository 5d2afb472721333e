"""The dashboard on a phone-sized terminal, its relay panels while the service is away, how often
their reasons refresh, and charts that do not blow sensor noise up to full height."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from filamentctl.tui.app import DashboardApp
from filamentctl.tui.widgets.chart import bar_rows, scale
from tests.tui.driving import dashboard, run, screen_text, wait_for
from tests.tui.fakeserver import READING, FakeService
from tests.tui.test_dashboard_snapshots import check, settled

STATE_LINE = re.compile(r"│ (ON|OFF) +(auto|manual|fault)")


def relay_lines(text: str) -> list[str]:
    return [m.group(0) for m in STATE_LINE.finditer(text)]


@pytest.mark.parametrize("size", [(60, 20), (40, 12)], ids=["60x20", "40x12"])
def test_below_78_columns_one_column_keeps_the_relay_states_on_screen(
    service: FakeService, socket_path: Path, size: tuple[int, int]
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=size) as (app, pilot):
            await pilot.pause()
            text = screen_text(app)
            assert app.dashboard.has_class("-narrow")
            lines = relay_lines(text)
            if size == (60, 20):
                # The heater's OFF and the fan's ON, both visible without scrolling.
                assert lines == ["│ OFF auto", "│ ON  auto"], text
                check("dashboard_60x20", text, socket_path)
            else:
                assert lines[:1] == ["│ OFF auto"], text

    run(scenario)


def test_the_narrow_column_scrolls_to_the_chart_and_events(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(60, 20)) as (app, pilot):
            await settled_narrow(pilot, app)
            assert "Events" not in screen_text(app)
            await pilot.press("tab")  # focus enters the column; keys now scroll it
            for _ in range(4):
                await pilot.press("pagedown")
            await wait_for(pilot, lambda: "connected to filamentctl" in screen_text(app), "log")
            assert "41.3┤" in screen_text(app)  # the humidity chart sits just above the log

    run(scenario)


async def settled_narrow(pilot: object, app: DashboardApp) -> None:
    await wait_for(pilot, lambda: app.connected and app.dashboard.history, "status and history")
    await wait_for(pilot, lambda: len(relay_lines(screen_text(app))) == 2, "both relays")


def test_at_80_columns_the_two_column_layout_stays(service: FakeService, socket_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await settled(pilot, app)
            assert app.dashboard.has_class("-wide")
            text = screen_text(app)
            assert "Events" in text and "Storage" in text and len(relay_lines(text)) == 2

    run(scenario)


def test_relay_panels_say_stale_while_disconnected_and_clear_on_reconnect(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await settled(pilot, app)
            assert "STALE" not in screen_text(app)
            service.stop()
            await wait_for(pilot, lambda: "DISCONNECTED" in screen_text(app), "the banner")
            text = screen_text(app)
            assert "OFF auto   pin 0  STALE" in text and "ON  auto   pin 1  STALE" in text
            service.start()
            await wait_for(pilot, lambda: "STALE" not in screen_text(app), "fresh relay state")

    run(scenario)


def test_relay_reasons_refresh_from_status_without_any_event(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24), status_every_s=0.05) as (app, pilot):
            await settled(pilot, app)
            # The service's reason changes (the temperature moved) but no relay switched.
            service.status["heater"]["reason"] = "auto: 21.4 °C within 20.0–22.0 °C"
            await wait_for(pilot, lambda: "auto: 21.4 °C within" in screen_text(app), "reason")

    run(scenario)


def test_the_dashboard_refreshes_every_second_by_default() -> None:
    defaults = inspect.signature(DashboardApp).parameters
    assert defaults["status_every_s"].default == 1.0
    assert defaults["tick_s"].default == 1.0


def test_a_flat_series_is_drawn_flat_with_a_minimum_span() -> None:
    flat = [22.0] * 40
    low, high = scale(flat, 1.0)
    assert (low, high) == (21.5, 22.5)
    rows = bar_rows(flat, 20, 4, low, high)
    assert rows == [" " * 20, " " * 20, "█" * 20, "█" * 20]  # half height, every column


def test_sensor_noise_stays_small_on_the_chart() -> None:
    noisy = [22.0, 22.05, 21.95, 22.0, 22.04, 21.96] * 10
    low, high = scale(noisy, 1.0)
    rows = bar_rows(noisy, 30, 5, low, high)
    tops = {row.rstrip() != "" for row in rows}
    heights = [sum(1 for row in rows if row[col] != " ") for col in range(30)]
    assert max(heights) - min(heights) <= 1, rows  # noise moves a bar by one row at most
    assert tops == {True, False}  # neither empty nor full height


def test_a_wide_range_uses_the_data_range() -> None:
    assert scale([10.0, 30.0], 1.0) == (10.0, 30.0)
    rows = bar_rows([10.0, 30.0], 2, 2, 10.0, 30.0)
    assert rows == [" █", "▁█"]


def test_the_chart_shows_its_scale_and_a_flat_history_half_high(
    service: FakeService, socket_path: Path
) -> None:
    step_ns = 30 * 1_000_000_000
    service.history = [
        {
            "time_ns": int(READING["time_ns"]) - (119 - i) * step_ns,
            "seq": i + 1,
            "temperature_c": 22.0,
            "humidity": 40.0,
        }
        for i in range(120)
    ]

    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            await wait_for(pilot, lambda: "22.5┤" in screen_text(app), "the temperature scale")
            text = screen_text(app)
            assert "21.5┤" in text and "42.5┤" in text and "37.5┤" in text
            top_row = next(line for line in text.splitlines() if "22.5┤" in line)
            assert "█" not in top_row.split("22.5┤")[1].split("│")[0]  # not full height

    run(scenario)
