"""``filamentctl run``: the process around :class:`Service` — settings, logging, signals, systemd.

Every way out (SIGTERM, SIGINT, an unhandled exception, a normal return) turns both relays OFF
before anything else happens.
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


def run(
    simulate: bool = False,
    debug: bool = False,
    log_format: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """Run the service until a signal; returns the process exit code."""
    from filamentctl.store.settings import load_settings

    paths = _paths.resolve()
    if simulate:  # --simulate is a CLI flag: it outranks stored and env values (product.md §6)
        overrides = {**(overrides or {}), "sensor.type": "simulated"}
    settings = load_settings(paths, overrides=overrides)
    logs.setup(str(settings["log.level"]), log_format or str(settings["log.format"]), debug)
    if getattr(settings, "source", "") == "defaults":
        log.info("no configuration yet (run 'filamentctl config init'); using defaults")
    service = Service(settings, paths, simulate=simulate)

    def on_signal(signum: int, _frame: object) -> None:
        # Relays OFF first, right here in the signal handler; then let the main thread stop.
        service.safe_off(f"signal {signal.Signals(signum).name}")
        service.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service.start()
        systemd.notify("READY=1\nSTATUS=sampling")
        _watchdog(service)
        while not service.wait(1.0):
            pass
        systemd.notify("STOPPING=1")
    except BaseException:
        service.safe_off("unhandled exception")
        raise
    finally:
        service.stop()
    if service.fatal is not None:
        return 1
    return 0


def _watchdog(service: Service) -> None:
    """Ping systemd's watchdog only while the control path is healthy."""
    period = systemd.watchdog_interval_s()
    if period is None:
        return

    def loop() -> None:
        while not service.wait(period):
            if service.control_healthy():
                systemd.notify("WATCHDOG=1")
            else:
                log.error("control loop stalled; withholding the watchdog ping")

    threading.Thread(target=loop, name="watchdog", daemon=True).start()
