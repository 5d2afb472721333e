"""The fault-injection matrix: every way the service ends leaves both relays OFF, on the pins.

gpiozero's MockFactory lives inside the process that drives the pins, so each test runs the
real ``filamentctl.service.main.run`` in a child process through :func:`_driver` (this module
doubles as the driver script). The driver owns the MockFactory and prints every pin's level at
exit from an ``atexit`` hook; the tests also check the state line the service logs after
switching off. Both relays are ON (heater wired active-low, so ON = level 0) before the fault.

Faults: every catchable terminating signal we name (SIGHUP reloads instead), an exception in
each thread of the service (sampler, control timer, delivery, socket accept loop, a client's
thread, a thread the service did not start), and a hung control thread (the watchdog ping stops,
the supervisor switches OFF). Injected failures are BaseExceptions, so they get past every
``except Exception`` on their way up, as a real bug in a C extension or a KeyboardInterrupt
would.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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
    "FILAMENTCTL_SENSOR__STALE_AFTER": "5",
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
# A delivery worker that keeps trying (nothing listens there), for the delivery-thread fault.
DELIVERY_ENV = {
    "FILAMENTCTL_DATABASE__TYPE": "victoriametrics",
    "FILAMENTCTL_DATABASE__VICTORIAMETRICS__URL": "http://127.0.0.1:9",
    "FILAMENTCTL_WRITER__FLUSH_INTERVAL": "1",
}
TRIGGER = "crash-now"  # the crash modes wait for this file in FILAMENTCTL_HOME
STALL_S = 3.0  # the supervisor's limit in the hung-control mode (10 s in production)


class InjectedCrash(BaseException):
    """Not an Exception: gets past every ``except Exception`` on its way up."""


def _driver() -> None:
    """Child process: ``python -c '...; _driver()' MODE`` (see ``MODES``)."""
    import atexit

    from filamentctl.core.reading import Sample
    from filamentctl.service import main

    mode = sys.argv[1]
    home = Path(os.environ["FILAMENTCTL_HOME"])
    factory = MockFactory()

    def triggered() -> bool:
        return (home / TRIGGER).exists()

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
    if mode == "sampler":

        class CrashingSensor:
            """A cold, humid box until the trigger file appears; then the read blows up."""

            kind = "crashing"
            min_interval_s = 0.0

            def read(self) -> Sample:
                if triggered():
                    raise InjectedCrash("injected failure in the sensor read")
                return Sample(15.0, 70.0, None)

            def close(self) -> None:
                pass

        sensor = CrashingSensor()
    elif mode == "stray":

        def stray() -> None:  # a thread the service did not spawn, dying unhandled
            while not triggered():
                time.sleep(0.05)
            raise RuntimeError("injected failure in a stray thread")

        threading.Thread(target=stray, name="stray", daemon=True).start()
    elif mode in ("control", "hung-control"):
        from filamentctl.service.control import ControlLoop

        real_tick = ControlLoop.tick

        def tick(self: ControlLoop, now: float) -> None:
            if triggered():
                if mode == "control":
                    raise InjectedCrash("injected failure in the control tick")
                main.CONTROL_STALL_S = STALL_S
                with self._lock:  # a driver hung while holding the control lock
                    threading.Event().wait()
            real_tick(self, now)

        ControlLoop.tick = tick  # type: ignore[method-assign]
    elif mode == "delivery":
        from filamentctl.service.delivery import DeliveryWorker

        real_step = DeliveryWorker.step

        def step(self: DeliveryWorker) -> float:
            if triggered():
                raise InjectedCrash("injected failure in the delivery thread")
            return real_step(self)

        DeliveryWorker.step = step  # type: ignore[method-assign]
    elif mode == "accept":
        from filamentctl.service import server

        real_peer = server._peer_of

        def peer_of(sock: socket.socket) -> Any:
            if triggered():
                raise InjectedCrash("injected failure in the socket accept loop")
            return real_peer(sock)

        server._peer_of = peer_of
    elif mode == "client":
        from filamentctl.service.handlers.readings import ReadingOps

        real_read = ReadingOps.read

        def op_read(self: ReadingOps, req: Any, conn: Any) -> Any:
            if triggered():
                raise InjectedCrash("injected failure in a client's thread")
            return real_read(self, req, conn)

        ReadingOps.read = op_read  # type: ignore[method-assign]
    sys.exit(main.run(simulate=True, pin_factory=factory, sensor=sensor))


class Child:
    def __init__(self, mode: str, extra_env: dict[str, str] | None = None) -> None:
        self.home = short_home()
        env = {**os.environ, **ENV, "FILAMENTCTL_HOME": str(self.home)}
        for name in ("FILAMENTCTL_SOCKET", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)  # never talk to a real systemd around the test run
        env.update(extra_env or {})
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

    def make(mode: str, extra_env: dict[str, str] | None = None) -> Child:
        child = Child(mode, extra_env)
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


UNEXPECTED = [signal.SIGABRT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, *UNEXPECTED], ids=lambda s: s.name)
def test_every_terminating_signal_leaves_both_relays_off(
    child_factory: Any, sig: signal.Signals
) -> None:
    child = child_factory("signal")

    child.proc.send_signal(sig)
    code, pins = child.finish()

    assert_both_off(pins)
    assert (
        f"relays OFF: signal {sig.name} (heater GPIO {HEATER_PIN} level {HEATER_OFF_LEVEL}, "
        f"fan GPIO {FAN_PIN} level {FAN_OFF_LEVEL})"
    ) in child.stderr()
    # A wanted stop exits 0; any other signal is a failure, so Restart=on-failure restarts.
    assert code == (0 if sig in (signal.SIGTERM, signal.SIGINT) else 128 + sig), child.stderr()


def test_sighup_reloads_and_the_relays_keep_their_state(child_factory: Any) -> None:
    child = child_factory("signal")

    child.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: configuration reloaded" in child.stderr(), what="the reload")
    assert child.both_on(), child.stderr()  # still running, still ON
    assert "relays OFF" not in child.stderr()

    child.proc.send_signal(signal.SIGTERM)
    code, pins = child.finish()
    assert code == 0
    assert_both_off(pins)


THREAD_FAULTS = {
    "sampler": ({}, "injected failure in the sensor read", "relays OFF: internal error in"),
    "control": ({}, "injected failure in the control tick", "relays OFF: internal error in"),
    "delivery": (DELIVERY_ENV, "injected failure in the delivery thread", "relays OFF"),
    "accept": ({}, "injected failure in the socket accept loop", "relays OFF"),
    "client": ({}, "injected failure in a client's thread", "relays OFF"),
    "stray": ({}, "injected failure in a stray thread", "relays OFF: internal error in"),
}


@pytest.mark.parametrize("mode", list(THREAD_FAULTS))
def test_an_exception_in_any_thread_leaves_both_relays_off_and_exits_1(
    child_factory: Any, mode: str
) -> None:
    extra_env, message, off_line = THREAD_FAULTS[mode]
    child = child_factory(mode, extra_env)

    (child.home / TRIGGER).touch()
    if mode == "client":  # the fault sits in a request handler: send that request
        raw_request(child.socket, b'{"id":1,"op":"read"}\n', timeout=5)
    elif mode == "accept":  # ... in the accept loop: connect once
        try:
            raw_request(child.socket, b'{"id":1,"op":"ping"}\n', timeout=2)
        except OSError:
            pass
    code, pins = child.finish()

    assert code == 1, child.stderr()
    assert_both_off(pins)
    log = child.stderr()
    assert message in log
    assert off_line in log
    assert f"heater GPIO {HEATER_PIN} level {HEATER_OFF_LEVEL}" in log


class NotifySocket:
    """A fake systemd notification socket that timestamps every datagram."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if "WATCHDOG=1" in m]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_a_hung_control_thread_stops_the_watchdog_and_ends_with_both_relays_off(
    child_factory: Any, tmp_path: Path
) -> None:
    notify = NotifySocket(Path(short_home()) / "notify.sock")
    try:
        env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
        child = child_factory("hung-control", env)
        wait_until(lambda: len(notify.pings()) >= 3, what="watchdog pings while healthy")

        hung_at = time.monotonic()
        (child.home / TRIGGER).touch()  # the control thread now hangs holding its lock
        code, pins = child.finish()
        ended_at = time.monotonic()
    finally:
        notify.close()

    assert code == 1, child.stderr()
    assert_both_off(pins)
    log = child.stderr()
    assert "withholding the watchdog ping" in log  # systemd would now kill and restart it
    assert "control loop has not run" in log
    assert "relays OFF: control loop stalled" in log
    # Pings stopped well before the end: none in the last second the process lived.
    assert not [t for t in notify.pings() if t > max(hung_at, ended_at - 1.0)], notify.messages


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
