"""The running service's footprint with the VictoriaMetrics sink: resident memory, CPU time per
reading at 1 Hz and 10 Hz, and bytes written to disk per hour at 1 Hz — plus what the delivery
settings cost in disk writes (the SD card of a Pi): all defaults (a reading every 5 s), and at
1 Hz with ``writer.flush_interval 2`` or ``writer.batch_size 3`` (each makes the sampler commit
the history as often as a batch is due, instead of every ``storage.commit_interval``) or with
the former ``storage.commit_interval 10``, against 1 Hz with the defaults measured in the same
run.

For each rate: a throw-away VictoriaMetrics (``tests.servers``) and ``filamentctl run --simulate``
in a temporary FILAMENTCTL_HOME; after a warm-up, a measured window reads from ``/proc/PID``:
``VmRSS``/``VmHWM`` (status), ``utime+stime`` (stat) and ``write_bytes`` (io: what reached the
block layer: pages the process dirtied), and ``readings_total`` from ``status`` over the socket.
CPU per reading = CPU seconds / readings in the window; disk bytes per hour are the window's
write_bytes extrapolated (the 1 Hz run with the defaults, which the goal is about, measures three
windows' worth: each commit moves the figure by a whole 4 KiB page). The service must exit 0
when stopped.
Goals: RSS at most 40 MB; disk writes at most 2 MB/h at 1 Hz. One more run at 1 Hz has
notifications on (``notify.urls`` pointing at a loopback capture server, one ``notify.test`` sent
so Apprise and its plugins are loaded as by a real notification): its RSS and CPU are reported
against the 1 Hz run without them. Linux only.
Run: ``python -m bench.service_footprint [--seconds 60] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._util import machine, stop, terminate

TICKS = os.sysconf("SC_CLK_TCK")


def _status(sock: Path) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(b'{"id":1,"op":"status"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply: dict[str, Any] = json.loads(buf)
    if not reply.get("ok"):
        raise RuntimeError(f"status failed: {reply}")
    result: dict[str, Any] = reply["result"]
    return result


def _proc(pid: int) -> dict[str, float]:
    """CPU seconds, write_bytes, VmRSS and VmHWM (MB) of ``pid`` now."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines() if line)
    mem = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            mem[key] = int(value.split()[0]) / 1024
    return {
        "cpu_s": cpu,
        "write_bytes": float(io["write_bytes"]),
        "rss_mb": mem["VmRSS"],
        "hwm_mb": mem["VmHWM"],
    }


def _notify_test(sock: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(sock))
        s.sendall(b'{"id":1,"op":"notify.test"}\n')
        reply = json.loads(s.makefile("rb").readline())
    if not reply.get("ok") or not all(r["ok"] for r in reply["result"]["results"]):
        raise RuntimeError(f"notify.test failed: {reply}")


def measure(
    rate_hz: float,
    seconds: float,
    warmup: float,
    vm_url: str,
    settings: dict[str, str] | None = None,
    notify_url: str | None = None,
) -> dict[str, float]:
    """One service at ``rate_hz`` readings per second (``settings``: more ``FILAMENTCTL_*``
    overrides, e.g. ``{"WRITER__BATCH_SIZE": "3"}``), measured over ``seconds``; with
    ``notify_url``, notifications on and Apprise loaded by one test message."""
    home = Path(tempfile.mkdtemp(prefix="fcf"))
    env = {
        **os.environ,
        "FILAMENTCTL_HOME": str(home),
        "FILAMENTCTL_DATABASE__TYPE": "victoriametrics",
        "FILAMENTCTL_DATABASE__VICTORIAMETRICS__URL": vm_url,
        "FILAMENTCTL_DATA__TAGS": json.dumps({"bench": f"footprint{rate_hz:g}"}),
        "FILAMENTCTL_SENSOR__READ_INTERVAL": str(1.0 / rate_hz),
        **{f"FILAMENTCTL_{k}": v for k, v in (settings or {}).items()},
    }
    env.pop("FILAMENTCTL_SOCKET", None)
    env.pop("FILAMENTCTL_NOTIFY__URLS", None)
    if notify_url:
        env["FILAMENTCTL_NOTIFY__URLS"] = notify_url
    sock = home / "run" / "filamentctl.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "filamentctl", "run", "--simulate"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with {proc.returncode}")
            try:
                _status(sock)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not come up in 30 s") from None
                time.sleep(0.1)
        if notify_url:
            _notify_test(sock)
        time.sleep(warmup)
        first = _status(sock)
        readings0, written0 = first["readings_total"], first["storage"]["written"]
        before, t0 = _proc(proc.pid), time.monotonic()
        time.sleep(seconds)
        after, status, t1 = _proc(proc.pid), _status(sock), time.monotonic()
        readings = status["readings_total"] - readings0
        window = t1 - t0
        if readings <= 0:
            raise RuntimeError("no readings in the measuring window")
        cpu = after["cpu_s"] - before["cpu_s"]
        stop(proc, f"the service at {rate_hz:g} Hz")
        return {
            "rss_mb": after["rss_mb"],
            "peak_rss_mb": after["hwm_mb"],
            "cpu_ms_per_reading": cpu / readings * 1000,
            "cpu_percent": cpu / window * 100,
            "disk_mb_per_h": (after["write_bytes"] - before["write_bytes"]) / window * 3600 / 1e6,
            "readings": float(readings),
            "backlog": float(status["storage"]["backlog"]),
            "writes_per_h": (status["storage"]["written"] - written0) / window * 3600,
        }
    finally:
        terminate(proc)
        shutil.rmtree(home, ignore_errors=True)


