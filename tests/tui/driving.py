"""Driving the dashboard in tests: a frozen-clock app run under Pilot (``dashboard``), Pilot
waits, and the screen as text."""

from __future__ import annotations

import asyncio
import html
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from filamentctl.tui.app import DashboardApp
from tests.tui.fakeserver import READING

#: Fixed clocks, so ages and log times in screenshots never move.
FROZEN_MONOTONIC = 1000.0
FROZEN_WALL = READING["time_ns"] / 1e9


def make_app(socket_path: Path, **kwargs: Any) -> DashboardApp:
    """The real app: frozen clocks, no jitter, quick reconnect; the periodic tick and status
    refresh are off unless a test asks for them (``tick_s=``, ``status_every_s=``)."""
    kwargs.setdefault("clock", lambda: FROZEN_MONOTONIC)
    kwargs.setdefault("wall_clock", lambda: FROZEN_WALL)
    kwargs.setdefault("reconnect_base_s", 0.05)
    kwargs.setdefault("reconnect_max_s", 0.2)
    kwargs.setdefault("tick_s", 3600.0)
    kwargs.setdefault("status_every_s", 3600.0)
    kwargs.setdefault("rand", lambda: 0.0)
    return DashboardApp(socket_path, **kwargs)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async Pilot scenario (no pytest-asyncio here)."""
    asyncio.run(scenario())


async def wait_for(
    pilot: Any, predicate: Callable[[], Any], what: str, timeout: float = 10.0
) -> None:
    """Let the app process messages until ``predicate()`` holds; fail with ``what`` if never."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def connected(pilot: Any) -> None:
    """Wait until the app has the service's first status and history."""
    app = pilot.app
    await wait_for(
        pilot, lambda: app.connected and app.dashboard.history, "the first status and history"
    )


@asynccontextmanager
async def dashboard(
    socket_path: Path,
    size: tuple[int, int] = (80, 24),
    *,
    connect: bool = True,
    **kwargs: Any,
) -> AsyncIterator[tuple[DashboardApp, Pilot[None]]]:
    """The real app (:func:`make_app` with ``kwargs``) running under Pilot at ``size``; with
    ``connect`` (the default) entered only once it shows the service's first status and history.
    """
    app = make_app(socket_path, **kwargs)
    async with app.run_test(size=size) as pilot:
        if connect:
            await connected(pilot)
        yield app, pilot


def requests_answered(app: DashboardApp) -> bool:
    """No request of the app is still on its way: every request worker has returned, so what
    they sent has reached the service (a check that nothing was sent waits for this)."""
    return not any(w.group == "commands" and not w.is_finished for w in app.workers)


def palette_offers(app: DashboardApp, prompt: str) -> bool:
    """The open command palette has ``prompt`` highlighted (so enter runs it)."""
    if not isinstance(app.screen, CommandPalette):
        return False
    commands = app.screen.query_one(CommandList)
    index = commands.highlighted
    if index is None:
        return False
    return str(commands.get_option_at_index(index).prompt).startswith(prompt)


# One run of text in Rich's SVG export: its x offset, its line, and the (escaped) text.
_SVG_TEXT = re.compile(
    r'<text [^>]*?x="([0-9.]+)"[^>]*?textLength="([0-9.]+)"[^>]*?'
    r'clip-path="url\(#[^)]*-line-(\d+)\)"[^>]*>(.*?)</text>'
)


def screen_text(app: DashboardApp) -> str:
    """The screen as plain text, exactly as a terminal without colour would show it.

    Read from ``App.export_screenshot()`` (Textual's public screenshot, an SVG): each run of
    text sits at ``x = column × cell width`` on a numbered line.
    """
    svg = app.export_screenshot()
    # Rich writes every space as &#160; (a no-break space) so that SVG keeps them.
    runs = [
        (float(x), float(length), int(line), html.unescape(text).replace("\xa0", " "))
        for x, length, line, text in _SVG_TEXT.findall(svg)
    ]
    width, height = app.size
    if not runs:
        return ""
    cell = next(length / len(text) for _, length, _, text in runs if text and text.isascii())
    lines: dict[int, list[tuple[int, str]]] = {}
    for x, _, line, text in runs:
        lines.setdefault(line, []).append((round(x / cell), text))
    out = []
    for number in range(height):
        row = ""
        for column, text in sorted(lines.get(number, [])):
            row += " " * max(0, column - cell_len(row)) + text
        out.append(row.rstrip())
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def update_snapshots() -> bool:
    """``FILAMENTCTL_UPDATE_SNAPSHOTS=1 pytest tests/tui`` rewrites the committed snapshots."""
    return os.environ.get("FILAMENTCTL_UPDATE_SNAPSHOTS", "") not in ("", "0")
