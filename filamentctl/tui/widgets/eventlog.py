"""The event log: relay switches with reasons, sensor faults, storage alerts, connection changes."""

from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

MAX_LINES = 500


class EventLog(RichLog):
    """A scrolling, wrapping log; ``add(clock_text, text)`` appends one timestamped entry.

    ``entries`` keeps the text of each entry (newest last). A RichLog wraps a line once, at the
    width it has when written, so the entries are wrapped again whenever the panel's width
    changes (a scrollbar appears, the layout switches to one column): nothing is cut off.
    """

    DEFAULT_CSS = """
    EventLog { height: 1fr; min-height: 4; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        # min_width=1: RichLog renders at least min_width columns (78 by default) and crops the
        # rest, so on a narrower panel long entries were cut instead of wrapped.
        super().__init__(
            max_lines=MAX_LINES, min_width=1, wrap=True, markup=False, highlight=False, id=id
        )
        self.entries: list[str] = []
        self._wrapped_at = 0

    def on_mount(self) -> None:
        self.border_title = "Events"

    def add(self, clock_text: str, text: str) -> None:
        entry = f"{clock_text}  {text}"
        self.entries.append(entry)
        del self.entries[:-MAX_LINES]
        self._write(entry)

    def _write(self, entry: str) -> None:
        # Text, not markup: reasons and error messages come from the service verbatim. fold: a
        # long word (a socket path) breaks across lines rather than being cut off.
        self.write(Text(entry, overflow="fold"))

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at:
            first = not self._wrapped_at
            self._wrapped_at = width
            if not first:
                self.clear()
                for entry in self.entries:
                    self._write(entry)
