"""``storage.max_backlog`` is a hard cap: the backlog never exceeds it, whatever the commit rate.

A real service (in this process: real SQLite, real socket, simulated sensor) samples every 0.05 s
for 15 s while its database is down (nothing listens on the configured port), with a cap of 100
and the default 10 s commit interval, so each commit brings ~200 new readings. ``filamentctl status
--json``, run as a separate process every 0.2 s, must never show a backlog above 100; the readings
that did not fit are counted in ``dropped``, and the drop is logged once for the whole episode.
The episode rule itself is tested on the delivery worker with a hand-driven clock.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.outcome import ACKED, Outcome, WriteResult
from filamentctl.core.reading import Reading
from filamentctl.service.delivery import CAP_CHECK_INTERVAL_S, DeliveryWorker
from filamentctl.store.history import History
from tests.helpers import REPO, in_process_service, settings, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.slow

CAP = 100
READ_INTERVAL_S = 0.05
RUN_S = 15.0
POLL_S = 0.2


def _status(socket_path: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "filamentctl", "--socket", socket_path, "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_the_backlog_never_exceeds_the_cap_and_drops_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    values = settings(
        sensor__read_interval=READ_INTERVAL_S,  # below the schema's minimum: in-process only
        database__type="victoriametrics",
        database__victoriametrics__url=f"http://127.0.0.1:{free_port()}",  # nothing listens
        storage__max_backlog=CAP,
        retry__backoff_base=1.0,
        retry__backoff_max=2.0,
        storage__commit_interval=10.0,  # ~200 readings per commit: each one goes over the cap
    )
    backlogs: list[int] = []
    with caplog.at_level(logging.INFO), in_process_service(values) as service:
        socket_path = str(service.paths.socket)
        end = time.monotonic() + RUN_S
        while time.monotonic() < end:
            backlogs.append(_status(socket_path)["storage"]["backlog"])
            time.sleep(POLL_S)
        # Until the next commit the newest readings are buffered; commit them as a flush would.
        service.sampler.commit()
        final = _status(socket_path)
        readings = service.readings_total
        history_path = service.paths.history_db
        service.stop(delivery_timeout=0.5)
        history = History(history_path, max_backlog=CAP, retention_days=0)
        history.open()
        try:
            stored = len(history.query(None))
            counters = history.counters()
        finally:
            history.close()

    assert max(backlogs) <= CAP, backlogs
    assert CAP in backlogs  # it did fill up (the test is not vacuous)
    assert readings > 2 * CAP
    storage = final["storage"]
    assert storage["backlog"] == CAP and storage["written"] == 0
    # Every reading is either still in the backlog or counted as dropped.
    assert stored == readings
    assert counters["dropped"] == stored - CAP
    warnings = [r for r in caplog.records if "exceeded storage.max_backlog" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


class _HandClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _DownSink:
    """A database that is down until ``up`` is set."""

    name = "down"

    def __init__(self) -> None:
        self.up = False

    def open(self) -> None:
        pass

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        if self.up:
            return ACKED
        return WriteResult(Outcome.RETRY, None, "connection refused")

    def describe(self) -> str:
        return "a database that is down"

    def close(self) -> None:
        pass


def test_one_warning_per_episode_even_when_commits_are_rarer_than_the_checks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An episode lasts until delivery brings the backlog back under the cap: a check that
    finds no new drop (no commit since the last one) does not end it."""
    history = History(tmp_path / "history.db", max_backlog=5, retention_days=0)
    history.open()
    clock = _HandClock()
    sink = _DownSink()
    worker = DeliveryWorker(
        history,
        sink,
        {
            "writer.batch_size": 100,
            "writer.flush_interval": 0.0,  # due at once: the hand clock only moves on demand
            "retry.backoff_base": 0.1,
            "retry.backoff_max": 0.1,
            "retry.alert_threshold": 0,
            "retry.alert_command": "",
        },
        clock=clock,
        rng=lambda: 0.0,
    )

    def next_cycle() -> None:
        """Move past the next cap check and let the worker run one more attempt."""
        before = worker.status()["errors_total"]
        clock.now += CAP_CHECK_INTERVAL_S + 1
        worker.wake()
        wait_until(lambda: worker.status()["errors_total"] > before, what="another attempt")

    def add(n: int) -> None:
        for i in range(n):
            history.add(Reading(i, history.next_seq(), 20.0, 40.0))
        history.commit()

    with caplog.at_level(logging.INFO, logger="filamentctl.delivery"):
        worker.start()
        try:
            add(8)  # 3 over the cap
            next_cycle()
            next_cycle()  # no commit since: nothing new dropped, the backlog still at the cap
            add(4)  # 4 more over it
            next_cycle()
            assert history.backlog_count(sink.name) == 5
            sink.up = True  # the database is back: the backlog drains
            clock.now += 1
            worker.wake()
            wait_until(lambda: history.backlog_count(sink.name) == 0, what="the drain")
            clock.now += CAP_CHECK_INTERVAL_S + 1
            worker.wake()
            wait_until(
                lambda: any("back under" in r.getMessage() for r in caplog.records),
                what="the end of the episode",
            )
        finally:
            worker.stop(1.0)
            history.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "filamentctl.delivery"]
    assert len([m for m in messages if "exceeded storage.max_backlog" in m]) == 1, messages
    assert len([m for m in messages if "back under" in m]) == 1, messages
    assert history_dropped(tmp_path / "history.db") == 7


def history_dropped(path: Path) -> int:
    h = History(path, max_backlog=5, retention_days=0)
    h.open()
    try:
        return h.counters()["dropped"]
    finally:
        h.close()
