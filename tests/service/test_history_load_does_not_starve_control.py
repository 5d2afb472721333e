"""Clients hammering ``history`` cannot starve sampling or control, nor grow the service's memory.

Before: 16 clients looping over ``history`` (limit 100,000) on a 600k-reading history made readings
14–22 s old (the stale-sensor path fired and turned the heater off), and memory grew from 36 to
190 MB: every query held the lock the sampler needs and built its whole reply in memory. Now
queries read from a read-only connection in chunks, the reply is streamed, and only a couple run
at once. What is asserted here are the safety properties — the newest reading is never older than
one read interval (+1 s of slack), a heater decision is taken on the very reading that calls for
it, and the service stays under 80 MB — not how fast the queries are (see
``bench/history_load.py`` for the figures).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filamentctl.store.history import History
from tests.helpers import ServiceProcess, raw_request, short_home, wait_until

pytestmark = pytest.mark.slow

READINGS = 500_000
CLIENTS = 16
LOAD_S = 20.0
READ_INTERVAL_S = 1.0
RSS_LIMIT_MB = 80.0


def build_history(path: Path, n: int, interval_s: float = 1.0) -> None:
    """``n`` readings, one per ``interval_s``, ending now (SQL only: a second or two)."""
    schema = History(path, max_backlog=0, retention_days=0)
    schema.open()
    schema.close()  # the service holds its history exclusively: nothing of ours may keep it open
    end_ns = time.time_ns()
    step = int(interval_s * 1e9)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO readings(seq, time_ns, temperature_c, humidity, pressure_hpa)"
            " SELECT i, ? - (? - i) * ?, 20.0 + (i % 50) / 10.0, 40.0 + (i % 30), 1013.0 FROM n",
            (n, end_ns, n, step),
        )


def _rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{field} missing for pid {pid}")


def _history_client(path: Path, stop: threading.Event, ok: list[int]) -> None:
    request = b'{"id":1,"op":"history","args":{"since_s":864000,"limit":100000}}\n'
    while not stop.is_set():
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(60)
                s.connect(str(path))
                s.sendall(request)
                tail = b""
                while not tail.endswith(b"\n"):
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    tail = (tail + chunk)[-200:]
                if b'"ok":true' in tail or tail.endswith(b"]}\n"):
                    ok.append(1)
                else:
                    time.sleep(0.05)  # busy: a looping client tries again shortly
        except OSError:
            time.sleep(0.05)


@pytest.fixture
def big_box() -> Iterator[ServiceProcess]:
    home = short_home()
    (home / "state").mkdir(mode=0o700)
    build_history(home / "state" / "history.db", READINGS)
    svc = ServiceProcess(
        home,
        env={
            "FILAMENTCTL_SENSOR__READ_INTERVAL": str(READ_INTERVAL_S),
            "FILAMENTCTL_SENSOR__STALE_AFTER": "10",
            "FILAMENTCTL_HEATER__ENABLED": "true",
            "FILAMENTCTL_HEATER__MIN_TEMP_C": "18",
            "FILAMENTCTL_HEATER__MAX_TEMP_C": "20",
            "FILAMENTCTL_HEATER__MIN_CYCLE_S": "0",
            "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "1",
        },
    )
    svc.start()
    try:
        yield svc
    finally:
        svc.cleanup()


def test_history_load_leaves_sampling_control_and_memory_alone(big_box: ServiceProcess) -> None:
    path = big_box.socket
    assert big_box.proc is not None
    pid = big_box.proc.pid
    wait_until(lambda: _status(path)["readings_total"] >= 2, what="the first readings")

    # Relay and reading events in order: a heater decision must come with its reading.
    events: list[tuple[str, Any]] = []
    sub = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sub.settimeout(60)
    sub.connect(str(path))
    sub.sendall(b'{"id":"sub","op":"subscribe","args":{"topics":["reading","relay"]}}\n')
    reader = sub.makefile("rb")

    def follow() -> None:
        try:
            for line in reader:
                msg = json.loads(line)
                if "event" in msg:
                    events.append((msg["event"], msg["data"]))
        except (OSError, ValueError):
            return

    threading.Thread(target=follow, daemon=True).start()

    stop = threading.Event()
    ok: list[int] = []
    clients = [
        threading.Thread(target=_history_client, args=(path, stop, ok), daemon=True)
        for _ in range(CLIENTS)
    ]
    for c in clients:
        c.start()
    ages: list[float] = []
    rss: list[float] = []
    switch_at = time.monotonic() + LOAD_S / 2
    switched = False
    end = time.monotonic() + LOAD_S
    try:
        while time.monotonic() < end:
            reading = _status(path)["reading"]
            ages.append(float(reading["age_s"]))
            rss.append(_rss_mb(pid, "VmRSS"))
            if not switched and time.monotonic() > switch_at:
                mark = len(events)
                _request(path, {"op": "sim.set", "args": {"temperature": 15.0}})
                switched = True
            time.sleep(0.2)
    finally:
        stop.set()
        for c in clients:
            c.join(70)
        sub.close()

    assert len(ok) >= CLIENTS, f"the load did not happen: {len(ok)} history replies"
    assert max(ages) <= READ_INTERVAL_S + 1.0, f"reading age up to {max(ages):.1f} s"
    peak = _rss_mb(pid, "VmHWM")
    assert peak < RSS_LIMIT_MB, f"service peak RSS {peak:.0f} MB"

    # The first reading below the band and the heater switching ON come together: the relay
    # event is published while that reading is handled, just before the reading itself.
    after = events[mark:]
    cold = next(
        i
        for i, (name, data) in enumerate(after)
        if name == "reading" and data["temperature_c"] < 18
    )
    on = [
        i
        for i, (name, data) in enumerate(after)
        if name == "relay" and data.get("relay") == "heater" and data.get("on")
    ]
    assert on, "the heater never switched ON"
    assert on[0] < cold and not any(name == "reading" for name, _ in after[on[0] + 1 : cold]), (
        "the heater switched on a later reading than the first one below the band"
    )


def _request(path: Path, msg: dict[str, Any]) -> dict[str, Any]:
    [reply] = raw_request(path, json.dumps({"id": 1, **msg}).encode() + b"\n", timeout=10)
    assert reply["ok"], reply
    result: dict[str, Any] = reply["result"]
    return result


def _status(path: Path) -> dict[str, Any]:
    return _request(path, {"op": "status"})
