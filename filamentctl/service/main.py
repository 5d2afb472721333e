"""``filamentctl run``: the process around :class:`Service` — settings, logging, signals, systemd.

Every way out (SIGTERM, SIGINT, SIGHUP, an unhandled exception in any thread, a normal return)
turns both relays OFF before anything else happens. Under systemd the service says ``READY=1``
once it runs and pings the watchdog only while the control path is healthy, so systemd restarts
a service whose control has stalled.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from typing import Any

from filamentctl import paths as _paths
from filamentctl.service import logs, systemd
from filamentctl.service.app import Service

log = logging.getLogger("filamentctl.service")

# SIGHUP too: closing the terminal of a foreground `filamentctl run` must not leave a heater ON.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run(
    simulate: bool = False,
    debug: bool = False,
    log_format: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    pin_factory: Any = None,
    sensor: Any = None,
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
    crashed: list[BaseException] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Relays OFF first, right here in the signal handler; then let the main thread stop.
        service.safe_off(f"signal {signal.Signals(signum).name}")
        service.request_stop()

    def on_thread_crash(args: threading.ExceptHookArgs) -> None:
        # Threads the service spawns have their own guard; this catches any other thread.
        name = args.thread.name if args.thread is not None else "?"
        log.critical(
            "thread %s failed: %r — stopping with relays OFF",
            name,
            args.exc_value,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
        )
        crashed.append(args.exc_value or RuntimeError(name))
        service.safe_off(f"internal error in thread {name}")
        service.request_stop()

    previous_handlers = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    previous_hook = threading.excepthook
    threading.excepthook = on_thread_crash
    try:
        service.start()
        systemd.notify("READY=1\nSTATUS=sampling")
        start_watchdog(service)
        while not service.wait(1.0):
            pass
    except BaseException:
        service.safe_off("unhandled exception")
        raise
    finally:
        systemd.notify("STOPPING=1")
        service.stop()
        threading.excepthook = previous_hook
        for sig, handler in previous_handlers.items():
            if handler is not None:  # None: installed outside Python, nothing to restore
                signal.signal(sig, handler)
    if service.fatal is not None or crashed:
        systemd.notify("STATUS=stopped after an internal error (relays OFF); see the log")
        return 1
    return 0


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
