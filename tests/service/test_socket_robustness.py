"""The socket survives anything a client sends: each bad line gets an error, sampling goes on."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from filamentctl.core.reading import FIELDS
from filamentctl.service.app import Service
from tests.helpers import REPO, in_process_service, raw_request, settings, wait_until


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with in_process_service(settings(sensor__read_interval=0.1)) as svc:
        yield svc


def _seq(svc: Service) -> int:
    return wait_until(lambda: svc.latest and svc.latest.seq, what="a reading")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"this is not json", "bad_json"),
        (b"\xff\xfe\x00garbage", "bad_json"),
        (b"[1, 2, 3]", "bad_request"),
        (b'"just a string"', "bad_request"),
        (b'{"id": 1}', "bad_request"),
        (b'{"id": 1, "op": 42}', "bad_request"),
        (b'{"id": 1, "op": "status", "args": [1]}', "bad_request"),
        (b'{"id": {"nested": true}, "op": "status"}', "bad_request"),
        (b'{"v": 99, "id": 1, "op": "status"}', "unsupported_version"),
        (b"[" * 100_000 + b"]" * 100_000, "too_large"),
        (b"[" * 30_000 + b"]" * 30_000, "bad_json"),
        (b'{"id": 1, "op": "reactor.meltdown"}', "unknown_op"),
        (b'{"id": 1, "op": "history", "args": {"since_s": "yesterday"}}', "invalid_args"),
        (b'{"id": 1, "op": "history", "args": {"limit": -5}}', "invalid_args"),
        (b'{"id": 1, "op": "history", "args": {"limit": 1000000000}}', "invalid_args"),
        (b'{"id": 1, "op": "history", "args": {"since_s": 1e15}}', "invalid_args"),
        (b'{"id": 1, "op": "history", "args": {"step_s": 0}}', "invalid_args"),
        (b'{"id": 1, "op": "fan.set", "args": {"mode": "on", "for_s": 1e12}}', "invalid_args"),
        (b'{"id": 1, "op": "flush", "args": {"timeout": null}}', "invalid_args"),
        (b'{"id": 1, "op": "sim.set", "args": {"temperature": "hot"}}', "invalid_args"),
        (b'{"id": 1, "op": "sim.set", "args": {"fault": "fire"}}', "invalid_args"),
        (b'{"id": 1, "op": "heater.set", "args": {"mode": "maybe"}}', "invalid_args"),
        (b'{"id": 1, "op": "heater.set", "args": {"mode": "on", "for_s": -1}}', "invalid_args"),
    ],
)
def test_bad_request_gets_named_error_and_sampling_continues(
    service: Service, line: bytes, code: str
) -> None:
    before = _seq(service)
    [reply] = raw_request(service.server.path, line + b"\n")
    assert reply["ok"] is False
    assert reply["error"]["code"] == code
    assert reply["error"]["message"]
    wait_until(lambda: service.latest.seq > before, what="sampling to go on")


def test_ten_megabyte_line_is_refused_and_connection_still_usable(service: Service) -> None:
    before = _seq(service)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(service.server.path))
        s.sendall(b'{"id": 1, "op": "status", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}\n')
        s.sendall(b'{"id": 2, "op": "ping"}\n')
        f = s.makefile("rb")
        first = json.loads(f.readline())
        second = json.loads(f.readline())
    assert first["ok"] is False and first["error"]["code"] == "too_large"
    assert second == {"v": 1, "id": 2, "ok": True, "result": second["result"]}
    assert second["result"]["pong"] is True
    wait_until(lambda: service.latest.seq > before, what="sampling to go on")


def test_many_requests_on_one_connection_each_get_their_id_back(service: Service) -> None:
    payload = b"".join(
        json.dumps({"id": f"r{i}", "op": "ping"}).encode() + b"\n" for i in range(50)
    )
    replies = raw_request(service.server.path, payload)
    assert [r["id"] for r in replies] == [f"r{i}" for i in range(50)]
    assert all(r["ok"] for r in replies)


def test_client_disconnecting_mid_line_does_not_disturb_service(service: Service) -> None:
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(service.server.path))
            s.sendall(b'{"id": 1, "op": "sta')
    [reply] = raw_request(service.server.path, b'{"id": 7, "op": "status"}\n')
    assert reply["ok"] and reply["result"]["reading"]["seq"] >= 1


def test_socket_file_is_group_accessible_only(service: Service) -> None:
    mode = service.server.path.stat().st_mode & 0o777
    assert mode == 0o660


def test_status_has_the_documented_fields(service: Service) -> None:
    _seq(service)
    [reply] = raw_request(service.server.path, b'{"id": 1, "op": "status"}\n')
    st = reply["result"]
    for key in ("version", "uptime_s", "readings_total", "reading", "sensor", "storage"):
        assert key in st
    for key in ("time", "seq", "age_s", *FIELDS):
        assert key in st["reading"], key
    for key in ("type", "health", "last_error", "errors"):
        assert key in st["sensor"], key
    for key in (
        "backend",
        "connected",
        "backlog",
        "oldest_unsent_age_s",
        "written",
        "dropped",
        "rejected",
        "dead_letter",
        "last_error",
        "next_retry_s",
    ):
        assert key in st["storage"], key
    for relay in ("heater", "fan"):
        for key in ("on", "pin_level", "mode", "reason", "override_until", "thresholds"):
            assert key in st[relay], (relay, key)


def test_subscribers_that_hang_up_do_not_use_up_the_clients(service: Service) -> None:
    """Quiet topics mean no send ever fails: the service must still notice a closed client."""
    from filamentctl.service.server import LONG_OPS

    for _round in range(2):  # the most subscribers at once, twice: the first ones' slots free
        for _ in range(LONG_OPS["subscribe"]):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(service.server.path))
                s.sendall(b'{"id": 1, "op": "subscribe", "args": {"topics": ["alert"]}}\n')
                assert json.loads(s.makefile("rb").readline())["event"] == "status"
        # Before the fix these threads lived forever and the next clients were refused.
        wait_until(lambda: len(service.server._clients) == 0, what="subscriber threads to end")
    [reply] = raw_request(service.server.path, b'{"id": 2, "op": "status"}\n')
    assert reply["ok"]


def test_unknown_subscribe_topic_is_refused(service: Service) -> None:
    [reply] = raw_request(
        service.server.path, b'{"id": 1, "op": "subscribe", "args": {"topics": ["weather"]}}\n'
    )
    assert reply["error"]["code"] == "invalid_args" and "reading" in reply["error"]["message"]


def test_the_documented_operations_are_exactly_what_the_service_handles(service: Service) -> None:
    from filamentctl import protocol

    assert set(service.handlers) == set(protocol.OPS)
    documented = (REPO / "docs" / "protocol.md").read_text()
    for op in protocol.OPS:
        assert f"`{op}`" in documented, op


def test_a_live_socket_too_busy_to_answer_is_never_taken_over(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Starting a second server on a socket whose listener has a full queue: the probe's connect
    times out rather than being refused. That is a live service: refused, its socket kept."""
    from filamentctl.errors import UserError
    from filamentctl.service.server import SocketServer

    path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(0)
    queued = []
    try:
        while True:  # fill the queue: the next connect would block
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(str(path))
            except BlockingIOError:
                c.close()
                break
            queued.append(c)
        server = SocketServer(path, lambda req, conn: None)
        with pytest.raises(UserError, match="already running"):
            server.start()
        assert path.is_socket()
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        with pytest.raises(BlockingIOError):  # still the same, live (busy) listener
            probe.connect(str(path))
        probe.close()
    finally:
        for c in queued:
            c.close()
        listener.close()
