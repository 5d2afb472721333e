"""The dashboard screen: readings and chart on the left; heater, fan, storage and the event
log on the right. Layout and colours are in ``app.tcss``.

The screen shows what the service sends: the app's link posts ``StatusReceived``,
``ReadingReceived``, ``ServiceEventReceived``, ``ServiceDisconnected`` and ``HistoryLoaded``
here, and the handlers keep the latest state and set the widgets' attributes. Asking the
service is the app's job: the screen posts ``Connected`` (the chart wants its history) and
``StatusOutdated`` (an event changed what the status shows) up to it.

Below 78 columns (a phone's SSH client) the two columns become one scrolling column: readings,
heater, fan, storage, chart, events, so the relay states come right after the readings. The
chart exists twice for that (one per layout, only one shown): Textual cannot reorder widgets
with CSS, and the heater must not end up below a chart on a small screen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from filamentctl import display as fmt
from filamentctl.paths import DEFAULT_BOX
from filamentctl.tui.messages import (
    HistoryLoaded,
    ReadingReceived,
    ServiceDisconnected,
    ServiceEventReceived,
    StatusReceived,
)
from filamentctl.tui.notes import RELAYS, event_note
from filamentctl.tui.widgets.banner import ConnectionBanner
from filamentctl.tui.widgets.chart import HistoryChart
from filamentctl.tui.widgets.drying import DryingPanel
from filamentctl.tui.widgets.eventlog import EventLog
from filamentctl.tui.widgets.readings import ReadingsPanel
from filamentctl.tui.widgets.relay import RelayPanel
from filamentctl.tui.widgets.storage import StoragePanel
from filamentctl.tui.widgets.titlebar import TitleBar

#: Narrower than this, one column (the two columns need 38 + 40).
NARROW_BELOW = 78
#: Chart ranges ``c`` cycles through (seconds); the first is shown at start.
CHART_RANGES = (3600.0, 6 * 3600.0, 24 * 3600.0)
#: A reading older than this is stale when the service does not say otherwise.
DEFAULT_STALE_AFTER_S = 30.0


class DashboardScreen(Screen[None]):
    """Composes the widgets and shows the service's state in them.

    ``clock`` (monotonic seconds) ages the reading between events and ``wall_clock`` (Unix
    seconds) stamps log lines; ``tick_s`` is how often the age and the stale marks are updated.
    """

    class Ready(Message):
        """The widgets exist: the app may start the link."""

    @dataclass
    class Connected(Message):
        """The first status after (re)connecting arrived: the chart wants the history of its
        range, ``range_s`` seconds."""

        range_s: float

    @dataclass
    class BoxSwitched(Message):
        """The app now shows box ``name``: start afresh (nothing of the old box stays)."""

        name: str

    class StatusOutdated(Message):
        """An event changed what the status shows (a relay switched, an alert, a drying step):
        a fresh status is worth fetching now rather than at the next periodic one."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        tick_s: float,
        box: str = DEFAULT_BOX,
    ) -> None:
        super().__init__()
        self.box = box
        self.clock = clock
        self.wall_clock = wall_clock
        self.tick_s = tick_s
        #: Ticks so far: tests wait for the next one instead of sleeping past the interval.
        self.ticks = 0
        self.connected = False
        self.status: dict[str, Any] = {}
        self.reading: dict[str, Any] | None = None
        self.reading_received_at = 0.0
        self.reading_age_at_receipt = 0.0
        #: The chart's readings, oldest first, within ``chart_range_s`` of the newest.
        self.history: list[dict[str, Any]] = []
        self.chart_range_s = CHART_RANGES[0]
        self.subtitle = ""  # what the top line shows after the title (see set_subtitle)

    def compose(self) -> ComposeResult:
        yield TitleBar(id="title")
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
        self.set_subtitle("connecting…")
        self.query_one(ConnectionBanner).message = "Connecting to the service…"
        self.set_interval(self.tick_s, self._on_tick)
        self.post_message(self.Ready())

    def set_subtitle(self, text: str) -> None:
        """What the top line shows after the title. Not Screen.sub_title: setting that repaints
        the whole screen, and the uptime in it changes every second after a restart."""
        self.subtitle = text
        with contextlib.suppress(NoMatches):
            self.query_one(TitleBar).show(self.app.title, text)

    def on_dashboard_screen_box_switched(self, message: BoxSwitched) -> None:
        """Forget the old box's data, so none of it is shown as the new box's."""
        self.box = message.name
        self.connected = False
        self.status, self.reading, self.history = {}, None, []
        for name in RELAYS:
            self._relay(name).state = None
        self.drying.state = None
        self.query_one(StoragePanel).state = None
        self.query_one(ReadingsPanel).reading = None
        for chart in self._charts():
            chart.readings = []
        self.query_one(ConnectionBanner).message = f"Connecting to box {message.name}…"
        self.set_subtitle(f"box {message.name} · connecting…")
        self.note(f"showing box {message.name}")
        self.tick()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        """``-narrow`` (one column) below NARROW_BELOW columns, ``-wide`` otherwise."""
        narrow = width < NARROW_BELOW
        self.set_class(narrow, "-narrow")
        self.set_class(not narrow, "-wide")

    # -- what the app reads and sets ---------------------------------------------------------
    @property
    def showing(self) -> bool:
        """Whether the widgets are there to update: a worker's message can still arrive while
        the app is shutting down and the widgets are already gone."""
        return self.is_attached and bool(self.query(ConnectionBanner))

    def relay_state(self, name: str) -> dict[str, Any]:
        """What the ``heater`` or ``fan`` panel shows (``{}`` before the first status)."""
        return dict(self._relay(name).state or {})

    def show_relay_state(self, name: str, state: dict[str, Any]) -> None:
        """A relay's new state, from the reply to a request."""
        self._relay(name).state = state
        self.status[name] = state

    @property
    def drying(self) -> DryingPanel:
        return self.query_one(DryingPanel)

    def note(self, text: str, at: str | None = None) -> None:
        """One event-log line, stamped ``at`` (a clock time) or now."""
        self.query_one(EventLog).add(at or fmt.clock_time(self.wall_clock()), text)

    def show_range(self, range_s: float) -> None:
        """The chart's range from now on; the app loads the history for it."""
        self.chart_range_s = range_s
        for chart in self._charts():
            chart.range_s = range_s

    def _relay(self, name: str) -> RelayPanel:
        return self.query_one(f"#{name}", RelayPanel)

    def _charts(self) -> list[HistoryChart]:
        # Two: one per layout (wide and narrow); both are kept current.
        return list(self.query(HistoryChart))

    # -- what the service sends --------------------------------------------------------------
    def on_status_received(self, message: StatusReceived) -> None:
        if not self.showing:
            return
        status = message.status
        first = not self.connected
        self.connected = True
        self.status = status
        self.query_one(ConnectionBanner).message = ""
        reading = status.get("reading")
        if isinstance(reading, dict):
            self._set_reading(reading, float(reading.get("age_s") or 0.0))
        for name in RELAYS:
            self._relay(name).state = status.get(name)
        self.query_one(StoragePanel).state = status.get("storage")
        self.drying.state = status.get("drying")
        self._show_subtitle()
        if first:
            self.note(
                f"connected to filamentctl {status.get('version', '?')}"
                + (" (simulated)" if status.get("simulated") else "")
            )
            self.post_message(self.Connected(self.chart_range_s))
        self.tick()

    def on_service_disconnected(self, message: ServiceDisconnected) -> None:
        if not self.showing:
            return
        if self.connected or message.attempt == 1:
            self.note(f"disconnected: {message.reason}")
        self.connected = False
        # What and when first: the reason can be long and the banner is at most two lines.
        self.query_one(ConnectionBanner).message = (
            f"DISCONNECTED — retrying in {message.retry_in_s:.0f} s (attempt {message.attempt}):"
            f" {message.reason}"
        )
        self.set_subtitle("disconnected")
        self.tick()

    def on_reading_received(self, message: ReadingReceived) -> None:
        if not self.showing or not message.readings:
            return
        self._set_reading(message.readings[-1], 0.0)
        self.history.extend(message.readings)
        self._trim_history()
        for chart in self._charts():
            chart.readings = self.history
        self.tick()

    def on_service_event_received(self, message: ServiceEventReceived) -> None:
        if not self.showing:
            return
        note = event_note(message.name, message.data)
        self.note(note.text, at=note.at)
        data = message.data if isinstance(message.data, dict) else {}
        relay = data.get("relay")
        if message.name == "relay" and relay in RELAYS:
            # Shown at once; the status fetched next fills in the rest.
            state = dict(self._relay(relay).state or {})
            state.update(on=bool(data.get("on")), reason=data.get("reason", state.get("reason")))
            self._relay(relay).state = state
        if note.status_changed:
            self.post_message(self.StatusOutdated())

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        if not self.showing:
            return
        if message.range_s != self.chart_range_s:
            return  # the user switched range again meanwhile
        known = {r.get("seq") for r in message.readings}
        # Readings that arrived while the request was under way are kept.
        newer = [r for r in self.history if r.get("seq") not in known]
        last_seq = max((r.get("seq") or 0 for r in message.readings), default=0)
        self.history = message.readings + [r for r in newer if (r.get("seq") or 0) > last_seq]
        self._trim_history()
        for chart in self._charts():
            chart.range_s = self.chart_range_s
            chart.readings = self.history

    def _trim_history(self) -> None:
        if not self.history:
            return
        latest = self.history[-1].get("time_ns")
        if not isinstance(latest, int):
            return
        cutoff = latest - int(self.chart_range_s * 1e9)
        start = 0
        while start < len(self.history) and (self.history[start].get("time_ns") or 0) < cutoff:
            start += 1
        if start:
            del self.history[:start]

    # -- ageing ------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        self.ticks += 1
        if self.showing:
            self.tick()

    def tick(self) -> None:
        """Age the reading locally between events; mark it and the relays stale when old or
        disconnected."""
        for name in RELAYS:
            self._relay(name).stale = not self.connected
        panel = self.query_one(ReadingsPanel)
        if self.reading is None:
            panel.stale = not self.connected
            return
        since = max(0.0, self.clock() - self.reading_received_at)
        age = self.reading_age_at_receipt + since
        if since >= self.tick_s:
            # A reading younger than a tick already shows its age at receipt: at one reading a
            # second, aging it here too would repaint the panel twice a second for nothing.
            panel.age_s = round(age, 1)
        panel.stale = not self.connected or age > self._stale_after()

    def _stale_after(self) -> float:
        for name in RELAYS:
            th = (self.status.get(name) or {}).get("thresholds") or {}
            value = th.get("stale_after_s")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return DEFAULT_STALE_AFTER_S

    def _set_reading(self, reading: dict[str, Any], age_s: float) -> None:
        self.reading = reading
        self.reading_received_at = self.clock()
        self.reading_age_at_receipt = age_s
        panel = self.query_one(ReadingsPanel)
        panel.reading = reading
        panel.age_s = round(age_s, 1)

    def _show_subtitle(self) -> None:
        st = self.status
        parts = [] if self.box == DEFAULT_BOX else [f"box {self.box}"]
        parts.append(f"service {st.get('version', '?')}")
        if st.get("simulated"):
            parts.append("simulated")
        if isinstance(st.get("uptime_s"), (int, float)):
            parts.append(f"up {fmt.age(st['uptime_s'])}")
        self.set_subtitle(" · ".join(parts))
