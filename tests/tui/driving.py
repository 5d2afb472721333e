"""Driving the dashboard in tests: a frozen-clock app, Pilot waits, and the screen as text."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from filamentctl.tui.app import App
from tests.tui.fakeserver import READING

#: Fixed clocks, so ages and log times in screenshots never move.
FROZEN_MONOTONIC = 1000.0
FROZEN_WALL = READING["time_ns"] / 1e9


def make_app(socket_path: Path, **kwargs: Any) -> App:
    """The real app: frozen clocks, no jitter, quick reconnect, status refresh off unless asked."""
    kwargs.setdefault("clock", lambda: FROZEN_MONOTONIC)
    kwargs.setdefault("wall_clock", lambda: FROZEN_WALL)
    kwargs.setdefault("reconnect_base_s", 0.05)
    kwargs.setdefault("reconnect_max_s", 0.2)
    kwargs.setdefault("status_every_s", 3600.0)
    kwargs.setdefault("rand", lambda: 0.0)
    return App(socket_path, **kwargs)


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


def screen_text(app: App) -> str:
    """The screen as plain text, exactly as a terminal without colour would show it."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system=None,
        legacy_windows=False,
        safe_box=False,
    )
    # Textual has no public "screen as text"; this mirrors what App.export_screenshot does.
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def update_snapshots() -> bool:
    """``FILAMENTCTL_UPDATE_SNAPSHOTS=1 pytest tests/tui`` rewrites the committed snapshots."""
    return os.environ.get("FILAMENTCTL_UPDATE_SNAPSHOTS", "") not in ("", "0")
