"""Median wall time of ``filamentctl status --json`` against a running simulated service,
as ratios to ``python -c pass`` (the interpreter) and ``python -c "import typer"`` (Typer's floor).

Goal: at most 1.3x the Typer floor. Run: ``./dev bench cli`` or ``python -m bench.cli_status``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench._util import interleaved, machine, median_ms, simulated_service


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    exe = str(Path(sys.executable).with_name("filamentctl"))
    with simulated_service() as (_home, env):
        times = interleaved(
            {
                "python -c pass": [sys.executable, "-c", "pass"],
                "python -c 'import typer'": [sys.executable, "-c", "import typer"],
                "filamentctl status --json": [exe, "status", "--json"],
                "filamentctl --help": [exe, "--help"],
            },
            args.runs,
            env,
        )
    py = median_ms(times["python -c pass"])
    typer_floor = median_ms(times["python -c 'import typer'"])
    print(f"machine: {machine()}; {args.runs} interleaved runs each, median wall time")
    print(f"{'command':<30}{'ms':>9}{'x python':>10}{'x typer':>10}")
    result = {}
    for name, values in times.items():
        ms = median_ms(values)
        result[name] = ms
        print(f"{name:<30}{ms:>9.1f}{ms / py:>10.2f}{ms / typer_floor:>10.2f}")
    ratio = result["filamentctl status --json"] / typer_floor
    print(
        f"status --json = {ratio:.2f}x the Typer floor (goal <= 1.3x): "
        + ("met" if ratio <= 1.3 else "MISSED")
    )
    return result


if __name__ == "__main__":
    main()
