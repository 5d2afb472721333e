"""The dashboard (``filamentctl tui``): a Textual app that is only a client of the service socket.

The app holds the keys, the link to the service and the user's requests; the dashboard screen
(``screens/dashboard.py``) shows what the service sends. Socket I/O runs in worker threads that
post messages (``tui/messages.py``): one thread holds a ``subscribe`` stream and posts what it
hears to the screen; when the stream ends or cannot connect, the screen shows a DISCONNECTED
banner and marks values stale while the thread reconnects with backoff. User requests
(``heater.set``, ``flush``, …) each use their own short connection, so a slow request never
stalls the live stream; their replies come back to the app.

Importing this module loads Textual; the CLI imports it only inside the ``tui``/``demo`` commands.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from filamentctl import display as fmt
from filamentctl.client import Client
from filamentctl.core.backoff import backoff_delay
from filamentctl.errors import UserError
from filamentctl.paths import BoxLocation, box_name, known_boxes
from filamentctl.tui.messages import (
    CommandFinished,
    FlushProgressed,
    HistoryLoaded,
    ServiceDisconnected,
    StatusReceived,
    event_message,
)
from filamentctl.tui.notes import RELAYS, flush_note, relay_reply_note
from filamentctl.tui.payloads import clean_section, clean_status
from filamentctl.tui.screens.boxes import BoxScreen
from filamentctl.tui.screens.confirm import ConfirmScreen
from filamentctl.tui.screens.dashboard import CHART_RANGES, DashboardScreen
from filamentctl.tui.screens.drying import DryStartScreen
from filamentctl.tui.screens.flush import FlushScreen
from filamentctl.tui.screens.help import HelpScreen
from filamentctl.tui.widgets.drying import DryingPanel
from filamentctl.tui.widgets.relay import RelayPanel

#: At most this many readings per history request: bounds the reply at a few MB even at 1 s
#: reads over 24 h (the chart needs a few hundred points; the rest is averaged away).
CHART_HISTORY_LIMIT = 20_000
CHART_POINTS = 720  # buckets per chart range, more than any terminal is wide
NEXT_MODE = {"auto": "on", "on": "off", "off": "auto"}
THEMES = ("textual-dark", "textual-light")


class DashboardApp(App[None]):
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
        Binding("b", "boxes", "Boxes", show=False),
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
        box: str | None = None,
    ) -> None:
        super().__init__()
        self.socket_path = socket_path
        #: The box shown (``--box``; another one after ``b``); None: the selected one.
        self.box = box or box_name()
        self.clock = clock
        self.wall_clock = wall_clock
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.tick_s = tick_s
        self.status_every_s = status_every_s
        self.rand = rand
        self.hint = hint
        # Made in get_default_screen, when the app starts (see the `dashboard` property).
        self._dashboard: DashboardScreen | None = None
        self.flush_screen: FlushScreen | None = None
        self._link_closing = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: Client | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        self._dashboard = DashboardScreen(
            clock=self.clock, wall_clock=self.wall_clock, tick_s=self.tick_s, box=self.box
        )
        return self._dashboard

    @property
    def dashboard(self) -> DashboardScreen:
        """The dashboard screen; RuntimeError before the app has started."""
        if self._dashboard is None:
            raise RuntimeError("the dashboard screen exists once the app runs")
        return self._dashboard

    @property
    def connected(self) -> bool:
        """Whether the service is there: its status has arrived since the link last failed."""
        return self._dashboard is not None and self._dashboard.connected

    def _showing(self) -> bool:
        """Whether the dashboard's widgets are there to update (not while shutting down)."""
        return self._dashboard is not None and self._dashboard.showing

    def on_mount(self) -> None:
        self.theme = THEMES[0]

    def on_dashboard_screen_ready(self) -> None:
        if self.hint:
            self.dashboard.note(self.hint)
        self._keep_linked()
        self._poll_status()

    def on_dashboard_screen_connected(self, message: DashboardScreen.Connected) -> None:
        self._load_history(message.range_s)

    def on_dashboard_screen_status_outdated(self) -> None:
        self._refresh_status()

    def on_unmount(self) -> None:
        self._close_link()

    async def action_quit(self) -> None:
        self._close_link()
        self.exit()

    def _close_link(self) -> None:
        """Stop the link thread: wake its backoff wait and end its blocking read."""
        self._link_closing.set()
        self._interrupt_stream()

    def _interrupt_stream(self) -> None:
        with self._stream_lock:
            if self._stream is not None:
                self._stream.interrupt()

    def _to_dashboard(self, message: Message, socket: Path | None) -> None:
        """Post what the service at ``socket`` said to the dashboard screen (from any thread);
        dropped when the dashboard has switched to another box meanwhile."""
        if self._dashboard is not None and socket == self.socket_path:
            self._dashboard.post_message(message)

    # -- the link: one subscription, reconnecting with backoff ------------------------------
    @work(thread=True, exclusive=True, group="link", name="service link")
    def _keep_linked(self) -> None:
        """Subscribe to the service at the current socket; a box switch starts a new link (this
        group is exclusive: the old one is cancelled and its stream interrupted)."""
        worker = get_current_worker()
        socket = self.socket_path
        failures = 0
        while not self._link_closing.is_set() and not worker.is_cancelled:
            reason = "the service closed the connection"
            try:
                client = Client.connect(socket, timeout=None)
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
                        self._to_dashboard(event_message(name, data), socket)
                except (UserError, OSError, ValueError) as exc:
                    reason = str(exc) or type(exc).__name__
                finally:
                    with self._stream_lock:
                        if self._stream is client:  # not a newer link's (box switch)
                            self._stream = None
                    client.close()
            if self._link_closing.is_set() or worker.is_cancelled:
                break
            failures += 1
            delay = backoff_delay(
                failures, self.reconnect_base_s, self.reconnect_max_s, self.rand()
            )
            self._to_dashboard(ServiceDisconnected(reason, delay, failures), socket)
            self._link_closing.wait(delay)

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
                    if client is not None and client.socket_path != self.socket_path:
                        client.close()  # the dashboard switched boxes
                        client = None
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
                    self._to_dashboard(StatusReceived(clean_status(status)), client.socket_path)
        finally:
            if client is not None:
                client.close()

    @work(thread=True, exclusive=True, group="status", name="status refresh")
    def _fetch_status(self) -> None:
        socket = self.socket_path
        # On failure, the link notices a dead service and says so: no second banner here.
        status, _ = ask(socket, "status", timeout=5.0)
        if isinstance(status, dict):
            self._to_dashboard(StatusReceived(clean_status(status)), socket)

    @work(thread=True, exclusive=True, group="history", name="history")
    def _load_history(self, range_s: float) -> None:
        socket = self.socket_path
        # Averaged by the service into CHART_POINTS buckets: 24 h of 1 s readings would
        # otherwise be 86,400 rows for a chart a few hundred cells wide.
        step_s = max(1.0, range_s / CHART_POINTS)
        args = {"since_s": range_s, "step_s": step_s, "limit": CHART_HISTORY_LIMIT}
        rows, error = ask(socket, "history", args, timeout=30.0)
        if error is not None:
            self.post_message(CommandFinished("history", error=error))
            return
        readings = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        self._to_dashboard(HistoryLoaded(range_s, readings), socket)

    # -- user actions ------------------------------------------------------------------------
    def action_cycle(self, relay: str) -> None:
        """``h``/``f``: auto → on → off → auto, from the mode the service reports."""
        current = str(self.dashboard.relay_state(relay).get("override") or "auto")
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
                    self.dashboard.note("heater ON cancelled")

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
            name for name in RELAYS if self.dashboard.relay_state(name).get("mode") == "fault"
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
            current = self.dashboard.chart_range_s
            i = CHART_RANGES.index(current) if current in CHART_RANGES else 0
            range_s = CHART_RANGES[(i + 1) % len(CHART_RANGES)]
        self.dashboard.show_range(range_s)
        if self.connected:
            self._load_history(range_s)

    def action_boxes(self) -> None:
        """``b``: pick another box on this machine to show."""
        boxes = known_boxes()
        if len(boxes) < 2:
            self.dashboard.note("no other box on this machine (filamentctl --box NAME run)")
            return
        self.push_screen(BoxScreen(boxes, self.socket_path), self.switch_box)

    def switch_box(self, box: BoxLocation | None) -> None:
        """Show ``box`` (None: stay): the dashboard starts afresh and a new link replaces the
        old one (whose late messages are dropped)."""
        if box is None or box.paths.socket == self.socket_path:
            return
        self.box, self.socket_path = box.name, box.paths.socket
        self.dashboard.post_message(DashboardScreen.BoxSwitched(box.name))
        self._interrupt_stream()
        self._keep_linked()

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

    # -- requests and their replies ----------------------------------------------------------
    @work(thread=True, group="commands", name="request")
    def _send(self, op: str, args: dict[str, Any]) -> None:
        def on_event(name: str, data: Any) -> None:
            if name == "flush.progress" and isinstance(data, dict):
                self.post_message(
                    FlushProgressed(int(data.get("delivered") or 0), int(data.get("total") or 0))
                )

        timeout = float(args.get("timeout", 0)) + 10.0
        result, error = ask(self.socket_path, op, args, timeout=timeout, on_event=on_event)
        self.post_message(CommandFinished(op, result=result, error=error))

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
            self.dashboard.note(flush_note(result, error))
            self._refresh_status()
            return
        if error:
            self.dashboard.note(f"{op} failed: {error}")
            self.notify(error, title=f"{op} failed", severity="error")
            return
        if op.startswith("dry."):
            self._dry_finished(op, result)
            return
        relay, _, verb = op.partition(".")
        if relay in RELAYS and isinstance(result, dict):
            self.dashboard.show_relay_state(relay, result)
            self.dashboard.note(relay_reply_note(relay, verb, result))

    # -- drying --------------------------------------------------------------------------------
    def action_dry(self) -> None:
        """``d``: pick a material and start drying, or (during a session) confirm stopping it."""
        if not self._require_connection():
            return
        running = self.dashboard.drying.state
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
        if op == "dry.profiles":

            def chosen(material: str | None) -> None:
                if material:
                    self._send("dry.start", {"material": material})

            self.push_screen(DryStartScreen(res), chosen)
        elif op == "dry.start":
            self.dashboard.drying.state = clean_section(res)
        elif op == "dry.stop":
            self.dashboard.drying.state = None
        self._refresh_status()

    # -- command palette ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self)


