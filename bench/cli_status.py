"""CLI cost: median wall time, CPU time and peak RSS of ``status --json``, ``heater status
--json`` and ``--help`` against a running simulated service, next to ``python -c pass`` (the
interpreter) and ``python -c "import typer"`` (Typer's floor), all interleaved in the same run.

Peak RSS and CPU time (user + system) are each child's own (``os.wait4``), so runs do not blur
into each other; every run must exit 0 or the benchmark fails. Goals: wall time at most 1.3x the
Typer floor for the commands scripts loop over (``status``, ``heater status``), 1.5x for
``--help``; peak RSS at most 25 MB. Run: ``./dev bench`` (all benchmarks) or
``python -m bench.cli_status [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from bench._util import machine, measured_interleaved, simulated_service

PYTHON = "python -c pass"
TYPER = "python -c 'import typer'"
COMMANDS = ("filamentctl status --json", "filamentctl heater status --json", "filamentctl --help")
#: The most each command's median wall time may be, as a multiple of the Typer floor.
WALL_GOAL = {COMMANDS[0]: 1.3, COMMANDS[1]: 1.3, COMMANDS[2]: 1.5}
RSS_GOAL_MB = 25.0


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Returns ``{"<command> ms": median wall, "<command> cpu ms": median CPU, "<command> MB":
    median peak RSS, ...}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="10 runs")
    args = parser.parse_args(argv)
    runs = 10 if args.quick else args.runs
    exe = str(Path(sys.executable).with_name("filamentctl"))
    with simulated_service() as (_home, env):
        wall, rss, cpu = measured_interleaved(
            {
                PYTHON: [sys.executable, "-c", "pass"],
                TYPER: [sys.executable, "-c", "import typer"],
                COMMANDS[0]: [exe, "status", "--json"],
                COMMANDS[1]: [exe, "heater", "status", "--json"],
                COMMANDS[2]: [exe, "--help"],
            },
            runs,
            env,
        )
    py = statistics.median(wall[PYTHON]) * 1000
    typer_floor = statistics.median(wall[TYPER]) * 1000
    print(f"machine: {machine()}; {runs} interleaved runs each, medians")
    print(f"{'command':<36}{'ms':>9}{'x python':>10}{'x typer':>10}{'CPU ms':>9}{'peak MB':>10}")
    result: dict[str, float] = {}
    for name in wall:
        ms = statistics.median(wall[name]) * 1000
        cpu_ms = statistics.median(cpu[name]) * 1000
        mb = statistics.median(rss[name])
        result[f"{name} ms"] = ms
        result[f"{name} cpu ms"] = cpu_ms
        result[f"{name} MB"] = mb
        print(
            f"{name:<36}{ms:>9.1f}{ms / py:>10.2f}{ms / typer_floor:>10.2f}"
            f"{cpu_ms:>9.1f}{mb:>10.1f}"
        )
    for name in COMMANDS:
        ratio = result[f"{name} ms"] / typer_floor
        mb = result[f"{name} MB"]
        goal = WALL_GOAL[name]
        print(
            f"{name}: {ratio:.2f}x the Typer floor (goal <= {goal}x), {mb:.1f} MB "
            f"(goal <= {RSS_GOAL_MB:g} MB): "
            + ("met" if ratio <= goal and mb <= RSS_GOAL_MB else "MISSED")
        )
    return result


if __name__ == "__main__":
    main()
