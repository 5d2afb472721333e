"""A heater or fan panel: state, mode, reason, thresholds, override expiry, and buttons."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Static

from filamentctl import display as fmt
from filamentctl.tui.widgets.text import set_text


class RelayPanel(Vertical):
    """Shows one relay's ``status`` section (attribute ``state``); buttons post messages up.

    ``stale`` (set by the app while the service is out of reach) keeps the last known state
    readable but marks it STALE in words and dims it: the relay may have changed since.
    """

    DEFAULT_CSS = """
    RelayPanel { height: auto; }
    RelayPanel > .line { height: 1; }
    RelayPanel > .buttons { height: 1; }
    RelayPanel Button { margin-right: 1; min-width: 6; }
    """

    class ModeRequested(Message):
        """A button asked for ``mode`` (``auto``/``on``/``off``) on ``relay``."""

        def __init__(self, relay: str, mode: str) -> None:
            super().__init__()
            self.relay = relay
            self.mode = mode

    class ResetRequested(Message):
        """The Reset button: clear a latched fault on ``relay``."""

        def __init__(self, relay: str) -> None:
            super().__init__()
            self.relay = relay

    state: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    stale: reactive[bool] = reactive(False)

    def __init__(self, relay: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.relay = relay

    def compose(self) -> ComposeResult:
        yield Static(id="state", classes="line", markup=False)
        yield Static(id="reason", classes="line", markup=False)
        yield Static(id="thresholds", classes="line", markup=False)
        with Horizontal(classes="buttons"):
            for mode in ("auto", "on", "off"):
                yield Button(mode.capitalize(), id=f"{self.relay}-{mode}", compact=True)
            yield Button("Reset", id=f"{self.relay}-reset", compact=True)

    def on_mount(self) -> None:
        self.border_title = self.relay.capitalize()
        self._show()

    def watch_state(self) -> None:
        self._show()

    def watch_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        st = self.state or {}
        on = st.get("on")
        self.set_class(on is True, "-on")
        self.set_class(st.get("mode") == "fault", "-fault")
        if not st:
            line, reason, th = "unknown", fmt.DASH, fmt.DASH
        elif st.get("enabled") is False:
            line, reason, th = "disabled", str(st.get("reason") or ""), "enable it in the config"
        else:
            mode = str(st.get("mode") or "?")
            if st.get("override"):
                mode += f" {st['override']}"
            if st.get("override_until"):
                mode += f" until {fmt.iso_clock(st['override_until'])}"
            word = "ON" if on else "OFF" if on is False else "?"
            line = f"{word:<4}{mode}   pin {st.get('pin_level', fmt.DASH)}"
            reason = str(st.get("reason") or "")
            if st.get("latched"):
                since = st.get("latched_since")
                when = f" (since {fmt.iso_local(since)})" if since else ""
                reason = f"FAULT (r resets): {st['latched']}{when}"
            th = fmt.thresholds(self.relay, st.get("thresholds"))
        if self.stale:
            line += "  STALE"
        set_text(self.query_one("#state", Static), line)
        set_text(self.query_one("#reason", Static), reason)
        set_text(self.query_one("#thresholds", Static), th)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = (event.button.id or "").rpartition("-")[2]
        if action == "reset":
            self.post_message(self.ResetRequested(self.relay))
        elif action in ("auto", "on", "off"):
            self.post_message(self.ModeRequested(self.relay, action))
