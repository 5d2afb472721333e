"""``filamentctl run``: the process around :class:`Service` — settings, logging, signals, systemd.

Every way out turns both relays OFF before anything else happens: every catchable signal whose
default would end the process (SIGTERM, SIGINT, SIGQUIT, SIGABRT, SIGUSR1/2, SIGALRM, real-time
signals, ...), an unhandled exception in any thread, a stalled control loop, a normal return.
What cannot be caught (SIGKILL, the OOM killer) is covered by the unit's ``ExecStopPost=
filamentctl relays-off``. SIGHUP reloads the configuration, as daemons do; relays keep their
state. Under systemd the service says ``READY=1`` once it runs and pings the watchdog only while
the control path is healthy; independently of systemd, a supervisor thread switches the relays
OFF and stops the service (exit 1) when the control loop has not run for ``CONTROL_STALL_S``.

Exit codes: 0 after SIGTERM/SIGINT (a wanted stop); 128 + the signal number after any other
signal, and 1 after an internal error, so that ``Restart=on-failure`` brings the box back.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from filamentctl import paths as _paths
from filamentctl.service import logs, systemd
from filamentctl.service.app import Service

if TYPE_CHECKING:
    from filamentctl.hw.sensor import Sensor

log = logging.getLogger("filamentctl.service")

#: Stops a service asked to stop (exit 0); every other terminating signal is unexpected.
WANTED_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Faults raised by the CPU itself: a Python handler cannot run safely after one (the process
#: is in C code that cannot continue), so they are left to ExecStopPost.
_SYNCHRONOUS_FAULTS = frozenset(
    int(getattr(signal, name))
    for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE")
    if hasattr(signal, name)
)
#: How long the control loop may go without running before the supervisor switches the relays
#: OFF and stops the service (the control timer runs every 0.25 s).
CONTROL_STALL_S = 10.0
SUPERVISOR_EVERY_S = 1.0


def terminating_signals() -> list[int]:
    """Every catchable signal whose default action ends the process, except SIGHUP (reload),
    the synchronous CPU faults, and those Python already ignores (SIGPIPE, SIGXFSZ)."""
    names = (
        "SIGTERM SIGINT SIGQUIT SIGABRT SIGTRAP SIGUSR1 SIGUSR2 SIGALRM SIGVTALRM SIGPROF "
        "SIGXCPU SIGXFSZ SIGPIPE SIGSTKFLT SIGIO SIGPWR SIGSYS"
    ).split()
    found = [int(getattr(signal, n)) for n in names if hasattr(signal, n)]
    if hasattr(signal, "SIGRTMIN"):
        found += range(int(signal.SIGRTMIN), int(signal.SIGRTMAX) + 1)
    out: list[int] = []
    for sig in found:
        if sig in _SYNCHRONOUS_FAULTS:
            continue
        try:
            current = signal.getsignal(sig)
        except (ValueError, OSError):
            continue
        # Python's own SIGINT handler raises KeyboardInterrupt: ours switches OFF first. Others
        # already set by someone else are left alone (Python ignores SIGPIPE and SIGXFSZ).
        if current not in (signal.SIG_DFL, signal.default_int_handler):
            continue
        out.append(sig)
    return out


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def run(
    simulate: bool = False,
    debug: bool = False,
    log_format: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    pin_factory: object | None = None,
    sensor: Sensor | None = None,
) -> int:
    """Run the service until a stop signal; returns the process exit code (1 after a crash).

    ``pin_factory`` and ``sensor`` are handed to :class:`Service` (tests and embedding: a
    gpiozero factory whose pins the caller reads, a sensor of its own). Must be called from
    the main thread (it installs signal handlers). Errors while starting (bad settings, a pin
    in use) propagate as UserError with both relays OFF.
    """
    from filamentctl.store.settings import load_settings

    paths = _paths.resolve()
    if simulate:
        # Validate as what will run: the sensor rules (e.g. a DHT's 2 s minimum interval) of
        # the configured hardware sensor do not apply to the simulated one.
        overrides = {**(overrides or {}), "sensor.type": "simulated"}
    settings = load_settings(paths, overrides=overrides)
    logs.setup(str(settings["log.level"]), log_format or str(settings["log.format"]), debug)
    if getattr(settings, "source", "") == "defaults":
        log.info("no configuration yet (run 'filamentctl config init'); using defaults")
    service = Service(settings, paths, simulate=simulate, pin_factory=pin_factory, sensor=sensor)
    ending = Ending(service)
    with ending.installed():
        try:
            service.start()
            systemd.notify("READY=1\nSTATUS=sampling")
            start_watchdog(service)
            start_supervisor(service)
            start_reloader(service, ending.reload_requested)
            while not service.wait(1.0):
                pass
        except BaseException:
            service.safe_off("unhandled exception")
            raise
        finally:
            systemd.notify("STOPPING=1")
            service.stop()
    return ending.exit_code()


class Ending:
    """How the service's process ends: the signal handlers (relays OFF first, then stop; SIGHUP
    asks for a reload), the hook for threads that die, and the exit code that results."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self.crashed: list[BaseException] = []
        self.stopped_by: list[int] = []
        self.reload_requested = threading.Event()

    def on_signal(self, signum: int, _frame: object) -> None:
        # Relays OFF first, right here in the signal handler; then let the main thread stop.
        self._service.safe_off(f"signal {signal_name(signum)}")
        self.stopped_by.append(signum)
        self._service.request_stop()

    def on_hangup(self, _signum: int, _frame: object) -> None:
        # A reload takes locks the interrupted code may hold: do it on its own thread.
        self.reload_requested.set()

    def on_thread_crash(self, args: threading.ExceptHookArgs) -> None:
        # Threads the service spawns have their own guard; this catches any other thread.
        name = args.thread.name if args.thread is not None else "?"
        log.critical(
            "thread %s failed: %r — stopping with relays OFF",
            name,
            args.exc_value,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
        )
        self.crashed.append(args.exc_value or RuntimeError(name))
        self._service.safe_off(f"internal error in thread {name}")
        self._service.request_stop()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers and the thread hook, restored on the way out."""
        previous = {sig: signal.signal(sig, self.on_signal) for sig in terminating_signals()}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self.on_hangup)
        previous_hook = threading.excepthook
        threading.excepthook = self.on_thread_crash
        try:
            yield
        finally:
            threading.excepthook = previous_hook
            for sig, handler in previous.items():
                if handler is not None:  # None: installed outside Python, nothing to restore
                    signal.signal(sig, handler)

    def exit_code(self) -> int:
        """0 after SIGTERM/SIGINT, 1 after an internal error, 128 + n after signal n."""
        if self._service.fatal is not None or self.crashed:
            systemd.notify("STATUS=stopped after an internal error (relays OFF); see the log")
            return 1
        unexpected = [s for s in self.stopped_by if s not in WANTED_STOP_SIGNALS]
        if unexpected:
            systemd.notify(f"STATUS=stopped by {signal_name(unexpected[0])} (relays OFF)")
            return 128 + int(unexpected[0])
        return 0


def start_supervisor(service: Service, stall_s: float | None = None) -> threading.Thread:
    """Switch the relays OFF and stop the service when its control loop stops running.

    A hung control thread (a stuck GPIO driver, a deadlock) can no longer turn the heater off on
    a stale sensor; this thread can, because ``all_off`` does not wait for the control lock.
    The service then exits 1 and systemd restarts it, relays OFF. ``stall_s`` defaults to
    :data:`CONTROL_STALL_S`.
    """
    limit = CONTROL_STALL_S if stall_s is None else stall_s

    def loop() -> None:
        while not service.wait(SUPERVISOR_EVERY_S):
            stalled = service.clock() - service.last_control_tick
            if stalled < limit:
                continue
            log.critical(
                "control loop has not run for %.0f s (limit %.0f s): switching the relays OFF "
                "and stopping",
                stalled,
                limit,
            )
            service.fatal = RuntimeError(f"control loop stalled for {stalled:.0f} s")
            service.safe_off("control loop stalled")
            service.request_stop()
            return

    thread = threading.Thread(target=loop, name="supervisor", daemon=True)
    thread.start()
    return thread


def start_reloader(service: Service, requested: threading.Event) -> threading.Thread:
    """Reload the configuration whenever SIGHUP sets ``requested`` (relays keep their state)."""
    from filamentctl.protocol import ProtocolError
    from filamentctl.service.reload import reload_from_store

    def loop() -> None:
        while not service.stopping:
            if not requested.wait(0.5):
                continue
            requested.clear()
            if service.stopping:
                return
            try:
                result = reload_from_store(service)
            except ProtocolError as exc:
                log.error("SIGHUP: %s", exc.message)
                continue
            except Exception:
                log.exception("SIGHUP: reloading the configuration failed; running as before")
                continue
            log.info("SIGHUP: configuration reloaded (%d key(s) changed)", len(result["changed"]))

    thread = threading.Thread(target=loop, name="reloader", daemon=True)
    thread.start()
    return thread


def control_path_healthy(service: Service) -> bool:
    """The control timer ran recently and no relay has failed (what the watchdog vouches for)."""
    control = service.control
    if control is None or service.stopping:
        return False
    return bool(service.control_healthy()) and bool(control.healthy())


def start_watchdog(
    service: Service, env: Mapping[str, str] | None = None
) -> threading.Thread | None:
    """Ping systemd's watchdog every half ``WATCHDOG_USEC`` while the control path is healthy.

    ``env`` defaults to the process environment. Returns the thread, or None when systemd asked
    for no watchdog. The thread ends when the service stops.
    """
    period = systemd.watchdog_interval_s(env)
    if period is None:
        return None

    def loop() -> None:
        stalled = False
        while not service.wait(period):
            if control_path_healthy(service):
                if stalled:
                    log.warning("control path healthy again; pinging the watchdog")
                    systemd.notify("STATUS=sampling", env)
                stalled = False
                systemd.notify("WATCHDOG=1", env)
                continue
            # Withholding the ping is the point: systemd then restarts the service, and the
            # new process starts with both relays OFF. One error per episode, not per period.
            if not stalled:
                log.error(
                    "control path unhealthy (control loop stalled or relays shut off); "
                    "withholding the watchdog ping"
                )
                systemd.notify("STATUS=control path unhealthy; watchdog ping withheld", env)
            log.debug("watchdog ping withheld")
            stalled = True

    thread = threading.Thread(target=loop, name="watchdog", daemon=True)
    thread.start()
    return thread
