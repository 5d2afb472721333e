"""The connection banner: hidden while connected, a clear "DISCONNECTED" line otherwise."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class ConnectionBanner(Static):
    """Attribute ``message``: empty hides the banner; text shows it (text, not just colour)."""

    DEFAULT_CSS = """
    ConnectionBanner { height: auto; display: none; text-style: bold; }
    ConnectionBanner.-shown { display: block; }
    """

    message: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None) -> None:
        # Messages quote the service and paths verbatim: never read them as markup.
        super().__init__(markup=False, id=id)

    def watch_message(self, message: str) -> None:
        self.set_class(bool(message), "-shown")
        self.update(message)
