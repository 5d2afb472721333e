"""Clients hammering ``history``: does sampling keep up, and does the service's memory stay put?

``filamentctl run --simulate`` (1 s reads) in a temporary FILAMENTCTL_HOME whose history holds
``--readings`` readings (500,000 by default, built with SQL before the start). Two windows of
``--seconds`` each, measured the same way: first idle (the baseline), then with ``--clients``
threads looping over ``history`` (limit 100,000; a ``busy`` answer is retried after 50 ms). A
monitor asks ``status`` every 0.2 s for the newest reading's age and times the request; the
service's RSS comes from ``/proc/PID/status``.

Goals (the safety properties; query speed is only reported): the newest reading never older
than one read interval + 1 s, and the service's peak RSS under 80 MB. Before reads were taken off
the sampler's lock and replies streamed, 16 clients made readings 14–22 s old and grew the
service from 36 to 190 MB. Run: ``python -m bench.history_load [--quick]``. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._util import machine

READ_INTERVAL_S = 1.0
RSS_GOAL_MB = 80.0
REQUEST = b'{"id":1,"op":"history","args":{"since_s":8640000,"limit":100000}}\n'


def build_history(path: Path, n: int) -> None:
    """``n`` readings one second apart ending now, written with SQL (seconds, not minutes)."""
    from filamentctl.store.history import History

    schema = History(path, max_backlog=0, retention_days=0)
    schema.open()  # creates the schema
    schema.close()  # the service holds its history exclusively: let go before it starts
    end_ns = time.time_ns()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO readings(seq, time_ns, temperature_c, humidity, pressure_hpa)"
            " SELECT i, ? - (? - i) * 1000000000, 20.0 + (i % 50) / 10.0, 40.0 + (i % 30),"
            " 1013.0 FROM n",
            (n, end_ns, n),
        )


def _request(sock: Path, line: bytes, timeout: float = 30.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(line)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("the service closed the connection")
            buf += chunk
    reply: dict[str, Any] = json.loads(buf)
    return reply


def _mem_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def _hammer(
    sock: Path, stop: threading.Event, counts: dict[str, int], lock: threading.Lock
) -> None:
    while not stop.is_set():
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(60)
                s.connect(str(sock))
                s.sendall(REQUEST)
                size, tail = 0, b""
                while not tail.endswith(b"\n"):
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
                    tail = (tail + chunk)[-64:]
            kind = "ok" if tail.endswith(b"]}\n") else "busy"
            with lock:
                counts[kind] += 1
                counts["bytes"] += size if kind == "ok" else 0
            if kind == "busy":
                time.sleep(0.05)
        except OSError:
            with lock:
                counts["errors"] += 1
            time.sleep(0.05)


def window(sock: Path, pid: int, seconds: float, clients: int) -> dict[str, float]:
    """Measure for ``seconds`` with ``clients`` history hammers running."""
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"ok": 0, "busy": 0, "errors": 0, "bytes": 0}
    threads = [
        threading.Thread(target=_hammer, args=(sock, stop, counts, lock), daemon=True)
        for _ in range(clients)
    ]
    for t in threads:
        t.start()
    ages: list[float] = []
    latencies: list[float] = []
    rss: list[float] = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            reply = _request(sock, b'{"id":1,"op":"status"}\n')
            latencies.append(time.perf_counter() - t0)
            if not reply.get("ok"):
                raise RuntimeError(f"status failed: {reply}")
            ages.append(float(reply["result"]["reading"]["age_s"]))
            rss.append(_mem_mb(pid, "VmRSS"))
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(70)
    latencies.sort()
    return {
        "max_age_s": max(ages),
        "median_age_s": statistics.median(ages),
        "status_p95_ms": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        * 1000,
        "max_rss_mb": max(rss),
        "replies_per_s": counts["ok"] / seconds,
        "busy_per_s": counts["busy"] / seconds,
        "mb_per_s": counts["bytes"] / seconds / 1e6,
        "errors": float(counts["errors"]),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Returns the figures of both windows (``idle ...`` and ``load ...``) and the peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=500_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="8 s windows")
    args = parser.parse_args(argv)
    seconds = 8.0 if args.quick else args.seconds
    home = Path(tempfile.mkdtemp(prefix="fch"))
    (home / "state").mkdir(mode=0o700)
    t0 = time.perf_counter()
    build_history(home / "state" / "history.db", args.readings)
    built_s = time.perf_counter() - t0
    env = {
        **os.environ,
        "FILAMENTCTL_HOME": str(home),
        "FILAMENTCTL_SENSOR__READ_INTERVAL": str(READ_INTERVAL_S),
        "FILAMENTCTL_SENSOR__STALE_AFTER": "10",
    }
    env.pop("FILAMENTCTL_SOCKET", None)
    sock = home / "run" / "filamentctl.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "filamentctl", "run", "--simulate"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the service exited with {proc.returncode}: "
                    + (proc.stderr.read().decode(errors="replace")[-300:] if proc.stderr else "")
                )
            try:
                if _request(sock, b'{"id":1,"op":"status"}\n', 2)["result"]["reading"]:
                    break
            except (OSError, RuntimeError, KeyError, TypeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not come up in 30 s")
            time.sleep(0.1)
        idle = window(sock, proc.pid, seconds, 0)
        load = window(sock, proc.pid, seconds, args.clients)
        peak = _mem_mb(proc.pid, "VmHWM")
        if proc.poll() is not None:
            raise RuntimeError(f"the service died under load (exit {proc.returncode})")
    finally:
        proc.terminate()
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(home, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"the service exited with {code} when stopped")
    print(
        f"machine: {machine()}; {args.readings:,} readings in the history (built in "
        f"{built_s:.1f} s), {args.clients} history clients, {seconds:.0f} s windows"
    )
    print(
        f"{'window':<8}{'max age s':>10}{'median age':>11}{'status p95 ms':>14}{'RSS MB':>8}"
        f"{'replies/s':>10}{'busy/s':>8}{'MB/s':>7}"
    )
    for name, r in (("idle", idle), ("load", load)):
        print(
            f"{name:<8}{r['max_age_s']:>10.2f}{r['median_age_s']:>11.2f}"
            f"{r['status_p95_ms']:>14.1f}{r['max_rss_mb']:>8.1f}{r['replies_per_s']:>10.2f}"
            f"{r['busy_per_s']:>8.1f}{r['mb_per_s']:>7.1f}"
        )
    limit = READ_INTERVAL_S + 1.0
    age_met = load["max_age_s"] <= limit
    rss_met = peak < RSS_GOAL_MB
    print(
        f"newest reading under load at most {load['max_age_s']:.2f} s old (goal <= {limit:g} s): "
        + ("met" if age_met else "MISSED")
        + f"; service peak RSS {peak:.1f} MB (goal < {RSS_GOAL_MB:g} MB): "
        + ("met" if rss_met else "MISSED")
    )
    out = {f"idle {k}": v for k, v in idle.items()}
    out.update({f"load {k}": v for k, v in load.items()})
    out["peak_rss_mb"] = peak
    out["age_limit_s"] = limit
    return out


if __name__ == "__main__":
    main()
