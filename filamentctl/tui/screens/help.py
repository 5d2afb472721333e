"""The help screen (``?`` or F1): every key and what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
filamentctl dashboard — a client of the running service

  h        heater: auto → on → off → auto (ON asks to confirm: y / n)
  f        fan:    auto → on → off → auto
  r        reset a latched safety fault (heater, and fan if latched)
  c        chart range: 1 h → 6 h → 24 h
  d        drying: pick a material and start; during a session, stop it
  b        another box on this machine (filamentctl --box NAME run)
  t        switch theme (dark / light)
  ctrl+p   command palette: every action, including flush
  ? / F1   this help
  q        quit (the service keeps running)

Buttons on the heater and fan panels do the same as the keys.
Safety rules apply to a manual ON too; a refused request is shown
in the event log with the service's reason.

When the service goes away, a DISCONNECTED banner appears, values
are marked STALE and the dashboard reconnects by itself.

Press escape, q, ? or F1 to close."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss_help", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP_TEXT, id="help-text", markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Help"

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
