"""The flush dialog: delivery progress while ``flush`` runs, then its outcome."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import ProgressBar, Static


class FlushScreen(ModalScreen[None]):
    """The app calls ``progress`` and ``finished``; escape hides it (the flush carries on)."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="flush-box"):
            yield Static("Delivering the backlog…", id="flush-text", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="flush-bar")

    def on_mount(self) -> None:
        self.query_one("#flush-box").border_title = "Flush"

    def progress(self, delivered: int, total: int) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=max(total, 1), progress=delivered)
        self.query_one("#flush-text", Static).update(f"Delivered {delivered} of {total} readings")

    def finished(self, result: Any, error: str | None) -> None:
        text = self.query_one("#flush-text", Static)
        bar = self.query_one(ProgressBar)
        if error:
            text.update(f"Flush failed: {error}\n(escape closes)")
            return
        res = result if isinstance(result, dict) else {}
        delivered = int(res.get("delivered") or 0)
        remaining = int(res.get("remaining") or 0)
        bar.update(total=max(delivered + remaining, 1), progress=delivered)
        if res.get("ok", True):
            text.update(f"Done: {delivered} delivered, {remaining} left\n(escape closes)")
        else:
            text.update(
                f"Stopped: {delivered} delivered, {remaining} left — {res.get('error')}\n"
                "(escape closes)"
            )

    def action_close(self) -> None:
        self.dismiss(None)
