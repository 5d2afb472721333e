"""The web gateway's footprint: resident memory while it serves, and the weight of the page.

Setup: a temporary FILAMENTCTL_HOME whose history is seeded with 24 h of readings every 10 s
(so the chart's history answers are full size), ``filamentctl run --simulate`` at 2 readings/s,
and ``filamentctl web`` on a free loopback port.

* **RSS.** After a warm-up (the page loaded three times), ``--streams`` event-stream clients stay
  connected for the measuring window while readings flow; then ``VmRSS``/``VmHWM`` of the gateway
  from ``/proc/PID/status``. Baseline, same run: a bare aiohttp server (one route) after one
  request. Goal: at most 40 MB.
* **Page weight.** Everything the page loads, uncompressed: ``/``, every file it references
  (stylesheet, script, icon, found by parsing the HTML), and the API answers the script asks for
  on load (``/api/session``, ``/api/status``, ``/api/history`` for the default 1 h range at the
  script's 10 s step) plus the event stream's first event. Goal: at most 150 KB (150,000 bytes).
  The browser test checks that the page loads nothing outside this list.

Linux only. Run: ``python -m bench.web_gateway [--seconds 30] [--streams 4] [--quick]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._util import machine, terminate
from bench._util import stop as check_stop

REPO = Path(__file__).resolve().parents[1]
PAGE_GOAL_BYTES = 150_000
RSS_GOAL_MB = 40.0
CHART_POINTS = 360  # as app.js: step = range / 360


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    mem = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            mem[key] = int(value.split()[0]) / 1024
    return mem["VmRSS"], mem["VmHWM"]


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}: {body[:200]!r}")
        return body
    finally:
        conn.close()


def _first_event(port: int) -> bytes:
    """The event stream up to the end of its first event (the ``status`` snapshot)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/events")
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"/api/events answered {resp.status}")
        out = b""
        while b"\nevent: status\n" not in out or not out.endswith(b"\n\n"):
            line = resp.fp.readline()
            if not line:
                raise RuntimeError("the event stream ended before its first event")
            out += line
        return out
    finally:
        conn.close()


