"""``notify.test`` at most once per NOTIFY_TEST_EVERY_S, on a hand clock (the real op, the real
handler; the service behind it is an in-process one with no notification URL, so the limit only
starts once a message really went out)."""

from __future__ import annotations

import os
import socket

import pytest

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.handlers.extras import NOTIFY_TEST_EVERY_S, NotifyOps
from filamentctl.service.server import Connection, Peer
from tests.capture import CaptureServer
from tests.helpers import in_process_service, settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_counts_only_tests_that_went_out_and_ends_on_time() -> None:
    clock = Clock()
    ours, theirs = socket.socketpair()
    with (
        CaptureServer() as cap,
        in_process_service(settings(sensor__read_interval=0.2)) as svc,
        ours,
        theirs,
    ):
        ops = NotifyOps(svc, clock)
        conn = Connection(ours, Peer(pid=os.getpid(), uid=0, gid=0))
        req = Request(id=1, op="notify.test", args={})
        # Nothing configured: answered, and no limit starts.
        assert ops.test(req, conn) == {
            "box": "default",
            "via": "service",
            "configured": False,
            "results": [],
        }
        svc.settings["notify.urls"] = cap.url("t")
        first = ops.test(req, conn)
        assert isinstance(first, dict) and first["configured"]
        clock.now += NOTIFY_TEST_EVERY_S - 1
        with pytest.raises(ProtocolError) as refused:
            ops.test(req, conn)
        assert refused.value.code == protocol.REFUSED
        assert "try again in 1 s" in refused.value.message
        clock.now += 1
        assert isinstance(ops.test(req, conn), dict)
        assert cap.count() == 2
