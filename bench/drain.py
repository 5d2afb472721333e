"""Drain a backlog of 1,000,000 readings to VictoriaMetrics, against curl sending the same bytes.

Builds a local history with N readings (default 1,000,000), then in the same run and against the
same throw-away VictoriaMetrics:

- ``filamentctl``: :meth:`DeliveryWorker.flush` — reads the backlog from SQLite, encodes line
  protocol, POSTs batches of ``--batch`` readings over one keep-alive connection, advances the
  cursor per batch (everything the service does when a backlog drains);
- ``curl batches``: the same line protocol, pre-encoded into files of the same batch size, sent by
  ONE curl process over one keep-alive connection (``--next`` per batch);
- ``curl one POST``: all of it in one request (an upper bound no batching sender reaches).

Prints the wall times and the ratio ``curl batches / filamentctl`` (1.0 = as fast as curl;
goal ≥ 0.8). Run: ``python -m bench.drain [--readings N] [--batch B] [--url URL]``. Needs ``curl``
and (without ``--url``) the ``victoria-metrics`` binary.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._util import machine
from filamentctl.core.lineprotocol import LineEncoder
from filamentctl.core.reading import Reading
from filamentctl.service.delivery import DeliveryWorker
from filamentctl.sinks import victoriametrics
from filamentctl.store.history import History


def build_history(path: Path, n: int) -> History:
    """A history with ``n`` committed readings, 200 ms apart, ending an hour ago."""
    history = History(path, max_backlog=0, retention_days=0)
    history.open()
    start = time.time_ns() - 3600 * 10**9 - n * 200_000_000
    for i in range(n):
        seq = history.next_seq()
        # Varying values, as a real backlog has (and so no float formatting shortcut applies).
        t = 20.0 + (i % 997) / 37.0
        rh = 30.0 + (i % 613) / 11.0
        history.add(Reading(start + i * 200_000_000, seq, t, rh, 1000.0 + (i % 89) / 7.0))
        if seq % 50_000 == 0:
            history.commit()
    history.commit()
    return history


def settings(url: str, run: str, batch: int) -> dict[str, Any]:
    return {
        "database.type": "victoriametrics",
        "database.victoriametrics.url": url,
        "data.measurement": "environment",
        "data.tags": {"run": run},
        "writer.batch_size": batch,
        "writer.flush_interval": 1.0,
        "retry.backoff_base": 1.0,
        "retry.backoff_max": 5.0,
        "retry.alert_threshold": 5,
        "database.timeout": 60.0,
    }


def curl_batches(
    url: str, history: History, batch: int, run: str, workdir: Path
) -> tuple[float, int]:
    """Encode the same readings into batch files (not timed), POST them with one curl."""
    encoder = LineEncoder("environment", {"run": run})
    readings = history.query(None)
    config = workdir / "curl.cfg"
    size = 0
    with open(config, "w") as cfg:
        for n, start in enumerate(range(0, len(readings), batch)):
            body = encoder.encode(readings[start : start + batch])
            size += len(body)
            part = workdir / f"batch{n:05d}.lp"
            part.write_bytes(body)
            if n:
                cfg.write("next\n")
            cfg.write(f'url = "{url}/write"\ndata-binary = "@{part}"\nfail\nsilent\n')
            cfg.write('output = "/dev/null"\n')
    t0 = time.perf_counter()
    subprocess.run(["curl", "-K", str(config)], check=True)
    return time.perf_counter() - t0, size


def curl_one_post(url: str, workdir: Path) -> float:
    whole = workdir / "all.lp"
    with open(whole, "wb") as out:
        for part in sorted(workdir.glob("batch*.lp")):
            out.write(part.read_bytes())
    t0 = time.perf_counter()
    subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", "--data-binary", f"@{whole}", f"{url}/write"],
        check=True,
    )
    return time.perf_counter() - t0


def ours(url: str, history: History, batch: int, run: str) -> tuple[float, dict[str, Any]]:
    sink = victoriametrics.create(settings(url, run, batch))
    worker = DeliveryWorker(history, sink, settings(url, run, batch))
    t0 = time.perf_counter()
    result = worker.flush(timeout=3600)
    elapsed = time.perf_counter() - t0
    sink.close()
    return elapsed, result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="writer.batch_size")
    parser.add_argument("--url", help="an existing VictoriaMetrics (default: start one)")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        sys.exit("curl is not installed: apt-get install curl")
    work = Path(tempfile.mkdtemp(prefix="fc-drain-"))
    server = None
    try:
        url = args.url
        if not url:
            from tests.servers import VictoriaMetricsServer

            (work / "vm").mkdir()
            server = VictoriaMetricsServer(work / "vm").start()
            url = server.url
        t0 = time.perf_counter()
        history = build_history(work / "history.db", args.readings)
        built = time.perf_counter() - t0
        stamp = str(time.time_ns())
        # Warm-up (connection, VM's first series) so neither side pays it alone.
        warm = History(work / "warm.db", max_backlog=0, retention_days=0)
        warm.open()
        warm.add(Reading(time.time_ns(), warm.next_seq(), 20.0, 40.0))
        warm.commit()
        ours(url, warm, args.batch, "warmup" + stamp)
        warm.close()

        curl_s, size = curl_batches(url, history, args.batch, "curl" + stamp, work)
        ours_s, result = ours(url, history, args.batch, "ours" + stamp)
        one_s = curl_one_post(url, work)
        if not result["ok"] or result["delivered"] != args.readings:
            sys.exit(f"the drain did not deliver everything: {result}")
        history.close()
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)

    n = args.readings
    print(f"machine: {machine()}")
    print(
        f"{n:,} readings, batches of {args.batch}, {size / 1e6:.1f} MB of line protocol "
        f"(history built in {built:.1f} s)"
    )
    print(f"{'sender':<34}{'s':>8}{'readings/s':>14}")
    for name, secs in (
        ("filamentctl DeliveryWorker.flush", ours_s),
        ("curl, same batches, 1 connection", curl_s),
        ("curl, one POST of everything", one_s),
    ):
        print(f"{name:<34}{secs:>8.2f}{n / secs:>14,.0f}")
    ratio = curl_s / ours_s
    verdict = "meets" if ratio >= 0.8 else "misses"
    print(f"ratio curl-batches / filamentctl = {ratio:.2f}x ({verdict} the 0.8x goal)")
    return {"ours_s": ours_s, "curl_s": curl_s, "curl_one_s": one_s, "ratio": ratio}


if __name__ == "__main__":
    main()
