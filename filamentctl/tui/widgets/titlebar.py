"""The dashboard's top line: the app's title and the screen's subtitle (box, service version,
uptime), where Textual's Header would show them.

Header re-lays out the whole screen whenever its subtitle changes (its title is a Static updated
with a layout pass), and the service's uptime changes it every second for the first minute and a
half after a restart: measured in tmux, that was a full-screen layout and repaint each second.
This line has a fixed height and width, so a new subtitle repaints this one row only.
"""

from __future__ import annotations

from textual.widgets import Static

from filamentctl.tui.widgets.text import set_text


class TitleBar(Static):
    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        width: 100%;
        height: 1;
        background: $panel;
        color: $foreground;
        content-align: center middle;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(markup=False, id=id)

    def show(self, title: str, sub_title: str | None) -> None:
        """``title — sub_title`` (just the title without one), repainting only this row."""
        set_text(self, f"{title} — {sub_title}" if sub_title else title)
