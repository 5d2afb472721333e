"""The socket client: answers, errors and interruption, against a real Unix socket."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from filamentctl.client import Client, ServiceError
from filamentctl.errors import ServiceNotRunning

#: Starts a one-connection server scripted by ``behave``; returns its socket path.
Server = Callable[[Callable[[socket.socket], None]], Path]


@pytest.fixture
def server() -> Iterator[Server]:
    """A one-connection Unix socket server whose behaviour each test scripts."""
    tmp = Path(tempfile.mkdtemp(prefix="fc"))
    threads: list[threading.Thread] = []

    def start(behave: Callable[[socket.socket], None]) -> Path:
        path = tmp / "s.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                behave(conn)
            listener.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)
        return path

    yield start
    for t in threads:
        t.join(timeout=5)
    shutil.rmtree(tmp, ignore_errors=True)


def test_error_without_id_answers_the_pending_call(server: Server) -> None:
    """E.g. 'too many clients': a refusal, not 'the service is not running' (exit 3)."""

    def refuse(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(
            b'{"v":1,"id":null,"ok":false,"error":{"code":"refused",'
            b'"message":"too many clients"}}\n'
        )

    with Client(server(refuse)) as client:
        client._open()
        with pytest.raises(ServiceError, match="too many clients") as info:
            client.call("status")
    assert info.value.exit_code == 1


def test_a_multi_megabyte_reply_arrives_whole(server: Server) -> None:
    rows = [{"seq": i, "time": "x" * 40} for i in range(60_000)]

    def big(conn: socket.socket) -> None:
        req = json.loads(conn.makefile("rb").readline())
        conn.sendall(
            json.dumps({"v": 1, "id": req["id"], "ok": True, "result": rows}).encode() + b"\n"
        )

    with Client(server(big)) as client:
        client._open()
        assert client.call("history") == rows


def test_interrupt_wakes_a_blocked_subscription(server: Server) -> None:
    done = threading.Event()

    def silent(conn: socket.socket) -> None:
        conn.recv(1024)
        done.wait(10)

    with Client(server(silent), timeout=None) as client:
        client._open()
        errors: list[BaseException] = []

        def read() -> None:
            try:
                next(iter(client.subscribe()))
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        client.interrupt()
        reader.join(timeout=5)
        done.set()
    assert not reader.is_alive()
    assert errors and isinstance(errors[0], ServiceNotRunning)
