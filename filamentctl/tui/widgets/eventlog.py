"""The event log: relay switches with reasons, sensor faults, storage alerts, connection changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

MAX_LINES = 500


class EventLog(RichLog):
    """A scrolling, wrapping log; ``add(clock_text, text)`` appends one timestamped entry."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; min-height: 4; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, wrap=True, markup=False, highlight=False, id=id)

    def on_mount(self) -> None:
        self.border_title = "Events"

    def add(self, clock_text: str, text: str) -> None:
        # Text, not markup: reasons and error messages come from the service verbatim.
        self.write(Text(f"{clock_text}  {text}"))
