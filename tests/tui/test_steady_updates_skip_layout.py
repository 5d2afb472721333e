"""A value that changes every second repaints its row without re-laying out the screen.

Static.update() lays out the whole screen by default; at one update per second that was most of
the dashboard's CPU time. A row of a fixed height (every panel's one-line rows) cannot change
size with its text, so ``set_text`` repaints it only; a row whose size follows its text still
gets its layout pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from filamentctl.tui.widgets.readings import ReadingsPanel
from filamentctl.tui.widgets.text import fixed_size, set_text
from tests.tui.driving import dashboard, screen_text
from tests.tui.fakeserver import READING, FakeService


class Rows(App[None]):
    CSS = """
    #line { height: 1; }
    #auto { height: auto; }
    #narrow { height: 1; width: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="line", markup=False)
        yield Static(id="auto", markup=False)
        yield Static(id="narrow", markup=False)


def test_a_fixed_row_repaints_without_layout_and_others_still_lay_out() -> None:
    async def scenario() -> None:
        app = Rows()
        async with app.run_test() as pilot:
            layouts: dict[str, list[bool]] = {}
            for name in ("line", "auto", "narrow"):
                widget = app.query_one(f"#{name}", Static)
                seen = layouts.setdefault(name, [])
                original = widget.refresh

                def spy(*args, _seen=seen, _original=original, **kwargs):  # type: ignore[no-untyped-def]
                    _seen.append(bool(kwargs.get("layout", False)))
                    return _original(*args, **kwargs)

                widget.refresh = spy  # type: ignore[method-assign]
                set_text(widget, "read 0.4 s ago")
                set_text(widget, "read 0.4 s ago")  # unchanged: nothing at all
                set_text(widget, "read 1.4 s ago")
            await pilot.pause()
            assert fixed_size(app.query_one("#line", Static))
            assert layouts["line"] == [False, False]
            for name in ("auto", "narrow"):  # their size follows the text: laid out each time
                assert len(layouts[name]) >= 2 and all(layouts[name]), (name, layouts[name])
            assert str(app.query_one("#line", Static).render()) == "read 1.4 s ago"

    asyncio.run(scenario())


def test_a_changing_subtitle_repaints_one_row_not_the_screen() -> None:
    """After a restart the service's uptime ("up 12 s") changes the top line every second.
    Textual's Header and Screen.sub_title laid out and repainted the whole screen for it (in
    tmux: ~1 % of a core of the dashboard's 3 % budget); the title bar repaints its own row:
    no refresh of the whole screen, none of the bar with a layout pass. (Other panels may still
    lay out now and then, e.g. the event log growing, so the screen's layouts are not counted.)"""
    from textual.screen import Screen

    from filamentctl.tui.widgets.titlebar import TitleBar
    from tests.helpers import in_process_service, settings
    from tests.tui.driving import wait_for

    values = settings(sensor__read_interval=0.5, sensor__type="simulated")

    async def scenario() -> None:
        with in_process_service(values) as service:
            async with dashboard(service.paths.socket, status_every_s=0.2) as (app, pilot):
                screen = app.dashboard
                whole: list[str] = []
                layouts: list[str] = []  # the title bar's refreshes with a layout pass
                refresh = screen.refresh

                def spy_refresh(*args, **kwargs):  # type: ignore[no-untyped-def]
                    whole.append(f"refresh {args} {kwargs}")
                    return refresh(*args, **kwargs)

                bar = app.query_one(TitleBar)
                bar_refresh = bar.refresh

                def spy_bar(*args, **kwargs):  # type: ignore[no-untyped-def]
                    if kwargs.get("layout"):
                        layouts.append(repr((args, kwargs)))
                    return bar_refresh(*args, **kwargs)

                screen.refresh = spy_refresh  # type: ignore[method-assign]
                bar.refresh = spy_bar  # type: ignore[method-assign]
                shown: set[str] = set()

                def seen() -> bool:
                    shown.add(str(app.query_one(TitleBar).render()))
                    return len(shown) >= 3

                await wait_for(pilot, seen, "the uptime in the title bar changing twice", 15)
                assert all(" — service " in text and " · up " in text for text in shown), shown
                assert whole == [] and layouts == []
                assert isinstance(screen, Screen)

    asyncio.run(scenario())


def test_a_reading_younger_than_a_tick_keeps_its_age_at_receipt(
    service: FakeService, socket_path: Path
) -> None:
    """At one reading a second the tick aged the newest reading between readings, a second
    repaint of the panel every second; it now ages only a reading at least a tick old (when
    readings come slowly or stop, the age still counts up)."""
    now = [1000.0]

    async def scenario() -> None:
        async with dashboard(socket_path, clock=lambda: now[0], tick_s=1.0) as (app, pilot):
            screen = app.dashboard
            panel = screen.query_one(ReadingsPanel)
            assert panel.age_s == READING["age_s"]  # shown as it arrived
            now[0] += 0.5
            screen.tick()
            assert panel.age_s == READING["age_s"]
            now[0] += 1.0
            screen.tick()
            assert panel.age_s == pytest.approx(READING["age_s"] + 1.5)
            await pilot.pause()
            assert f"read {READING['age_s'] + 1.5:.1f} s ago" in screen_text(app)

    asyncio.run(scenario())
