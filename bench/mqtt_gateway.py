"""The Home Assistant gateway's footprint: resident memory and CPU time per reading.

A throw-away Mosquitto (``tests.servers``), ``filamentctl run --simulate`` publishing a reading
every ``--interval`` seconds and ``filamentctl mqtt`` in a temporary FILAMENTCTL_HOME, plus a
subscriber that counts the state messages reaching the broker. After a warm-up, a measured
window reads the gateway's ``/proc/PID`` (``VmRSS``/``VmHWM``, ``utime+stime``). Baseline in the
same run: the peak RSS of a bare ``python -c 'import paho.mqtt.client'``, the floor any Python
MQTT client pays. Goal: peak RSS at most 30 MB. Linux only.
Run: ``python -m bench.mqtt_gateway [--seconds 60] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._util import machine, stop, terminate
from bench.service_footprint import _proc, _status

GOAL_MB = 30.0


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)


def measure(seconds: float, warmup: float, interval: float) -> dict[str, float]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.servers import MosquittoServer

    work = Path(tempfile.mkdtemp(prefix="fcq"))
    home = work / "home"
    base = "bench/footprint"
    env = {
        **os.environ,
        "FILAMENTCTL_HOME": str(home),
        "FILAMENTCTL_SENSOR__READ_INTERVAL": str(interval),
        "FILAMENTCTL_MQTT__ENABLED": "true",
        "FILAMENTCTL_MQTT__BASE_TOPIC": base,
    }
    env.pop("FILAMENTCTL_SOCKET", None)
    (work / "broker").mkdir()
    broker = MosquittoServer(work / "broker").start()
    env["FILAMENTCTL_MQTT__URL"] = broker.url
    procs: list[subprocess.Popen[bytes]] = []
    states = 0
    lock = threading.Lock()

    def on_message(*_args: Any) -> None:
        nonlocal states
        with lock:
            states += 1

    counter = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    counter.on_message = on_message
    try:
        service = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "run", "--simulate"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(service)
        sock = home / "run" / "filamentctl.sock"

        def service_up() -> bool:
            try:
                _status(sock)
                return True
            except OSError:
                return False

        _wait(service_up, 30, "the service", service)
        gateway_env = {k: v for k, v in env.items() if not k.startswith("FILAMENTCTL_MQTT")}
        gateway = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "mqtt"],
            env=gateway_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(gateway)
        counter.connect("127.0.0.1", broker.port)
        counter.subscribe(f"{base}/state", qos=1)
        counter.loop_start()
        _wait(lambda: states > 0, 30, "the first state message", gateway)
        time.sleep(warmup)
        with lock:
            states0 = states
        before, readings0, t0 = (
            _proc(gateway.pid),
            _status(sock)["readings_total"],
            time.monotonic(),
        )
        time.sleep(seconds)
        after, readings1, t1 = _proc(gateway.pid), _status(sock)["readings_total"], time.monotonic()
        with lock:
            published = states - states0
        for proc, name in ((service, "service"), (gateway, "gateway")):
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} exited with {proc.returncode} during the window")
        readings = readings1 - readings0
        if readings <= 0 or published <= 0:
            raise RuntimeError(f"nothing flowed: {readings} readings, {published} state messages")
        cpu = after["cpu_s"] - before["cpu_s"]
        stop(gateway, "the MQTT gateway")
        stop(service, "the service")
        return {
            "rss_mb": after["rss_mb"],
            "peak_rss_mb": after["hwm_mb"],
            "cpu_ms_per_reading": cpu / readings * 1000,
            "cpu_percent": cpu / (t1 - t0) * 100,
            "readings": float(readings),
            "state_messages": float(published),
        }
    finally:
        counter.loop_stop()
        for proc in reversed(procs):
            terminate(proc)
        broker.close()
        shutil.rmtree(work, ignore_errors=True)


def baseline_mb() -> float:
    """Peak RSS (VmHWM) of an interpreter that imported paho-mqtt, read like the gateway's.

    Not ``ru_maxrss`` from wait4: that keeps the high-water mark of the forked parent (this
    benchmark, with paho and the test servers imported) across exec.
    """
    code = "import sys, paho.mqtt.client; print(flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # imported
        return _proc(proc.pid)["hwm_mb"]
    finally:
        proc.communicate(timeout=30)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Returns ``{"peak_rss_mb", "rss_mb", "cpu_ms_per_reading", ..., "baseline_mb"}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--quick", action="store_true", help="a 15 s window")
    args = parser.parse_args(argv)
    seconds = 15.0 if args.quick else args.seconds
    result = measure(seconds, warmup=3.0, interval=args.interval)
    result["baseline_mb"] = baseline_mb()
    peak = result["peak_rss_mb"]
    print(f"machine: {machine()}; {seconds:.0f} s window, a reading every {args.interval:g} s")
    print(
        f"gateway RSS {result['rss_mb']:.1f} MB, peak {peak:.1f} MB "
        f"(python + paho import: {result['baseline_mb']:.1f} MB); "
        f"CPU {result['cpu_ms_per_reading']:.2f} ms per reading ({result['cpu_percent']:.2f} %); "
        f"{result['state_messages']:.0f} state messages for {result['readings']:.0f} readings"
    )
    print(
        f"peak RSS {peak:.1f} MB (goal <= {GOAL_MB:g} MB): "
        + ("met" if peak <= GOAL_MB else "MISSED")
    )
    return result


if __name__ == "__main__":
    main()
