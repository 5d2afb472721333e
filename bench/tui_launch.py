"""The dashboard in a real terminal (tmux, 120×40) against a simulated service reading at 1 Hz:

* launch → first frame with data: wall time from starting ``filamentctl tui`` until a reading
  (``NN.N °F``) is on the screen, next to the same for an empty Textual app showing one word
  (Textual's floor) — median of interleaved runs. Goal: at most 1 s.
* CPU use while it runs, at one update per second: utime+stime from ``/proc/PID/stat`` over a
  window, as % of one core, next to the idle empty Textual app over the same window. Goal: at
  most 3 %. The app must still be running and showing data at the end of the window.

Needs tmux. Run: ``python -m bench.tui_launch [--runs 5] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench._util import machine, simulated_service

CPU_GOAL_PERCENT = 3.0  # of one core, at one update per second
VALUE = re.compile(r"\d+\.\d °F")
EMPTY_APP = (
    "from textual.app import App\n"
    "from textual.widgets import Static\n"
    "class Empty(App):\n"
    "    def compose(self):\n"
    "        yield Static('ready')\n"
    "Empty().run()\n"
)


class Pane:
    """One command in a detached 120×40 tmux pane on a private tmux server."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            raise SystemExit("bench.tui_launch needs tmux")
        self.base = [tmux, "-L", f"fc-bench-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
        assigns = [f"{k}={v}" for k, v in env.items()]
        # exec: the pane's pid is the app itself, so /proc/PID/stat is the app's CPU time.
        command = subprocess.list2cmdline(["exec", "env", *assigns, *argv])
        self.started = time.perf_counter()
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40", command],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True
        ).stdout

    def pid(self) -> int:
        out = subprocess.run(
            [*self.base, "display", "-p", "-t", "b", "#{pane_pid}"], capture_output=True, text=True
        )
        return int(out.stdout.strip())

    def wait_for(self, found: Callable[[str], bool], timeout: float = 30.0) -> float:
        """Seconds from launch until ``found(screen)``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if found(self.screen()):
                return time.perf_counter() - self.started
            time.sleep(0.005)
        raise RuntimeError("timed out waiting for the screen:\n" + self.screen())

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[11], fields[12] are utime and stime (fields 14 and 15 of proc(5), after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_percent(pane: Pane, seconds: float) -> float:
    pid = pane.pid()
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.perf_counter()
    return 100.0 * (c1 - c0) / (t1 - t0)


def dashboard_argv(exe: str) -> list[str]:
    """``filamentctl tui`` once the command is registered; until then the same entry point."""
    from filamentctl.cli.main import app

    names = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    if "tui" in names:
        return [exe, "tui"]
    return [
        sys.executable,
        "-c",
        "import os, pathlib; from filamentctl.tui.app import run_dashboard; "
        "run_dashboard(pathlib.Path(os.environ['FILAMENTCTL_SOCKET']))",
    ]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU measuring window")
    args = parser.parse_args(argv)
    exe = str(Path(sys.executable).with_name("filamentctl"))
    settings = {
        "FILAMENTCTL_SENSOR__READ_INTERVAL": "1",
        "FILAMENTCTL_HEATER__ENABLED": "true",
        "FILAMENTCTL_FAN__ENABLED": "true",
    }
    with simulated_service(settings) as (home, _env):
        env = {
            "FILAMENTCTL_SOCKET": str(home / "run" / "filamentctl.sock"),
            "TERM": "xterm-256color",
        }
        commands: dict[str, tuple[list[str], Callable[[str], bool]]] = {
            "empty Textual app": ([sys.executable, "-c", EMPTY_APP], lambda s: "ready" in s),
            "filamentctl tui": (dashboard_argv(exe), lambda s: VALUE.search(s) is not None),
        }
        launch: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.runs + 1):  # the first round warms caches and is not counted
            for name, (cmd, ready) in commands.items():
                pane = Pane(cmd, env)
                try:
                    elapsed = pane.wait_for(ready)
                finally:
                    pane.close()
                if i:
                    launch[name].append(elapsed)
        cpu: dict[str, float] = {}
        for name, (cmd, ready) in commands.items():
            pane = Pane(cmd, env)
            try:
                pane.wait_for(ready)
                time.sleep(1.0)  # past start-up work (history load, first layout)
                cpu[name] = cpu_percent(pane, args.seconds)
                # Still running and still showing: a crash during the window is no figure.
                if not Path(f"/proc/{pane.pid()}").exists() or not ready(pane.screen()):
                    raise RuntimeError(f"{name} stopped during the CPU window:\n{pane.screen()}")
            finally:
                pane.close()
    print(f"machine: {machine()}")
    print(f"launch: {args.runs} interleaved runs each in tmux 120x40, median wall time")
    print(f"{'command':<22}{'first frame ms':>16}{'x empty':>10}{'CPU % (1 Hz)':>15}")
    floor = statistics.median(launch["empty Textual app"])
    result: dict[str, float] = {}
    for name in commands:
        median = statistics.median(launch[name])
        result[f"{name} launch ms"] = median * 1000
        result[f"{name} cpu %"] = cpu[name]
        print(f"{name:<22}{median * 1000:>16.0f}{median / floor:>10.2f}{cpu[name]:>15.1f}")
    tui_s = statistics.median(launch["filamentctl tui"])
    tui_cpu = cpu["filamentctl tui"]
    print(
        f"tui: first frame with data in {tui_s:.2f} s (goal <= 1 s): "
        + ("met" if tui_s <= 1.0 else "MISSED")
        + f"; CPU {tui_cpu:.1f} % of one core over {args.seconds:.0f} s (goal <= "
        + f"{CPU_GOAL_PERCENT:g} %): "
        + ("met" if tui_cpu <= CPU_GOAL_PERCENT else "MISSED")
    )
    return result


if __name__ == "__main__":
    main()
