"""The dashboard screen: readings and chart on the left; heater, fan, storage and the event
log on the right. Layout and colours are in ``app.tcss``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
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


class DashboardScreen(Screen[None]):
    """Composes the widgets; the app sets their attributes once it hears ``Ready``."""

    class Ready(Message):
        """The widgets exist: the app may start feeding them."""

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield ConnectionBanner(id="banner")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ReadingsPanel(id="readings", classes="panel")
                yield HistoryChart(id="chart", classes="panel")
            with Vertical(id="right"):
                yield RelayPanel("heater", id="heater")
                yield RelayPanel("fan", id="fan")
                yield DryingPanel(id="drying")
                yield StoragePanel(id="storage", classes="panel")
                yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.post_message(self.Ready())
