"""Stopping the service the hard ways, against the real VictoriaMetrics.

- SIGTERM while the server is down keeps the backlog; the next start delivers all of it.
- ``kill -9`` loses at most one commit interval of readings, leaves a history database that
  passes ``PRAGMA integrity_check``, and delivery resumes with no duplicates.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.delivery_rig import (
    flush,
    history_of,
    service_env,
    sigterm,
    status_of,
    storage_of,
    vm_audit,
    vm_settings,
    wait_delivered,
)
from tests.helpers import ServiceProcess, wait_until
from tests.servers import VictoriaMetricsServer

pytestmark = [pytest.mark.servers, pytest.mark.slow]

READ_INTERVAL_S = 0.2
COMMIT_INTERVAL_S = 1.0


def history_db(svc: ServiceProcess) -> Path:
    return svc.home / "state" / "history.db"


def test_sigterm_during_an_outage_then_a_restart_with_the_server_back_loses_nothing(
    victoriametrics_outage: VictoriaMetricsServer, unique_name: str
) -> None:
    vm = victoriametrics_outage
    env = service_env(vm_settings(vm.url), unique_name)
    first = ServiceProcess(env=env).start()
    second = ServiceProcess(home=first.home, env=env)
    try:
        wait_delivered(first)
        vm.stop()
        wait_until(
            lambda: storage_of(first)["backlog"] >= 15, timeout=30, interval=0.3, what="a backlog"
        )
        sigterm(first)  # the server is still down: the backlog must stay in the history
        kept = {row["seq"] for row in history_of(first)}
        vm.start()

        second.start()
        flush(second)
        sigterm(second)
        rows = history_of(second)
        assert kept <= {row["seq"] for row in rows}
        vm_audit("victoriametrics", vm, unique_name, rows).assert_exactly_once()
    finally:
        second.cleanup()
        first.cleanup()


def test_kill9_loses_at_most_one_commit_interval_and_delivery_resumes_without_duplicates(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    vm = victoriametrics_server
    env = service_env(vm_settings(vm.url), unique_name)
    env["FILAMENTCTL_STORAGE__COMMIT_INTERVAL"] = str(COMMIT_INTERVAL_S)
    first = ServiceProcess(env=env).start()
    second = ServiceProcess(home=first.home, env=env)
    try:
        wait_delivered(first, at_least=10)
        last_seen = status_of(first)["reading"]["seq"]  # may still be only in memory
        first.kill9()

        # Closed before the next start: a running service holds its history exclusively.
        with contextlib.closing(sqlite3.connect(history_db(first))) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            (last_saved,) = db.execute("SELECT MAX(seq) FROM readings").fetchone()
        # One commit interval of readings, plus the one sampled while the commit ran and those
        # taken between our status call and the kill.
        allowed = COMMIT_INTERVAL_S / READ_INTERVAL_S + 3
        assert last_seen - last_saved <= allowed, (last_seen, last_saved)

        second.start()
        wait_until(
            lambda: status_of(second)["readings_total"] >= 10, timeout=30, what="new readings"
        )
        flush(second)
        sigterm(second)
        rows = history_of(second)
        assert max(row["seq"] for row in rows) > last_saved  # sampling went on after the crash
        vm_audit("victoriametrics", vm, unique_name, rows).assert_exactly_once()
    finally:
        second.cleanup()
        first.cleanup()
