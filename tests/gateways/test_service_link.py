"""The gateways' link to the service: events flow, a lost service is reported and rejoined."""

from __future__ import annotations

import shutil
import threading
from typing import Any

from gpiozero.pins.mock import MockFactory

from filamentctl import paths as _paths
from filamentctl.link import ServiceLink
from filamentctl.service.app import Service
from tests.helpers import settings, short_home, wait_until


def _service(home: Any) -> Service:
    paths = _paths.resolve({"FILAMENTCTL_HOME": str(home)})
    service = Service(
        settings(sensor__read_interval=0.1), paths, simulate=True, pin_factory=MockFactory()
    )
    service.start()
    return service


def test_link_streams_events_reports_a_lost_service_and_reconnects() -> None:
    home = short_home()
    events: list[str] = []
    drops: list[tuple[str, int]] = []
    lock = threading.Lock()

    def on_event(name: str, _data: Any) -> None:
        with lock:
            events.append(name)

    def on_disconnect(reason: str, _delay: float, attempt: int) -> None:
        with lock:
            drops.append((reason, attempt))

    sock = _paths.resolve({"FILAMENTCTL_HOME": str(home)}).socket
    service = _service(home)
    link = ServiceLink(
        on_event, on_disconnect, socket_path=sock, reconnect_base_s=0.05, reconnect_max_s=0.2
    )
    try:
        link.start()
        wait_until(lambda: "reading" in events, what="a reading event")
        assert events[0] == "status"  # every (re)connection starts with a snapshot
        assert link.call("ping")["pong"] is True
        service.stop(delivery_timeout=1.0)
        wait_until(lambda: drops, what="the disconnection to be reported")
        assert not link.connected.is_set()
        with lock:
            events.clear()
        service = _service(home)
        wait_until(lambda: "status" in events, what="the link to come back")
        assert link.connected.is_set()
    finally:
        assert link.stop()
        service.stop(delivery_timeout=1.0)
        shutil.rmtree(home, ignore_errors=True)


def test_a_failing_callback_does_not_end_the_stream() -> None:
    home = short_home()
    seen: list[str] = []

    def on_event(name: str, _data: Any) -> None:
        seen.append(name)
        raise RuntimeError("gateway bug")

    service = _service(home)
    link = ServiceLink(on_event, socket_path=service.paths.socket)
    try:
        link.start()
        wait_until(lambda: seen.count("reading") >= 3, what="events after a failing callback")
        assert link.connected.is_set()
    finally:
        assert link.stop()
        service.stop(delivery_timeout=1.0)
        shutil.rmtree(home, ignore_errors=True)
