"""Shared helpers for the benchmarks: timing of whole commands, a throwaway simulated service."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )


class CommandFailed(RuntimeError):
    """A timed command did not succeed: its time would flatter the figure, so none is kept."""


# GNU time reports its child's own peak RSS and CPU time. os.wait4 on our own child would not:
# a child's peak RSS counts the memory of the process it was forked from (this benchmark's).
GNU_TIME = shutil.which("time") if Path("/usr/bin/time").exists() else None


def run_measured(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """Run once; (wall seconds, peak RSS in MB, CPU seconds: user + system) of the command.

    Through GNU ``time`` when installed (``apt install time``), for the command's own peak RSS;
    otherwise from ``os.wait4`` alone, whose peak RSS is at least this process's.
    Raises CommandFailed when the command exits non-zero (a fast failure is not a fast run).
    """
    report = None
    if GNU_TIME:
        fd, name = tempfile.mkstemp(prefix="fc-time-")
        os.close(fd)
        report = Path(name)
        argv = ["/usr/bin/time", "-q", "-f", "%M", "-o", name, *argv]
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            raise CommandFailed(f"`{' '.join(argv)}` exited {proc.returncode}")
        # CPU time from the kernel, in microseconds: it includes the children our child waited
        # for (the command under GNU time), and time's own fraction of a millisecond.
        cpu = usage.ru_utime + usage.ru_stime
        if report is None:
            return elapsed, usage.ru_maxrss / 1024, cpu
        return elapsed, int(report.read_text().split()[-1]) / 1024, cpu
    finally:
        if report is not None:
            report.unlink(missing_ok=True)


def measured_interleaved(
    commands: dict[str, Sequence[str]], runs: int, env: dict[str, str]
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Time several commands round-robin, so machine noise hits them alike; (wall seconds,
    peak RSS in MB, CPU seconds) per command. Raises CommandFailed when any run fails."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm-up
        run_measured(argv, env)
    for _ in range(runs):
        for name, argv in commands.items():
            elapsed, mb, cpu_s = run_measured(argv, env)
            wall[name].append(elapsed)
            rss[name].append(mb)
            cpu[name].append(cpu_s)
    return wall, rss, cpu


def terminate(proc: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """SIGTERM (SIGKILL after ``timeout``) and reap; its exit code. Never raises."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def stop(proc: subprocess.Popen[Any], what: str) -> None:
    """Stop a measured process and check that it ended well: our services and gateways exit 0
    on SIGTERM, and one that crashed or hung during the window gave figures worth nothing.
    Raises CommandFailed otherwise."""
    code = terminate(proc)
    if code != 0:
        raise CommandFailed(f"{what} exited {code} when stopped")


@contextlib.contextmanager
def simulated_service(
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A ``filamentctl run --simulate`` in a temporary FILAMENTCTL_HOME; yields (home, env)."""
    home = Path(tempfile.mkdtemp(prefix="fcb"))
    env = {**os.environ, "FILAMENTCTL_HOME": str(home), **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "filamentctl", "run", "--simulate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sock = home / "run" / "filamentctl.sock"
        deadline = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulated service did not start")
            time.sleep(0.05)
        time.sleep(0.5)
        yield home, env
        stop(proc, "the simulated service")
    finally:
        terminate(proc)
