"""Every way the service ends leaves both relays OFF, observed on the pins.

gpiozero's MockFactory lives inside the process that drives the pins, so each test runs the
real ``filamentctl.service.main.run`` in a child process through :func:`_driver` (this module
doubles as the driver script). The driver owns the MockFactory and prints every pin's level at
exit from an ``atexit`` hook. The tests also check the state line the service logs after
switching off. Both relays are ON (heater wired active-low, so ON = level 0) before the end.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from tests.helpers import REPO, in_process_service, raw_request, settings, short_home, wait_until

HEATER_PIN = 16
FAN_PIN = 20
HEATER_OFF_LEVEL = 1  # active-low heater board
FAN_OFF_LEVEL = 0

ENV = {
    # A cold band for the 22 °C simulated room, a fan band below its 50 %RH: both relays go ON.
    "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.1",
    "FILAMENTCTL_HEATER__ENABLED": "true",
    "FILAMENTCTL_HEATER__GPIO_PIN": str(HEATER_PIN),
    "FILAMENTCTL_HEATER__ACTIVE_HIGH": "false",
    "FILAMENTCTL_HEATER__MIN_TEMP_C": "30",
    "FILAMENTCTL_HEATER__MAX_TEMP_C": "35",
    "FILAMENTCTL_FAN__ENABLED": "true",
    "FILAMENTCTL_FAN__GPIO_PIN": str(FAN_PIN),
    "FILAMENTCTL_FAN__MIN_HUMIDITY": "10",
    "FILAMENTCTL_FAN__MAX_HUMIDITY": "15",
}
TRIGGER = "crash-now"  # the crash modes wait for this file in FILAMENTCTL_HOME


class InjectedCrash(BaseException):
    """Not an Exception: gets past every ``except Exception`` on its way up."""


def _driver() -> None:
    """Child process: ``python -c '...; _driver()' MODE``, MODE one of signal|sensor|thread."""
    import atexit
    import time

    from filamentctl.core.reading import Sample
    from filamentctl.service import main

    mode = sys.argv[1]
    home = Path(os.environ["FILAMENTCTL_HOME"])
    factory = MockFactory()

    def report() -> None:
        pins = {}
        for name, pin in (("heater", HEATER_PIN), ("fan", FAN_PIN)):
            mock = factory.pin(pin)
            pins[name] = {
                "level": 1 if mock.state else 0,
                "history": [1 if s.state else 0 for s in mock.states],
            }
        sys.stdout.write("PINS " + json.dumps(pins) + "\n")
        sys.stdout.flush()

    atexit.register(report)

    sensor: Any = None
    if mode == "sensor":

        class CrashingSensor:
            """A cold, humid box until the trigger file appears; then the read blows up."""

            kind = "crashing"
            min_interval_s = 0.0

            def read(self) -> Sample:
                if (home / TRIGGER).exists():
                    raise InjectedCrash("injected failure in the sensor read")
                return Sample(15.0, 70.0, None)

            def close(self) -> None:
                pass

        sensor = CrashingSensor()
    elif mode == "thread":

        def stray() -> None:  # a thread the service did not spawn, dying unhandled
            while not (home / TRIGGER).exists():
                time.sleep(0.05)
            raise RuntimeError("injected failure in a stray thread")

        threading.Thread(target=stray, name="stray", daemon=True).start()
    sys.exit(main.run(simulate=True, pin_factory=factory, sensor=sensor))


class Child:
    def __init__(self, mode: str) -> None:
        self.home = short_home()
        env = {**os.environ, **ENV, "FILAMENTCTL_HOME": str(self.home)}
        for name in ("FILAMENTCTL_SOCKET", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)  # never talk to a real systemd around the test run
        self.stderr_path = self.home / "stderr.log"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from tests.service.test_shutdown_leaves_relays_off import _driver; _driver()",
                    mode,
                ],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.socket = self.home / "run" / "filamentctl.sock"

    def status(self) -> dict[str, Any] | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited early:\n{self.stderr()}")
        try:
            reply = raw_request(self.socket, b'{"id":1,"op":"status"}\n', timeout=2)[0]
        except OSError:
            return None
        return reply.get("result") if reply.get("ok") else None

    def both_on(self) -> bool:
        st = self.status()
        return bool(st and st["heater"]["on"] and st["fan"]["on"])

    def finish(self) -> tuple[int, dict[str, Any]]:
        out, _ = self.proc.communicate(timeout=60)
        lines = [x for x in out.decode().splitlines() if x.startswith("PINS ")]
        assert lines, f"no pin report; stderr:\n{self.stderr()}"
        return self.proc.returncode, json.loads(lines[-1][5:])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        import shutil

        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def child_factory() -> Iterator[Any]:
    children: list[Child] = []

    def make(mode: str) -> Child:
        child = Child(mode)
        children.append(child)
        wait_until(child.both_on, timeout=30, what="both relays ON in the child service")
        return child

    yield make
    for child in children:
        child.cleanup()


def assert_both_off(pins: dict[str, Any]) -> None:
    # They were ON (the opposite level) at some point, and the last level is OFF.
    assert 1 - HEATER_OFF_LEVEL in pins["heater"]["history"], pins
    assert 1 - FAN_OFF_LEVEL in pins["fan"]["history"], pins
    assert (pins["heater"]["level"], pins["fan"]["level"]) == (HEATER_OFF_LEVEL, FAN_OFF_LEVEL)


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_stop_signal_leaves_both_relays_off(child_factory: Any, sig: signal.Signals) -> None:
    child = child_factory("signal")

    child.proc.send_signal(sig)
    code, pins = child.finish()

    assert code == 0, child.stderr()
    assert_both_off(pins)
    assert (
        f"relays OFF: signal {sig.name} (heater GPIO {HEATER_PIN} level {HEATER_OFF_LEVEL}, "
        f"fan GPIO {FAN_PIN} level {FAN_OFF_LEVEL})"
    ) in child.stderr()


@pytest.mark.parametrize("mode", ["sensor", "thread"])
def test_unhandled_exception_leaves_both_relays_off_and_exits_1(
    child_factory: Any, mode: str
) -> None:
    child = child_factory(mode)

    (child.home / TRIGGER).touch()
    code, pins = child.finish()

    assert code == 1, child.stderr()
    assert_both_off(pins)
    log = child.stderr()
    assert "injected failure" in log
    assert f"heater GPIO {HEATER_PIN} level {HEATER_OFF_LEVEL}" in log
    assert "relays OFF: internal error in" in log


def test_control_timer_crash_in_process_leaves_both_relays_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = MockFactory()
    values = settings(
        sensor__read_interval=0.1,
        heater__enabled=True,
        heater__active_high=False,
        heater__min_temp_c=30.0,
        heater__max_temp_c=35.0,
        fan__enabled=True,
        fan__min_humidity=10.0,
        fan__max_humidity=15.0,
    )
    caplog.set_level(logging.INFO, logger="filamentctl")
    with in_process_service(values, pin_factory=factory) as svc:
        wait_until(lambda: svc.control.heater_is_on() and svc.control.fan_is_on(), what="both ON")

        def broken_tick(now: float) -> Any:  # an injected bug in the control timer's path
            raise InjectedCrash("injected failure in the control tick")

        svc.control.heater.tick = broken_tick
        wait_until(lambda: svc.stopping, what="the service to stop itself")

        levels = (factory.pin(HEATER_PIN).state, factory.pin(FAN_PIN).state)
        assert levels == (True, False)  # active-low heater OFF = high; fan OFF = low
        assert isinstance(svc.fatal, InjectedCrash)
        assert svc.control.heater_is_on() is False and svc.control.fan_is_on() is False
    assert any(
        r.getMessage().startswith("relays OFF: internal error in control") for r in caplog.records
    )
