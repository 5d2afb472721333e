"""The running drying session: material and target, progress, the expected end, water removed,
and a Stop button. Hidden while no session runs (``state`` None), so it costs no room then.
Each line fits the 34 columns the right-hand column has at 80×24."""

from __future__ import annotations

import math
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Static

from filamentctl import display as fmt
from filamentctl.core.duration import format_duration
from filamentctl.tui.widgets.text import set_text

BAR_WIDTH = 12


def span_text(seconds: Any) -> str:
    """``4h``, ``1h30m``, ``45s``; "—" for anything that is not a duration."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return fmt.DASH
    if not math.isfinite(seconds) or seconds < 0:
        return fmt.DASH
    # Whole minutes past ten minutes: seconds would only flicker.
    return format_duration(round(seconds / 60) * 60 if seconds >= 600 else round(seconds))


def progress_line(state: dict[str, Any], width: int = BAR_WIDTH) -> str:
    """``[###.........]  25% 2h/8h``: elapsed of the maximum time."""
    value = state.get("progress")
    done = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    done = max(0.0, min(1.0, done)) if math.isfinite(done) else 0.0
    cells = round(done * width)
    return (
        f"[{'#' * cells}{'.' * (width - cells)}] {done * 100:3.0f}% "
        f"{span_text(state.get('elapsed_s'))}/{span_text(state.get('max_s'))}"
    )


def _clock(text: Any) -> str:
    return fmt.iso_clock(text)[:5]  # HH:MM


class DryingPanel(Vertical):
    """Shows the ``status`` drying section (attribute ``state``); Stop posts a message up."""

    DEFAULT_CSS = """
    DryingPanel {
        height: auto;
        border: round $accent;
        border-title-color: $text;
        padding: 0 1;
    }
    DryingPanel > .line { height: 1; }
    DryingPanel > #dry-head { height: 1; }
    DryingPanel #dry-what { width: 1fr; }
    DryingPanel Button { min-width: 6; }
    """

    class StopRequested(Message):
        """The Stop button: end the running session."""

    state: reactive[dict[str, Any] | None] = reactive(None, always_update=True)

    def compose(self) -> ComposeResult:
        with Horizontal(id="dry-head"):
            yield Static(id="dry-what", markup=False)
            yield Button("Stop", id="dry-stop", compact=True)
        yield Static(id="dry-progress", classes="line", markup=False)
        yield Static(id="dry-end", classes="line", markup=False)
        yield Static(id="dry-water", classes="line", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Drying"
        self._show()

    def watch_state(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        st = self.state
        self.display = isinstance(st, dict)
        if not isinstance(st, dict):
            return
        what = f"{st.get('material', '?')} at {fmt.num(st.get('target_c'), 0, ' °C')}"
        if st.get("capped"):
            what += f" (of {fmt.num(st.get('profile_temp_c'), 0)})"
        raw = st.get("expected")
        expected: dict[str, Any] = raw if isinstance(raw, dict) else {}
        when = _clock(expected.get("at"))
        if expected.get("reason") == "plateau":
            end = f"dry: ends {when} (plateau)"
        else:
            end = f"ends by {when}, or once dry"
        vent = str(st.get("vent") or "?")
        water = (
            f"water ≥ {fmt.num(st.get('water_removed_g'), 1)} ± "
            f"{fmt.num(st.get('water_uncertainty_g'), 1)} g · "
            f"{vent if vent in ('venting', 'closed') else 'no fan'}"
        )
        set_text(self.query_one("#dry-what", Static), what)
        set_text(self.query_one("#dry-progress", Static), progress_line(st))
        set_text(self.query_one("#dry-end", Static), end)
        set_text(self.query_one("#dry-water", Static), water)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "dry-stop":
            self.post_message(self.StopRequested())
