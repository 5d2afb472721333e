"""A value that changes every second repaints its row without re-laying out the screen.

Static.update() lays out the whole screen by default; at one update per second that was most of
the dashboard's CPU time. A row of a fixed height (every panel's one-line rows) cannot change
size with its text, so ``set_text`` repaints it only; a row whose size follows its text still
gets its layout pass.
"""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.widgets import Static

from filamentctl.tui.widgets.text import fixed_size, set_text


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