# Label -> (readings per second, settings): what the delivery settings cost on the SD card.
DELIVERY_VARIANTS: dict[str, tuple[float, dict[str, str]]] = {
    "all defaults (a reading every 5 s)": (0.2, {}),
    "1 Hz, writer.flush_interval 2": (1.0, {"WRITER__FLUSH_INTERVAL": "2"}),
    "1 Hz, writer.batch_size 3": (1.0, {"WRITER__BATCH_SIZE": "3"}),
    "1 Hz, storage.commit_interval 10": (1.0, {"STORAGE__COMMIT_INTERVAL": "10"}),
}


def _ratio(value: float, base: float) -> str:
    """``value / base`` for the table; "—" when the base window saw no disk writes at all (a
    short window between two write-backs can)."""
    return f"{value / base:.2f}" if base > 0 else "—"


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Returns ``{"1 Hz rss_mb": ..., "10 Hz cpu_ms_per_reading": ..., ...}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window per rate")
    parser.add_argument("--quick", action="store_true", help="15 s windows")
    parser.add_argument("--url", help="an existing VictoriaMetrics (default: start one)")
    args = parser.parse_args(argv)
    seconds = 15.0 if args.quick else args.seconds
    server: Any = None
    work = Path(tempfile.mkdtemp(prefix="fc-footprint-"))
    try:
        url = args.url
        if not url:
            from tests.servers import VictoriaMetricsServer

            (work / "vm").mkdir()
            server = VictoriaMetricsServer(work / "vm").start()
            url = server.url
        # The window must cover several commits and delivery flushes (30 s each by default); the
        # goal's figure (1 Hz, defaults) gets three windows' worth, since each commit moves it
        # by a whole 4 KiB page.
        results = {
            rate: measure(rate, seconds * (3 if rate == 1.0 else 1), warmup=5.0, vm_url=url)
            for rate in (1.0, 10.0)
        }
        delivery = {
            name: measure(rate, seconds, warmup=5.0, vm_url=url, settings=extra)
            for name, (rate, extra) in DELIVERY_VARIANTS.items()
        }
        from tests.capture import CaptureServer

        with CaptureServer() as capture:
            notifying = measure(1.0, seconds, 5.0, url, notify_url=capture.url("bench"))
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {machine()}; {seconds:.0f} s measuring window per rate")
    print(
        f"{'rate':>6}{'RSS MB':>9}{'peak MB':>9}{'CPU ms/reading':>16}{'CPU %':>8}{'disk MB/h':>11}"
    )
    out: dict[str, float] = {}
    for rate, r in results.items():
        print(
            f"{rate:>4g}Hz{r['rss_mb']:>9.1f}{r['peak_rss_mb']:>9.1f}"
            f"{r['cpu_ms_per_reading']:>16.2f}{r['cpu_percent']:>8.2f}{r['disk_mb_per_h']:>11.2f}"
        )
        for key, value in r.items():
            out[f"{rate:g} Hz {key}"] = value
    base = results[1.0]["disk_mb_per_h"]
    print()
    print("disk writes by delivery settings (ratio: against 1 Hz with the defaults, same run)")
    print(f"{'settings':<44}{'disk MB/h':>11}{'ratio':>8}")
    print(f"{'1 Hz, defaults':<44}{base:>11.2f}{_ratio(base, base):>8}")
    for name, r in delivery.items():
        print(f"{name:<44}{r['disk_mb_per_h']:>11.2f}{_ratio(r['disk_mb_per_h'], base):>8}")
        out[f"{name} disk_mb_per_h"] = r["disk_mb_per_h"]
    r = notifying
    print()
    print("with notifications on (Apprise loaded by one test message)")
    print(
        f"{'1Hz+notify':>6}{r['rss_mb']:>9.1f}{r['peak_rss_mb']:>9.1f}"
        f"{r['cpu_ms_per_reading']:>16.2f}{r['cpu_percent']:>8.2f}{r['disk_mb_per_h']:>11.2f}"
    )
    for key, value in r.items():
        out[f"1 Hz notify {key}"] = value
    worst_rss = max(r["peak_rss_mb"] for r in results.values())
    disk = results[1.0]["disk_mb_per_h"]
    print(
        f"peak RSS {worst_rss:.1f} MB (goal <= 40 MB): "
        + ("met" if worst_rss <= 40 else "MISSED")
        + f"; disk writes at 1 Hz {disk:.2f} MB/h (goal <= 2 MB/h): "
        + ("met" if disk <= 2 else "MISSED")
    )
    return out


if __name__ == "__main__":
    main()
