"""No client can lock the others out of the socket: ``heater off`` and ``status`` always get in.

Before: 32 ``flush --timeout 1e9`` requests kept all 32 slots after their clients had gone (the
flush went on for its whole timeout), and 32 idle connections held every slot for 300 s; then
``heater off`` failed, and said "not running" (exit 3). Now a flush ends when its client hangs
up and its timeout is capped, only a few long operations run at once, idle connections give way
to new ones, and a socket that is really full answers ``busy`` (exit 1).

The 2 s in these tests is the socket timeout of the request that must get through, i.e. the
acceptance bound itself, not a measurement.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filamentctl import protocol
from filamentctl.client import Client, ServiceError
from filamentctl.protocol import Request
from filamentctl.service.server import LONG_OPS, MAX_CLIENTS, Connection, SocketServer
from tests.helpers import REPO, in_process_service, raw_request, settings, short_home, wait_until
from tests.servers import free_port

BOUND_S = 2.0


@pytest.fixture(scope="module")
def service() -> Iterator[Any]:
    """A box with the heater on and its database down (nothing listens on the port)."""
    values = settings(
        sensor__read_interval=0.2,
        heater__enabled=True,
        heater__min_cycle_s=0.0,
        database__type="victoriametrics",
        database__victoriametrics__url=f"http://127.0.0.1:{free_port()}",
        retry__backoff_base=5.0,
        retry__backoff_max=30.0,
    )
    with in_process_service(values) as svc:
        wait_until(lambda: svc.readings_total > 0, what="the first reading")
        yield svc


def _connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def _off_and_status_get_through(path: Path) -> None:
    [off] = raw_request(path, b'{"id":1,"op":"heater.set","args":{"mode":"off"}}\n', BOUND_S)
    assert off["ok"], off
    assert off["result"]["mode"] == "manual" and not off["result"]["on"]
    [status] = raw_request(path, b'{"id":2,"op":"status"}\n', BOUND_S)
    assert status["ok"], status
    raw_request(path, b'{"id":3,"op":"heater.set","args":{"mode":"auto"}}\n', BOUND_S)


def test_a_flush_timeout_is_capped() -> None:
    with in_process_service(settings(sensor__read_interval=0.2)) as svc:
        [reply] = raw_request(svc.paths.socket, b'{"id":1,"op":"flush","args":{"timeout":1e9}}\n')
        assert reply["error"]["code"] == protocol.INVALID_ARGS
        assert str(int(protocol.MAX_FLUSH_TIMEOUT_S)) in reply["error"]["message"]


def test_flushes_whose_clients_hung_up_free_their_slots(service: Any) -> None:
    path = service.paths.socket
    clients = [_connect(path) for _ in range(MAX_CLIENTS)]
    request = json.dumps(
        {"id": 1, "op": "flush", "args": {"timeout": protocol.MAX_FLUSH_TIMEOUT_S}}
    ).encode()
    # The first few take every flush slot (each confirmed running before the rest ask, as the
    # server handles connections in parallel, in no set order) ...
    for c in clients[: LONG_OPS["flush"]]:
        c.sendall(request + b"\n")
    wait_until(lambda: service.server.running("flush") == LONG_OPS["flush"], what="the flushes")
    # ... and the rest are told busy at once.
    for c in clients[LONG_OPS["flush"] :]:
        c.sendall(request + b"\n")
    busy = 0
    for c in clients[LONG_OPS["flush"] :]:
        reply = json.loads(c.makefile("rb").readline())
        busy += reply.get("error", {}).get("code") == protocol.BUSY
    assert busy == MAX_CLIENTS - LONG_OPS["flush"]
    # While they are all still connected, OFF gets through (an idle one gives way) ...
    _off_and_status_get_through(path)
    for c in clients:
        c.close()
    # ... and once their clients hung up, the flushes stop (not after 3600 s).
    wait_until(lambda: service.server.connections() == 0, what="the flushes to end")
    _off_and_status_get_through(path)


def test_idle_connections_give_way(service: Any) -> None:
    path = service.paths.socket
    held = [_connect(path) for _ in range(2 * MAX_CLIENTS)]
    try:
        wait_until(lambda: service.server.connections() == MAX_CLIENTS, what="a full socket")
        _off_and_status_get_through(path)
        env = {**os.environ, "FILAMENTCTL_SOCKET": str(path)}
        for argv in (["heater", "off"], ["status"], ["heater", "auto"]):
            done = subprocess.run(
                [sys.executable, "-m", "filamentctl", *argv],
                env=env,
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=60,
            )
            assert done.returncode == 0, (argv, done.stderr)
    finally:
        for s in held:
            s.close()


@pytest.fixture
def jammed() -> Iterator[tuple[Path, threading.Event]]:
    """A socket whose every slot is in the middle of a request that does not finish."""
    home = short_home()
    path = home / "s.sock"
    release = threading.Event()

    def dispatch(req: Request, conn: Connection) -> Any:
        release.wait(30)
        return {}

    server = SocketServer(path, dispatch, max_clients=2)
    server.start()
    holders = [_connect(path) for _ in range(2)]
    for h in holders:
        h.sendall(b'{"id":1,"op":"status"}\n')
    try:
        yield path, release
    finally:
        release.set()
        for h in holders:
            h.close()
        server.stop()


def test_a_full_socket_says_busy_not_not_running(jammed: tuple[Path, threading.Event]) -> None:
    path, _release = jammed
    with pytest.raises(ServiceError) as err, Client.connect(path, timeout=5) as client:
        client.call("status")
    assert err.value.code == protocol.BUSY and err.value.exit_code == 1
    done = subprocess.run(
        [sys.executable, "-m", "filamentctl", "heater", "off"],
        env={**os.environ, "FILAMENTCTL_SOCKET": str(path)},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("filamentctl: the service is busy")
    assert done.stderr.count("\n") == 1


def test_a_busy_answer_is_retried_until_a_slot_frees(
    jammed: tuple[Path, threading.Event],
) -> None:
    path, release = jammed
    threading.Timer(0.5, release.set).start()
    with Client.connect(path, timeout=5) as client:
        assert client.call("status") == {}


def test_a_client_that_only_stopped_sending_still_gets_its_flush(service: Any) -> None:
    """``printf ... | socat`` shuts down its sending side and waits: that is not hanging up."""
    with _connect(service.paths.socket) as s:
        s.sendall(b'{"id":1,"op":"flush","args":{"timeout":1}}\n')
        s.shutdown(socket.SHUT_WR)
        lines = s.makefile("rb").read().splitlines()
    reply = json.loads(lines[-1])
    assert reply["ok"] and "cancelled" not in str(reply["result"]["error"]), reply
    assert "cannot reach" in str(reply["result"]["error"])  # it really tried, to the end
