"""The dashboard (``filamentctl tui``): a Textual app that is only a client of the service socket.

Socket I/O runs in worker threads that post messages (``tui/messages.py``) to the app; the app
keeps the latest state and sets widget attributes (attributes down, messages up). One thread holds
a ``subscribe`` stream; when it ends or cannot connect, the app shows a DISCONNECTED banner, marks
values stale and the thread reconnects with backoff. User requests (``heater.set``, ``flush``, …)
each use their own short connection, so a slow request never stalls the live stream.

Importing this module loads Textual; the CLI imports it only inside the ``tui``/``demo`` commands.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App as TextualApp
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from filamentctl import display as fmt
from filamentctl.client import Client
from filamentctl.core.backoff import backoff_delay
from filamentctl.errors import UserError
from filamentctl.tui.messages import (
    CommandFinished,
    FlushProgressed,
    HistoryLoaded,
    ReadingReceived,
    ServiceDisconnected,
    ServiceEventReceived,
    StatusReceived,
)
from filamentctl.tui.screens.confirm import ConfirmScreen
from filamentctl.tui.screens.dashboard import DashboardScreen
from filamentctl.tui.screens.drying import DryStartScreen
from filamentctl.tui.screens.flush import FlushScreen
from filamentctl.tui.screens.help import HelpScreen
from filamentctl.tui.widgets.banner import ConnectionBanner
from filamentctl.tui.widgets.chart import HistoryChart
from filamentctl.tui.widgets.drying import DryingPanel
from filamentctl.tui.widgets.eventlog import EventLog
from filamentctl.tui.widgets.readings import ReadingsPanel
from filamentctl.tui.widgets.relay import RelayPanel
from filamentctl.tui.widgets.storage import StoragePanel

log = logging.getLogger("filamentctl.tui")

#: Chart ranges ``c`` cycles through (seconds).
CHART_RANGES = (3600.0, 6 * 3600.0, 24 * 3600.0)
#: At most this many readings per history request: bounds the reply at a few MB even at 1 s
#: reads over 24 h (the chart needs a few hundred points; the rest is averaged away).
HISTORY_LIMIT = 20_000
CHART_POINTS = 720  # buckets per chart range, more than any terminal is wide
#: A reading older than this is stale when the service does not say otherwise.
DEFAULT_STALE_AFTER_S = 30.0
NEXT_MODE = {"auto": "on", "on": "off", "off": "auto"}
THEMES = ("textual-dark", "textual-light")


class App(TextualApp[None]):
    """The dashboard. ``socket_path`` None means the usual places (own service, then system).

    ``clock`` (monotonic seconds) ages readings and ``wall_clock`` (Unix seconds) stamps log
    lines; tests pass fixed ones so screenshots are stable. ``reconnect_base_s`` and
    ``reconnect_max_s`` shape the reconnect backoff; ``tick_s`` is how often the reading's age
    and the stale marks are updated; ``status_every_s`` is how often the relay reasons and
    storage details are refreshed (readings and relay switches also arrive as events);
    ``rand`` supplies the reconnect jitter. ``hint`` is a first line for the event log (the
    demo says there how to drive its simulated box).
    """

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: also right for subclasses
    TITLE = "filamentctl"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "cycle('heater')", "Heater"),
        Binding("f", "cycle('fan')", "Fan"),
        Binding("r", "reset", "Reset"),
        Binding("c", "chart_range", "Chart"),
        Binding("d", "dry", "Dry", show=False),
        Binding("t", "toggle_theme", "Theme"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False),
        Binding("q", "quit", "Quit"),
        # What a terminal user presses first; the demo relies on it to stop the service too.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        socket_path: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        reconnect_base_s: float = 0.5,
        reconnect_max_s: float = 5.0,
        tick_s: float = 1.0,
        status_every_s: float = 1.0,
        rand: Callable[[], float] = random.random,
        hint: str | None = None,
    ) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.clock = clock
        self.wall_clock = wall_clock
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.tick_s = tick_s
        self.status_every_s = status_every_s
        self.rand = rand
        self.hint = hint
        #: Ticks so far: tests wait for the next one instead of sleeping past the interval.
        self.ticks = 0
        # Built in get_default_screen: a screen must be created while the app is running.
        self.dashboard: DashboardScreen = None  # type: ignore[assignment]
        self.connected = False
        self.status: dict[str, Any] = {}
        self.reading: dict[str, Any] | None = None
        self.reading_received_at = 0.0
        self.reading_age_at_receipt = 0.0
        self.history: list[dict[str, Any]] = []
        self.chart_range_s = CHART_RANGES[0]
        self.flush_screen: FlushScreen | None = None
        self._link_closing = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: Client | None = None
        self._was_connected = False

    # -- lifecycle --------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        self.dashboard = DashboardScreen()
        return self.dashboard

    def on_mount(self) -> None:
        self.theme = THEMES[0]

    def on_dashboard_screen_ready(self) -> None:
        self.sub_title = "connecting…"
        self._banner().message = "Connecting to the service…"
        if self.hint:
            self._note(self.hint)
        self._keep_linked()
        self._poll_status()
        self.set_interval(self.tick_s, self._on_tick)

    def on_unmount(self) -> None:
        self._close_link()

    async def action_quit(self) -> None:
        self._close_link()
        self.exit()

    def _close_link(self) -> None:
        """Stop the link thread: wake its backoff wait and end its blocking read."""
        self._link_closing.set()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.interrupt()

    # -- widgets ----------------------------------------------------------------------------
    def _showing(self) -> bool:
        """Whether the dashboard's widgets are there to update: a worker's message can still
        arrive while the app is shutting down and the widgets are already gone."""
        dashboard = self.dashboard
        return (
            dashboard is not None
            and dashboard.is_attached
            and bool(dashboard.query(ConnectionBanner))
        )

    def _banner(self) -> ConnectionBanner:
        return self.dashboard.query_one(ConnectionBanner)

    def _readings(self) -> ReadingsPanel:
        return self.dashboard.query_one(ReadingsPanel)

    def _charts(self) -> list[HistoryChart]:
        # Two: one per layout (wide and narrow); both are kept current.
        return list(self.dashboard.query(HistoryChart))

    def _relay(self, name: str) -> RelayPanel:
        return self.dashboard.query_one(f"#{name}", RelayPanel)

    def _note(self, text: str, at: str | None = None) -> None:
        self.dashboard.query_one(EventLog).add(at or fmt.clock_time(self.wall_clock()), text)

    # -- the link: one subscription, reconnecting with backoff ------------------------------
    @work(thread=True, exclusive=True, group="link", name="service link")
    def _keep_linked(self) -> None:
        worker = get_current_worker()
        failures = 0
        while not self._link_closing.is_set() and not worker.is_cancelled:
            reason = "the service closed the connection"
            try:
                client = Client.connect(self.socket_path, timeout=None)
            except UserError as exc:
                reason = str(exc)
            else:
                with self._stream_lock:
                    self._stream = client
                try:
                    if self._link_closing.is_set():
                        break
                    for name, data in client.subscribe():
                        failures = 0
                        self.post_message(_event_message(name, data))
                except (UserError, OSError, ValueError) as exc:
                    reason = str(exc) or type(exc).__name__
                finally:
                    with self._stream_lock:
                        self._stream = None
                    client.close()
            if self._link_closing.is_set():
                break
            failures += 1
            delay = backoff_delay(
                failures, self.reconnect_base_s, self.reconnect_max_s, self.rand()
            )
            self.post_message(ServiceDisconnected(reason, delay, failures))
            self._link_closing.wait(delay)

    def on_status_received(self, message: StatusReceived) -> None:
        if not self._showing():
            return  # a late reply while the app shuts down
        status = message.status
        first = not self.connected
        self.connected = True
        self.status = status
        self._banner().message = ""
        reading = status.get("reading")
        if isinstance(reading, dict):
            self._set_reading(reading, float(reading.get("age_s") or 0.0))
        for name in ("heater", "fan"):
            self._relay(name).state = status.get(name)
        self.dashboard.query_one(StoragePanel).state = status.get("storage")
        self.dashboard.query_one(DryingPanel).state = status.get("drying")
        self._show_subtitle()
        if first:
            self._note(
                f"connected to filamentctl {status.get('version', '?')}"
                + (" (simulated)" if status.get("simulated") else "")
            )
            self._was_connected = True
            self._load_history(self.chart_range_s)
        self._tick()

    def on_service_disconnected(self, message: ServiceDisconnected) -> None:
        if not self._showing():
            return  # a late reply while the app shuts down
        if self.connected or message.attempt == 1:
            self._note(f"disconnected: {message.reason}")
        self.connected = False
        # What and when first: the reason can be long and the banner is at most two lines.
        self._banner().message = (
            f"DISCONNECTED — retrying in {message.retry_in_s:.0f} s (attempt {message.attempt}):"
            f" {message.reason}"
        )
        self.sub_title = "disconnected"
        self._tick()

    def on_reading_received(self, message: ReadingReceived) -> None:
        if not self._showing():
            return  # a late reply while the app shuts down
        self._set_reading(message.reading, 0.0)
        self.history.append(message.reading)
        self._trim_history()
        for chart in self._charts():
            chart.readings = self.history
        self._tick()

    def on_service_event_received(self, message: ServiceEventReceived) -> None:
        if not self._showing():
            return  # a late reply while the app shuts down
        name, data = message.name, message.data
        d = data if isinstance(data, dict) else {}
        if name == "relay":
            relay = str(d.get("relay", "?"))
            word = "ON" if d.get("on") else "OFF"
            self._note(f"{relay} {word}: {d.get('reason', '')}", at=fmt.iso_clock(d.get("time")))
            if relay in ("heater", "fan"):
                panel = self._relay(relay)
                state = dict(panel.state or {})
                state.update(on=bool(d.get("on")), reason=d.get("reason", state.get("reason")))
                panel.state = state
                self._refresh_status()
        elif name == "sensor":
            self._note(f"sensor: {d.get('message', d.get('event', ''))}")
        elif name == "alert":
            self._note(f"ALERT: {d.get('message', '')}")
            self._refresh_status()
        elif name == "storage.dropped":
            self._note(f"storage: {d.get('dropped', '?')} readings dropped (backlog full)")
        elif name == "storage.rejected":
            self._note(
                f"storage: {d.get('backend', '?')} rejected {d.get('count', '?')} readings"
                f" ({d.get('status', '?')}): {d.get('error', '')}"
            )
        elif name.startswith("drying."):
            self._note(str(d.get("message") or name))
            self._refresh_status()
        elif name == "storage.recovered":
            self._note(f"storage: delivery recovered after {d.get('failures', '?')} failures")
            self._refresh_status()
        else:
            self._note(f"{name}: {d.get('message', '') if d else data}")

    # -- periodic ----------------------------------------------------------------------------
    def _on_tick(self) -> None:
        self.ticks += 1
        if self._showing():
            self._tick()

    def _tick(self) -> None:
        """Age the reading locally between events; mark it and the relays stale when old or
        disconnected."""
        for name in ("heater", "fan"):
            self._relay(name).stale = not self.connected
        panel = self._readings()
        if self.reading is None:
            panel.stale = not self.connected
            return
        age = self.reading_age_at_receipt + max(0.0, self.clock() - self.reading_received_at)
        panel.age_s = round(age, 1)
        panel.stale = not self.connected or age > self._stale_after()

    def _stale_after(self) -> float:
        for name in ("heater", "fan"):
            th = (self.status.get(name) or {}).get("thresholds") or {}
            value = th.get("stale_after_s")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return DEFAULT_STALE_AFTER_S

    def _set_reading(self, reading: dict[str, Any], age_s: float) -> None:
        self.reading = reading
        self.reading_received_at = self.clock()
        self.reading_age_at_receipt = age_s
        self._readings().reading = reading

    def _show_subtitle(self) -> None:
        st = self.status
        parts = [f"service {st.get('version', '?')}"]
        if st.get("simulated"):
            parts.append("simulated")
        if isinstance(st.get("uptime_s"), (int, float)):
            parts.append(f"up {fmt.age(st['uptime_s'])}")
        self.sub_title = " · ".join(parts)

    def _refresh_status(self) -> None:
        """A status now (after a relay switch or an alert), besides the periodic one."""
        if self.connected:
            self._fetch_status()

    @work(thread=True, exclusive=True, group="status poll", name="status poll")
    def _poll_status(self) -> None:
        """Every ``status_every_s`` while connected: the status, over one kept connection.

        One long-lived thread and connection: a new worker and socket every second cost more
        CPU than the request itself (a Pi Zero is ~10x slower than a laptop).
        """
        worker = get_current_worker()
        client: Client | None = None
        try:
            while not self._link_closing.wait(self.status_every_s) and not worker.is_cancelled:
                if not self.connected:
                    if client is not None:
                        client.close()
                        client = None
                    continue
                try:
                    if client is None:
                        client = Client.connect(self.socket_path, timeout=5.0)
                    status = client.call("status")
                except (UserError, OSError, ValueError):
                    # The link notices a dead service and says so; here, just start over.
                    if client is not None:
                        client.close()
                    client = None
                    continue
                if isinstance(status, dict):
                    self.post_message(StatusReceived(clean_status(status)))
        finally:
            if client is not None:
                client.close()

    @work(thread=True, exclusive=True, group="status", name="status refresh")
    def _fetch_status(self) -> None:
        try:
            with Client.connect(self.socket_path, timeout=5.0) as client:
                status = client.call("status")
        except (UserError, OSError, ValueError):
            return  # the link notices a dead service and says so; no second banner here
        if isinstance(status, dict):
            self.post_message(StatusReceived(clean_status(status)))

    # -- history -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="history", name="history")
    def _load_history(self, range_s: float) -> None:
        try:
            with Client.connect(self.socket_path, timeout=30.0) as client:
                # Averaged by the service into CHART_POINTS buckets: 24 h of 1 s readings would
                # otherwise be 86,400 rows for a chart a few hundred cells wide.
                step_s = max(1.0, range_s / CHART_POINTS)
                args = {"since_s": range_s, "step_s": step_s, "limit": HISTORY_LIMIT}
                rows = client.call("history", args)
        except (UserError, OSError, ValueError) as exc:
            self.post_message(CommandFinished("history", error=str(exc)))
            return
        readings = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        self.post_message(HistoryLoaded(range_s, readings))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        if not self._showing():
            return  # a late reply while the app shuts down
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

    # -- user actions ------------------------------------------------------------------------
    def action_cycle(self, relay: str) -> None:
        """``h``/``f``: auto → on → off → auto, from the mode the service reports."""
        state = self._relay(relay).state or {}
        current = str(state.get("override") or "auto")
        self.request_mode(relay, NEXT_MODE.get(current, "auto"))

    def request_mode(self, relay: str, mode: str) -> None:
        """Ask the service for ``mode``; a manual heater ON is confirmed first."""
        if not self._require_connection():
            return
        if relay == "heater" and mode == "on":

            def answered(yes: bool | None) -> None:
                if yes:
                    self._send(f"{relay}.set", {"mode": mode})
                else:
                    self._note("heater ON cancelled")

            self.push_screen(
                ConfirmScreen(
                    "Switch the heater ON by hand?\n"
                    "Safety rules still apply (cutoff, runaway, stale readings, max on time).",
                    title="Heater ON",
                ),
                answered,
            )
            return
        self._send(f"{relay}.set", {"mode": mode})

    def action_reset(self) -> None:
        """``r``: clear latched faults (the heater's, and the fan's when it is in fault)."""
        if not self._require_connection():
            return
        targets = [
            name
            for name in ("heater", "fan")
            if (self._relay(name).state or {}).get("mode") == "fault"
        ]
        for name in targets or ["heater"]:
            self._send(f"{name}.reset", {})

    def on_relay_panel_mode_requested(self, message: RelayPanel.ModeRequested) -> None:
        self.request_mode(message.relay, message.mode)

    def on_relay_panel_reset_requested(self, message: RelayPanel.ResetRequested) -> None:
        if self._require_connection():
            self._send(f"{message.relay}.reset", {})

    def action_flush(self) -> None:
        """Deliver the backlog now, with a progress dialog."""
        if not self._require_connection():
            return
        self.flush_screen = FlushScreen()
        self.push_screen(self.flush_screen)
        self._send("flush", {"timeout": 60})

    def action_chart_range(self, range_s: float | None = None) -> None:
        """``c``: the next chart range (or the one given, from the palette)."""
        if range_s is None:
            i = CHART_RANGES.index(self.chart_range_s) if self.chart_range_s in CHART_RANGES else 0
            range_s = CHART_RANGES[(i + 1) % len(CHART_RANGES)]
        self.chart_range_s = range_s
        for chart in self._charts():
            chart.range_s = range_s
        if self.connected:
            self._load_history(range_s)

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def _require_connection(self) -> bool:
        if not self.connected:
            self.notify("Not connected to the service; retrying…", severity="warning")
            return False
        return True

    @work(thread=True, group="commands", name="request")
    def _send(self, op: str, args: dict[str, Any]) -> None:
        def on_event(name: str, data: Any) -> None:
            if name == "flush.progress" and isinstance(data, dict):
                self.post_message(
                    FlushProgressed(int(data.get("delivered") or 0), int(data.get("total") or 0))
                )

        timeout = float(args.get("timeout", 0)) + 10.0
        try:
            with Client.connect(self.socket_path, timeout=timeout) as client:
                result = client.call(op, args, on_event)
        except (UserError, OSError, ValueError) as exc:
            self.post_message(CommandFinished(op, error=str(exc)))
            return
        self.post_message(CommandFinished(op, result=result))

    def on_flush_progressed(self, message: FlushProgressed) -> None:
        if self.flush_screen is not None and self.flush_screen.is_attached:
            self.flush_screen.progress(message.delivered, message.total)

    def on_command_finished(self, message: CommandFinished) -> None:
        if not self._showing():
            return  # a late reply while the app shuts down
        op, result, error = message.op, message.result, message.error
        if op == "flush":
            if self.flush_screen is not None and self.flush_screen.is_attached:
                self.flush_screen.finished(result, error)
            res = result if isinstance(result, dict) else {}
            self._note(
                f"flush failed: {error}"
                if error
                else f"flush: {res.get('delivered', 0)} delivered, "
                f"{res.get('remaining', 0)} left"
                + (f" ({res.get('error')})" if res.get("error") else "")
            )
            self._refresh_status()
            return
        if error:
            self._note(f"{op} failed: {error}")
            self.notify(error, title=f"{op} failed", severity="error")
            return
        if op.startswith("dry."):
            self._dry_finished(op, result)
            return
        relay, _, verb = op.partition(".")
        if relay in ("heater", "fan") and isinstance(result, dict):
            self._relay(relay).state = result
            self.status[relay] = result
            what = "reset" if verb == "reset" else f"mode {result.get('override') or 'auto'}"
            self._note(
                f"{relay} {what}: {'ON' if result.get('on') else 'OFF'}, {result.get('reason', '')}"
            )

    # -- drying --------------------------------------------------------------------------------
    def action_dry(self) -> None:
        """``d``: pick a material and start drying, or (during a session) confirm stopping it."""
        if not self._require_connection():
            return
        running = self.dashboard.query_one(DryingPanel).state
        if not running:
            self._send("dry.profiles", {})  # the picker opens when they arrive
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._send("dry.stop", {})

        what = running.get("material", "the spool")
        self.push_screen(ConfirmScreen(f"Stop drying {what} now?", title="Drying"), answered)

    def on_drying_panel_stop_requested(self, message: DryingPanel.StopRequested) -> None:
        if self._require_connection():
            self._send("dry.stop", {})

    def _dry_finished(self, op: str, result: Any) -> None:
        res = result if isinstance(result, dict) else {}
        panel = self.dashboard.query_one(DryingPanel)
        if op == "dry.profiles":

            def chosen(material: str | None) -> None:
                if material:
                    self._send("dry.start", {"material": material})

            self.push_screen(DryStartScreen(res), chosen)
        elif op == "dry.start":
            panel.state = clean_section(res)
        elif op == "dry.stop":
            panel.state = None
        self._refresh_status()

    # -- command palette ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for relay in ("heater", "fan"):
            for mode in ("auto", "on", "off"):
                yield SystemCommand(
                    f"{relay.capitalize()} {mode}",
                    f"Set the {relay} to {mode}"
                    + (" (asks to confirm)" if (relay, mode) == ("heater", "on") else ""),
                    lambda r=relay, m=mode: self.request_mode(r, m),
                )
            yield SystemCommand(
                f"{relay.capitalize()} reset",
                f"Clear a latched {relay} fault",
                lambda r=relay: self.post_message(RelayPanel.ResetRequested(r)),
            )
        yield SystemCommand(
            "Flush", "Deliver the backlog to the database now, with progress", self.action_flush
        )
        yield SystemCommand(
            "Dry: start…", "Pick a material and start a drying session", self.action_dry
        )
        yield SystemCommand(
            "Dry: stop",
            "End the running drying session",
            lambda: self.post_message(DryingPanel.StopRequested()),
        )
        for range_s in CHART_RANGES:
            yield SystemCommand(
                f"Chart: last {fmt.range_label(range_s)}",
                "Show this range in the chart",
                lambda s=range_s: self.action_chart_range(s),
            )
        yield SystemCommand("Toggle dark/light", "Switch the theme", self.action_toggle_theme)
        yield SystemCommand("Help", "Keys and what they do", self.action_help)


def _event_message(name: str, data: Any) -> StatusReceived | ReadingReceived | ServiceEventReceived:
    if name == "status" and isinstance(data, dict):
        return StatusReceived(clean_status(data))
    if name == "reading" and isinstance(data, dict):
        return ReadingReceived(clean_section(data))
    if name == "relay" and isinstance(data, dict):
        return ServiceEventReceived(name, clean_section(data))
    return ServiceEventReceived(name, data)


_SECTIONS = ("reading", "sensor", "storage", "heater", "fan", "drying")
_TEXT_KEYS = frozenset({"time", "reason", "mode", "health", "last_error", "backend", "type"})


def clean_section(section: Any) -> dict[str, Any]:
    """One part of what the service sent, made safe to show: a dict whose numeric fields are
    numbers (a string or a wrong type becomes None) — the screen never crashes on odd data."""
    if not isinstance(section, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key in _TEXT_KEYS or isinstance(value, (dict, list, bool)) or value is None:
            out[key] = value
        elif isinstance(value, (int, float)):
            out[key] = value
        elif key.endswith(("_s", "_c", "_f", "_ns", "_hpa", "_g_m3", "humidity", "seq")):
            out[key] = None  # a number field that is not a number
        else:
            out[key] = value
    return out


def clean_status(status: dict[str, Any]) -> dict[str, Any]:
    out = dict(status)
    for name in _SECTIONS:
        if name in out and out[name] is not None:
            out[name] = clean_section(out[name])
    return out


def run_dashboard(socket_path: Path | None, hint: str | None = None) -> None:
    """Run the dashboard in this terminal until the user quits (``q``).

    ``socket_path`` None means the usual places; ``hint`` is shown first in the event log.
    Never fails because the service is missing: the dashboard shows DISCONNECTED and keeps
    retrying.
    """
    App(socket_path, hint=hint).run()