def _wait_http(port: int, proc: subprocess.Popen[bytes], what: str, path: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        try:
            _get(port, path)
            return
        except (OSError, RuntimeError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer in 30 s") from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, 20)


def _seed_history(home: Path, hours: float = 24.0, every_s: float = 10.0) -> int:
    from filamentctl.core.reading import Reading
    from filamentctl.store.history import History

    history = History(home / "state" / "history.db", max_backlog=0, retention_days=0)
    history.open()
    now = time.time_ns()
    count = int(hours * 3600 / every_s)
    try:
        for i in range(count):
            t = now - int((count - i) * every_s * 1e9)
            history.add(Reading(t, history.next_seq(), 22.0 + (i % 60) / 30, 35.0 + (i % 90) / 9))
            if i % 5000 == 0:
                history.commit()
        history.commit()
    finally:
        history.close()
    return count


def page_weight(port: int) -> dict[str, int]:
    """Bytes of everything the page loads (see the module docstring)."""
    html = _get(port, "/")
    refs = re.findall(rb'(?:src|href)="(/[^"#]+)"', html)
    static = {"/": len(html)}
    for ref in dict.fromkeys(r.decode() for r in refs):
        static[ref] = len(_get(port, ref))
    step = round(3600 / CHART_POINTS)
    data = {
        "/api/session": len(_get(port, "/api/session")),
        "/api/status": len(_get(port, "/api/status")),
        f"/api/history?since=3600&step={step}": len(
            _get(port, f"/api/history?since=3600&step={step}")
        ),
        "/api/events (first event)": len(_first_event(port)),
    }
    return {
        **{f"static {k}": v for k, v in static.items()},
        **{f"data {k}": v for k, v in data.items()},
    }


def _hold_streams(port: int, count: int, stop: threading.Event) -> list[threading.Thread]:
    def reader() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/api/events")
            resp = conn.getresponse()
            while not stop.is_set() and resp.fp.readline():
                pass
        except OSError:
            pass
        finally:
            conn.close()

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


def bare_aiohttp_rss() -> float:
    """RSS (MB) of a one-route aiohttp server after one request: the floor for any aiohttp app."""
    port = _free_port()
    code = (
        "from aiohttp import web\n"
        "async def ok(_r): return web.Response(text='ok')\n"
        "app = web.Application(); app.router.add_get('/', ok)\n"
        f"web.run_app(app, host='127.0.0.1', port={port}, print=None)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    try:
        _wait_http(port, proc, "the bare aiohttp server", "/")
        return _rss(proc.pid)[0]
    finally:
        _stop(proc)


def measure(seconds: float, streams: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="fcweb"))
    env = {
        **os.environ,
        "FILAMENTCTL_HOME": str(home),
        "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.5",
        "FILAMENTCTL_HEATER__ENABLED": "true",
        "FILAMENTCTL_FAN__ENABLED": "true",
        "FILAMENTCTL_WEB__TOKEN": "bench-token-0123456789",
    }
    env.pop("FILAMENTCTL_SOCKET", None)
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        (home / "state").mkdir(parents=True)
        seeded = _seed_history(home)
        service = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "run", "--simulate"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        procs.append(service)
        sock = home / "run" / "filamentctl.sock"
        deadline = time.monotonic() + 30
        while not sock.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start (exit {service.poll()})")
            time.sleep(0.05)
        port = _free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "web", "--listen", f"127.0.0.1:{port}"],
            env={k: v for k, v in env.items() if not k.startswith("FILAMENTCTL_WEB__")},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        procs.append(gateway)
        _wait_http(port, gateway, "the web gateway", "/api/session")
        weights: dict[str, int] = {}
        for _ in range(3):  # warm-up: what a few browsers opening the page do
            weights = page_weight(port)
        threads = _hold_streams(port, streams, stop)
        time.sleep(seconds)
        if gateway.poll() is not None:
            raise RuntimeError(f"the web gateway exited with {gateway.returncode}")
        rss, hwm = _rss(gateway.pid)
        alive = sum(t.is_alive() for t in threads)
        history_24h = len(_get(port, f"/api/history?since=86400&step={86400 // CHART_POINTS}"))
        stop.set()  # the streams end first: the gateway then stops as it would for a user
        for thread in threads:
            thread.join(timeout=10)
        check_stop(gateway, "the web gateway")
        check_stop(service, "the service")
        return {
            "rss": rss,
            "hwm": hwm,
            "weights": weights,
            "streams": alive,
            "seeded": seeded,
            "history_24h": history_24h,
        }
    finally:
        stop.set()
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Returns ``{"gateway rss_mb": ..., "page total_bytes": ..., ...}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    parser.add_argument("--streams", type=int, default=4, help="event streams held open")
    parser.add_argument("--quick", action="store_true", help="a 5 s window")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else args.seconds
    result = measure(seconds, args.streams)
    floor = bare_aiohttp_rss()
    weights: dict[str, int] = result["weights"]
    static = sum(v for k, v in weights.items() if k.startswith("static "))
    data = sum(v for k, v in weights.items() if k.startswith("data "))
    total = static + data

    print(f"machine: {machine()}")
    print(
        f"history seeded with {result['seeded']} readings (24 h every 10 s); "
        f"{result['streams']} event streams open for {seconds:.0f} s"
    )
    print(f"{'':<44}{'bytes':>10}")
    for name, size in weights.items():
        print(f"  {name:<42}{size:>10}")
    print(f"  {'static (page, CSS, JS, icon)':<42}{static:>10}")
    print(f"  {'data (API answers on load)':<42}{data:>10}")
    print(f"  {'total':<42}{total:>10}")
    print(f"  {'(24 h history answer, after a range click)':<42}{result['history_24h']:>10}")
    print(
        f"gateway RSS {result['rss']:.1f} MB, peak {result['hwm']:.1f} MB; "
        f"bare aiohttp {floor:.1f} MB"
    )
    print(
        f"peak RSS {result['hwm']:.1f} MB (goal <= {RSS_GOAL_MB:g} MB): "
        + ("met" if result["hwm"] <= RSS_GOAL_MB else "MISSED")
        + f"; page {total / 1000:.1f} KB (goal <= {PAGE_GOAL_BYTES / 1000:g} KB): "
        + ("met" if total <= PAGE_GOAL_BYTES else "MISSED")
    )
    return {
        "gateway rss_mb": result["rss"],
        "gateway peak_rss_mb": result["hwm"],
        "bare aiohttp rss_mb": floor,
        "page static_bytes": float(static),
        "page data_bytes": float(data),
        "page total_bytes": float(total),
        "history 24h_bytes": float(result["history_24h"]),
        "streams": float(result["streams"]),
    }


if __name__ == "__main__":
    main()
