"""sd_notify under a (pretend) systemd: a real AF_UNIX datagram socket bound by the test.

The service process says READY=1 once it runs, pings WATCHDOG=1 while its control path is
healthy, and STOPPING=1 on the way out. In-process, a control path that stalls (a relay driver
hanging while it holds the control loop) makes the watchdog ping stop until it recovers.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from filamentctl.service import main, systemd
from tests.helpers import ServiceProcess, in_process_service, settings, wait_until


class NotifySocket:
    """What systemd listens on: collects the datagrams the service sends."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fc"))
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def receive(self) -> list[str]:
        """Everything received so far (drains the socket without waiting for more)."""
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:  # nothing more queued right now
                return self.messages

    def saw(self, text: str) -> bool:
        return any(text in m.split("\n") for m in self.receive())

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    ns = NotifySocket()
    yield ns
    ns.close()


def test_service_process_sends_ready_watchdog_and_stopping(notify_socket: NotifySocket) -> None:
    svc = ServiceProcess(
        env={
            "NOTIFY_SOCKET": str(notify_socket.path),
            "WATCHDOG_USEC": "200000",  # ping every 0.1 s
            "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
        }
    )
    try:
        svc.start()
        wait_until(lambda: notify_socket.saw("READY=1"), what="READY=1")
        wait_until(lambda: notify_socket.saw("WATCHDOG=1"), what="a watchdog ping")
        ready_at = next(i for i, m in enumerate(notify_socket.messages) if "READY=1" in m)
        first_ping = notify_socket.messages.index("WATCHDOG=1")
        assert ready_at < first_ping  # no ping before the service says it is ready

        assert svc.signal(signal.SIGTERM) == 0
        assert notify_socket.saw("STOPPING=1")
    finally:
        svc.cleanup()


def test_no_watchdog_pings_without_watchdog_usec(notify_socket: NotifySocket) -> None:
    svc = ServiceProcess(env={"NOTIFY_SOCKET": str(notify_socket.path)})
    svc.env.pop("WATCHDOG_USEC", None)  # in case the test run itself is under a watchdog
    try:
        svc.start()
        wait_until(lambda: notify_socket.saw("READY=1"), what="READY=1")
        assert svc.signal(signal.SIGTERM) == 0
        assert notify_socket.saw("STOPPING=1")
        assert "WATCHDOG=1" not in notify_socket.receive()
    finally:
        svc.cleanup()


class HangingPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type hints
    """A relay driver that hangs when switched ON while ``gate`` is closed.

    Stands in for a stuck GPIO driver, which no real counterpart can produce on demand.
    """

    gate = threading.Event()

    def _set_state(self, value: bool) -> None:
        if value and self.function == "output":
            type(self).gate.wait(timeout=60)
        super()._set_state(value)


def test_watchdog_is_withheld_while_the_control_path_stalls(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    gated: type[HangingPin] = type("Hanging", (HangingPin,), {"gate": threading.Event()})
    gated.gate.set()  # open: the relay works
    values = settings(
        sensor__read_interval=0.1,
        heater__enabled=True,
        heater__min_temp_c=18.0,
        heater__max_temp_c=22.0,
        heater__min_cycle_s=0.0,
    )
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "100000"}
    caplog.set_level(logging.DEBUG, logger="filamentctl.service")
    with in_process_service(values, pin_factory=MockFactory(pin_class=gated)) as svc:
        try:
            svc.box.set(temperature_c=23.0)  # heater OFF for now
            assert main.start_watchdog(svc, env) is not None
            wait_until(lambda: notify_socket.saw("WATCHDOG=1"), what="a first ping")

            gated.gate.clear()  # the heater relay's driver will now hang when switched ON...
            svc.box.set(temperature_c=17.0)  # ...which the next reading asks for

            assert_pings_withheld(notify_socket, caplog)

            gated.gate.set()  # the driver recovers

            wait_until(lambda: notify_socket.saw("WATCHDOG=1"), what="pings to resume")
            assert svc.control.heater_is_on()
        finally:
            gated.gate.set()


def test_watchdog_is_withheld_once_the_relays_are_shut_off(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "100000"}
    caplog.set_level(logging.DEBUG, logger="filamentctl.service")
    with in_process_service(settings(sensor__read_interval=0.1, heater__enabled=True)) as svc:
        assert main.start_watchdog(svc, env) is not None
        wait_until(lambda: notify_socket.saw("WATCHDOG=1"), what="a first ping")

        # What a relay that cannot be switched leads to: both OFF for good, control over.
        svc.control.all_off("test: relay error")

        assert_pings_withheld(notify_socket, caplog)


def assert_pings_withheld(notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture) -> None:
    """Once the watchdog notices, no WATCHDOG=1 arrives over three more of its periods."""
    wait_until(lambda: "control path unhealthy" in caplog.text, what="the watchdog to notice")
    notify_socket.receive()
    notify_socket.messages.clear()
    withheld = caplog.text.count("watchdog ping withheld")
    wait_until(
        lambda: caplog.text.count("watchdog ping withheld") >= withheld + 3,
        what="three more watchdog periods",
    )
    assert "WATCHDOG=1" not in notify_socket.receive()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "3000000"}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}, None),  # for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], expected: float | None
) -> None:
    assert systemd.watchdog_interval_s(env) == expected


def test_notify_outside_systemd_or_to_a_missing_socket_is_harmless() -> None:
    assert systemd.notify("READY=1", {}) is False
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/notify"}) is False