def ask(
    socket: Path | None,
    op: str,
    args: dict[str, Any] | None = None,
    *,
    timeout: float,
    on_event: Callable[[str, Any], None] | None = None,
) -> tuple[Any, str | None]:
    """One request on a short connection of its own: ``(result, None)``, or ``(None, why)``."""
    try:
        with Client.connect(socket, timeout=timeout) as client:
            return client.call(op, args, on_event), None
    except (UserError, OSError, ValueError) as exc:
        return None, str(exc)


def palette_commands(app: DashboardApp) -> Iterator[SystemCommand]:
    """The dashboard's entries in the command palette (ctrl+p): what the keys do, by name."""
    for relay in RELAYS:
        for mode in ("auto", "on", "off"):
            yield SystemCommand(
                f"{relay.capitalize()} {mode}",
                f"Set the {relay} to {mode}"
                + (" (asks to confirm)" if (relay, mode) == ("heater", "on") else ""),
                lambda r=relay, m=mode: app.request_mode(r, m),
            )
        yield SystemCommand(
            f"{relay.capitalize()} reset",
            f"Clear a latched {relay} fault",
            lambda r=relay: app.post_message(RelayPanel.ResetRequested(r)),
        )
    yield SystemCommand(
        "Flush", "Deliver the backlog to the database now, with progress", app.action_flush
    )
    yield SystemCommand("Dry: start…", "Pick a material and start a drying session", app.action_dry)
    yield SystemCommand(
        "Dry: stop",
        "End the running drying session",
        lambda: app.post_message(DryingPanel.StopRequested()),
    )
    for range_s in CHART_RANGES:
        yield SystemCommand(
            f"Chart: last {fmt.range_label(range_s)}",
            "Show this range in the chart",
            lambda s=range_s: app.action_chart_range(s),
        )
    yield SystemCommand("Switch box…", "Show another box on this machine", app.action_boxes)
    yield SystemCommand("Toggle dark/light", "Switch the theme", app.action_toggle_theme)
    yield SystemCommand("Help", "Keys and what they do", app.action_help)


def run_dashboard(socket_path: Path | None, hint: str | None = None) -> None:
    """Run the dashboard in this terminal until the user quits (``q``).

    ``socket_path`` None means the usual places; ``hint`` is shown first in the event log.
    Never fails because the service is missing: the dashboard shows DISCONNECTED and keeps
    retrying.
    """
    DashboardApp(socket_path, hint=hint).run()
