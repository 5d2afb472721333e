"""Pick a material to dry: a list of the service's profiles; returns the name, or None."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from filamentctl import display as fmt
from filamentctl.tui.widgets.drying import span_text


def profile_label(profile: dict[str, Any]) -> str:
    """``PLA      55 °C → 50 °C  4h–8h``: the target it would run at under the cap."""
    temp = fmt.num(profile.get("temp_c"), 0, " °C")
    runs = fmt.num(profile.get("runs_at_c"), 0, " °C")
    at = f"{temp} → {runs}" if profile.get("capped") else temp
    return (
        f"{str(profile.get('name', '?')):<9}{at:<15}"
        f"{span_text(profile.get('min_s'))}–{span_text(profile.get('max_s'))}"
    )


class DryStartScreen(ModalScreen[str | None]):
    """The ``dry.profiles`` result as a list; enter starts, escape cancels."""

    DEFAULT_CSS = """
    DryStartScreen { align: center middle; }
    #dry-box {
        width: 60;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    #dry-box OptionList { height: auto; max-height: 14; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, profiles: dict[str, Any]) -> None:
        super().__init__()
        self.profiles = [p for p in profiles.get("profiles") or [] if isinstance(p, dict)]
        self.cap = profiles.get("cap_c")
        self.cap_reason = profiles.get("cap_reason")

    def compose(self) -> ComposeResult:
        with Vertical(id="dry-box"):
            yield Static(
                f"Dry which material? (cap {fmt.num(self.cap, 0, ' °C')}: {self.cap_reason})",
                markup=False,
            )
            yield OptionList(
                *(Option(profile_label(p), id=str(p.get("name"))) for p in self.profiles),
                id="dry-profiles",
            )
            yield Static("enter: start · escape: cancel", markup=False)

    def on_mount(self) -> None:
        self.query_one("#dry-box").border_title = "Start drying"
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
