"""The dashboard screen: readings and chart on the left; heater, fan, storage and the event
log on the right. Layout and colours are in ``app.tcss``.

Below 78 columns (a phone's SSH client) the two columns become one scrolling column: readings,
heater, fan, storage, chart, events, so the relay states come right after the readings. The
chart exists twice for that (one per layout, only one shown): Textual cannot reorder widgets
with CSS, and the heater must not end up below a chart on a small screen.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from filamentctl.tui.widgets.banner import ConnectionBanner
from filamentctl.tui.widgets.chart import HistoryChart
from filamentctl.tui.widgets.drying import DryingPanel
from filamentctl.tui.widgets.eventlog import EventLog
from filamentctl.tui.widgets.readings import ReadingsPanel
from filamentctl.tui.widgets.relay import RelayPanel
from filamentctl.tui.widgets.storage import StoragePanel

#: Narrower than this, one column (the two columns need 38 + 40).
NARROW_BELOW = 78


class DashboardScreen(Screen[None]):
    """Composes the widgets; the app sets their attributes once it hears ``Ready``."""

    class Ready(Message):
        """The widgets exist: the app may start feeding them."""

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield ConnectionBanner(id="banner")
        with ScrollableContainer(id="main"):
            with Vertical(id="left"):
                yield ReadingsPanel(id="readings", classes="panel")
                yield HistoryChart(id="chart", classes="panel")
            with Vertical(id="right"):
                yield RelayPanel("heater", id="heater")
                yield RelayPanel("fan", id="fan")
                yield DryingPanel(id="drying")
                yield StoragePanel(id="storage", classes="panel")
                yield HistoryChart(id="chart-narrow", classes="panel")
                yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        # Set here as well as on resize: in a real terminal the first Resize can reach the app
        # before this screen exists (Textual's own breakpoints then never apply).
        self._fit(self.app.size.width)
        self.post_message(self.Ready())

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        """``-narrow`` (one column) below NARROW_BELOW columns, ``-wide`` otherwise."""
        narrow = width < NARROW_BELOW
        self.set_class(narrow, "-narrow")
        self.set_class(not narrow, "-wide")
