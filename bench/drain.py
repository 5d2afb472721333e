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
goal ≥ 0.8), and the CPU time each side used (ours: this process; the server: ``/proc/PID``;
curl: its own rusage), from which the arithmetic in docs/performance.md is computed. Every curl
must exit 0 and the drain must deliver every reading, or the benchmark fails.

Then ours again with the Python encoder (``LineEncoder(compiled=False)``: what an install
without a C compiler runs; reported, no goal), and the same two again with the server pinned to
one core and the senders to the other (``taskset``), when the machine has two cores or more: on
two shared cores the server and the sender take CPU from each other, which this second figure
takes out.

Run: ``python -m bench.drain [--readings N] [--batch B] [--url URL]``. Needs ``curl`` and
(without ``--url``) the ``victoria-metrics`` binary; the pinned figure needs ``taskset``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._util import machine
from filamentctl.core import lineprotocol
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
    url: str, history: History, batch: int, run: str, workdir: Path, pin: list[str] | None = None
) -> tuple[float, int]:
    """Encode the same readings into batch files (not timed), POST them with one curl
    (``pin``: a ``taskset`` prefix)."""
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
    subprocess.run([*(pin or []), "curl", "-K", str(config)], check=True)
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


def ours(
    url: str, history: History, batch: int, run: str, *, compiled: bool = True
) -> tuple[float, dict[str, Any]]:
    sink = victoriametrics.create(settings(url, run, batch))
    if not compiled:
        sink.encoder = LineEncoder("environment", {"run": run}, compiled=False)
    worker = DeliveryWorker(history, sink, settings(url, run, batch))
    t0 = time.perf_counter()
    result = worker.flush(timeout=3600)
    elapsed = time.perf_counter() - t0
    sink.close()
    return elapsed, result


TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _own_cpu() -> tuple[float, float]:
    """(this process, its reaped children): CPU seconds so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


@contextmanager
def cpu_used(server_pid: int | None, into: dict[str, float], name: str) -> Iterator[None]:
    """CPU seconds of this process, of curl (children) and of the server over the block."""
    own0, kids0 = _own_cpu()
    server0 = _cpu_of(server_pid) if server_pid else 0.0
    yield
    own1, kids1 = _own_cpu()
    into[f"{name} own_cpu_s"] = own1 - own0
    into[f"{name} curl_cpu_s"] = kids1 - kids0
    if server_pid:
        into[f"{name} server_cpu_s"] = _cpu_of(server_pid) - server0


def _fresh_copy(built: Path, to: Path) -> History:
    """A copy of the built history with nothing delivered yet (each drain starts from zero)."""
    shutil.copy(built, to)
    history = History(to, max_backlog=0, retention_days=0)
    history.open()
    return history


def _drain_both(
    url: str,
    built: Path,
    work: Path,
    batch: int,
    label: str,
    server_pid: int | None,
    out: dict[str, float],
    pin: list[str] | None = None,
) -> int:
    """curl, then ours, over fresh copies of the history; figures into ``out``. Returns the
    body size. Exits when the drain did not deliver everything."""
    stamp = str(time.time_ns())
    (work / label).mkdir()
    history = _fresh_copy(built, work / label / "history.db")
    try:
        with cpu_used(server_pid, out, f"{label} curl"):
            out[f"{label} curl_s"], size = curl_batches(
                url, history, batch, f"curl{label}{stamp}", work / label, pin
            )
        with cpu_used(server_pid, out, f"{label} ours"):
            out[f"{label} ours_s"], result = ours(url, history, batch, f"ours{label}{stamp}")
        total = len(history.query(None))
        if not result["ok"] or result["delivered"] != total:
            sys.exit(f"the drain did not deliver everything: {result}")
    finally:
        history.close()
    out[f"{label} ratio"] = out[f"{label} curl_s"] / out[f"{label} ours_s"]
    return size


def _drain_python_encoder(
    url: str, built: Path, work: Path, batch: int, server_pid: int | None, out: dict[str, float]
) -> None:
    """Ours with the Python encoder (an install without a C compiler), against the shared curl
    figure; into ``out`` as ``python ...``."""
    (work / "python").mkdir()
    history = _fresh_copy(built, work / "python" / "history.db")
    try:
        with cpu_used(server_pid, out, "python ours"):
            out["python ours_s"], result = ours(
                url, history, batch, f"python{time.time_ns()}", compiled=False
            )
        if not result["ok"] or result["delivered"] != len(history.query(None)):
            sys.exit(f"the drain did not deliver everything: {result}")
    finally:
        history.close()
    out["python ratio"] = out["shared curl_s"] / out["python ours_s"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Returns ``{"ours_s", "curl_s", "ratio", "pinned ratio", "... cpu_s", ...}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="writer.batch_size")
    parser.add_argument("--url", help="an existing VictoriaMetrics (default: start one)")
    parser.add_argument("--no-pin", action="store_true", help="skip the pinned figure")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        sys.exit("curl is not installed: apt-get install curl")
    cores = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and shutil.which("taskset") is not None and len(cores) >= 2
    work = Path(tempfile.mkdtemp(prefix="fc-drain-"))
    server = None
    out: dict[str, float] = {}
    try:
        url = args.url
        if not url:
            from tests.servers import VictoriaMetricsServer

            (work / "vm").mkdir()
            server = VictoriaMetricsServer(work / "vm").start()
            url = server.url
        server_pid = server.proc.pid if server is not None and server.proc is not None else None
        t0 = time.perf_counter()
        built = work / "built.db"
        build_history(built, args.readings).close()
        build_s = time.perf_counter() - t0
        # Warm-up (connection, VM's first series) so neither side pays it alone.
        warm = History(work / "warm.db", max_backlog=0, retention_days=0)
        warm.open()
        warm.add(Reading(time.time_ns(), warm.next_seq(), 20.0, 40.0))
        warm.commit()
        ours(url, warm, args.batch, "warmup" + str(time.time_ns()))
        warm.close()

        size = _drain_both(url, built, work, args.batch, "shared", server_pid, out)
        one_s = curl_one_post(url, work / "shared")
        _drain_python_encoder(url, built, work, args.batch, server_pid, out)
        if pin and server_pid is not None:
            # The server on the last core, this process and curl on the others.
            subprocess.run(
                ["taskset", "-a", "-p", "-c", str(cores[-1]), str(server_pid)],
                check=True,
                capture_output=True,
            )
            mine = set(cores[:-1])
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, mine)
            try:
                taskset = ["taskset", "-c", ",".join(map(str, sorted(mine)))]
                _drain_both(url, built, work, args.batch, "pinned", server_pid, out, taskset)
            finally:
                os.sched_setaffinity(0, before)
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)

    n = args.readings
    print(f"machine: {machine()}")
    print(f"encoder: {'compiled (_lineenc)' if lineprotocol.COMPILED else 'Python (not built)'}")
    print(
        f"{n:,} readings, batches of {args.batch}, {size / 1e6:.1f} MB of line protocol "
        f"(history built in {build_s:.1f} s)"
    )
    print(f"{'sender':<44}{'s':>8}{'readings/s':>12}{'own CPU s':>11}{'server CPU s':>14}")
    rows = [
        ("filamentctl DeliveryWorker.flush", "shared ours"),
        ("curl, same batches, 1 connection", "shared curl"),
        ("filamentctl, Python encoder (no C compiler)", "python ours"),
    ]
    if "pinned ratio" in out:
        rows += [
            ("filamentctl, server on its own core", "pinned ours"),
            ("curl, server on its own core", "pinned curl"),
        ]
    for name, key in rows:
        secs = out[f"{key}_s"]
        own = out[f"{key} own_cpu_s"] if key.endswith("ours") else out[f"{key} curl_cpu_s"]
        server_cpu = out.get(f"{key} server_cpu_s", float("nan"))
        print(f"{name:<44}{secs:>8.2f}{n / secs:>12,.0f}{own:>11.2f}{server_cpu:>14.2f}")
    print(f"{'curl, one POST of everything':<44}{one_s:>8.2f}{n / one_s:>12,.0f}")
    ratio = out["shared ratio"]
    print(
        f"ratio curl-batches / filamentctl = {ratio:.2f}x "
        f"({'meets' if ratio >= 0.8 else 'misses'} the 0.8x goal)"
    )
    if "pinned ratio" in out:
        pinned = out["pinned ratio"]
        print(
            f"with the server on its own core: {pinned:.2f}x "
            f"({'meets' if pinned >= 0.8 else 'misses'} the 0.8x goal)"
        )
    out.update(
        {
            "readings": float(n),
            "cores": float(len(cores)),
            "ours_s": out["shared ours_s"],
            "curl_s": out["shared curl_s"],
            "curl_one_s": one_s,
            "ratio": ratio,
            "compiled encoder": float(lineprotocol.COMPILED),
        }
    )
    return out


if __name__ == "__main__":
    main()
