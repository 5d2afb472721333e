"""Pick another box on this machine (``b``): a list of them; returns the one chosen, or None."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from filamentctl.paths import BoxLocation

SCOPES = {"home": "FILAMENTCTL_HOME", "user": "yours", "system": "system service"}


def box_label(box: BoxLocation, current: Path | None) -> str:
    """``shelf     system service   running   (shown)``: its name, whose, and whether a service
    listens (its socket is there)."""
    running = "running" if box.paths.socket.is_socket() else "stopped"
    shown = "  (shown)" if current is not None and box.paths.socket == current else ""
    return f"{box.name:<12}{SCOPES.get(box.scope, box.scope):<17}{running}{shown}"


class BoxScreen(ModalScreen[BoxLocation | None]):
    """The boxes :func:`filamentctl.paths.known_boxes` finds; enter switches, escape cancels."""

    DEFAULT_CSS = """
    BoxScreen { align: center middle; }
    #box-box {
        width: 60;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    #box-box OptionList { height: auto; max-height: 14; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, boxes: Sequence[BoxLocation], current: Path | None) -> None:
        super().__init__()
        self.boxes = list(boxes)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="box-box"):
            yield Static("Show which box?", markup=False)
            yield OptionList(
                *(Option(box_label(b, self.current), id=str(i)) for i, b in enumerate(self.boxes)),
                id="box-list",
            )
            yield Static("enter: switch · escape: cancel", markup=False)

    def on_mount(self) -> None:
        self.query_one("#box-box").border_title = "Boxes"
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.boxes[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)
