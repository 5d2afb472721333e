"""Requests that change something are logged with their peer, and a flood of them is not."""

from __future__ import annotations

import logging

import pytest

from filamentctl.service.audit import AuditLog
from tests.helpers import in_process_service, raw_request, settings


class HandClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_cut_to_a_burst_and_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.audit")
    clock = HandClock()
    audit = AuditLog(logger, clock=clock, burst=5, window_s=10.0)
    caplog.set_level(logging.INFO, logger="test.audit")
    for i in range(7705):
        clock.now = i * 12.0 / 7705  # 7,705 requests in 12 s, as the review's toggle script
        audit.record("heater.set", "pid 7 uid 1001", f"heater on #{i}")
    clock.now = 25.0
    audit.flush()
    lines = [r.getMessage() for r in caplog.records]
    # Two windows: 5 lines each, plus one summary each for the rest.
    assert len([x for x in lines if x.startswith("heater on #")]) == 10
    summaries = [x for x in lines if "not logged" in x]
    assert len(summaries) == 2
    assert sum(int(x.split()[0]) for x in summaries) == 7705 - 10
    assert all("(peer pid 7 uid 1001)" in x for x in lines if x.startswith("heater on #"))


def test_each_operation_has_its_own_budget(caplog: pytest.LogCaptureFixture) -> None:
    clock = HandClock()
    audit = AuditLog(logging.getLogger("test.audit2"), clock=clock, burst=1, window_s=10.0)
    caplog.set_level(logging.INFO, logger="test.audit2")
    audit.record("heater.set", "p", "heater off")
    audit.record("fan.set", "p", "fan off")
    assert [r.getMessage() for r in caplog.records] == ["heater off (peer p)", "fan off (peer p)"]


def test_heater_requests_are_logged_with_the_peer_pid_and_uid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import os

    caplog.set_level(logging.INFO, logger="filamentctl")
    values = settings(sensor__read_interval=0.1, heater__enabled=True)
    with in_process_service(values) as svc:
        raw_request(svc.paths.socket, b'{"id":1,"op":"heater.set","args":{"mode":"off"}}\n')
        raw_request(svc.paths.socket, b'{"id":2,"op":"heater.reset"}\n')
    lines = [r.getMessage() for r in caplog.records]
    me = f"uid {os.getuid()}"
    assert any(x.startswith("heater off") and me in x and "peer pid" in x for x in lines), lines
    assert any(x.startswith("heater reset") and me in x for x in lines), lines


def test_unknown_request_arguments_are_refused() -> None:
    with in_process_service() as svc:
        line = b'{"id":1,"op":"heater.set","args":{"mode":"on","extra":1}}\n'
        reply = raw_request(svc.paths.socket, line)[0]
    assert reply["error"]["code"] == "invalid_args"
    assert "extra" in reply["error"]["message"]
