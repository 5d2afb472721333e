"""Run every benchmark and print one table; write ``docs/performance.md``.

``python -m bench`` (or ``./dev bench``) runs, each as its own module with ``main(argv) -> dict``:
CLI cost (``bench.cli_status``), service footprint (``bench.service_footprint``), backlog drain
(``bench.drain``), control latency (``bench.control_latency``), history load
(``bench.history_load``), dashboard launch and CPU (``bench.tui_launch``), the web gateway's memory
and page weight (``bench.web_gateway``) and the Home Assistant gateway's footprint
(``bench.mqtt_gateway``). A module that is missing or fails is reported in the table with its
error; the others still run. Every ratio is against a baseline measured in the same run, and every
"met?" is computed from the figures (:mod:`bench.figures`).

A full run (no ``--quick``, no ``--only``) is kept in ``bench/last_full_run.json``; the document
shows it beside the run before it and counts the goals met in both (:mod:`bench.report`).

Options: ``--quick`` (shorter runs, for a smoke test), ``--only NAME ...``, ``--no-write``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
import traceback
from typing import Any

from bench._util import machine
from bench.figures import Bench, Result, benches
from bench.report import DOC, LAST_RUN, REPO, Row, Run, load_last, rows_of, save_last, table
from bench.report import write_doc as write_report

NOTES = REPO / "bench" / "notes.md"


def run(bench: Bench, quick: bool) -> tuple[Result | None, str | None, str]:
    """Run one benchmark; (result, error, its printed output). Never raises."""
    out = io.StringIO()
    try:
        module = importlib.import_module(bench.module)
    except ModuleNotFoundError as exc:
        if exc.name == bench.module:
            return None, "not written yet (module missing)", ""
        return None, f"import failed: {exc}", traceback.format_exc()
    try:
        with contextlib.redirect_stdout(out):
            result: Any = module.main(bench.quick_argv if quick else bench.argv)
    except SystemExit as exc:
        return None, f"exited: {exc.code}", out.getvalue()
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}", out.getvalue() + traceback.format_exc()
    if not isinstance(result, dict):
        return None, f"main() returned {type(result).__name__}, not a dict", out.getvalue()
    return result, None, out.getvalue()


def main(argv: list[str] | None = None) -> int:
    every = benches()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in every])
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the doc")
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows: list[Row] = []
    outputs: dict[str, str] = {}
    results: dict[str, Result] = {}
    for bench in every:
        if args.only and bench.name not in args.only:
            continue
        print(f"== {bench.name}: {bench.module} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result, error, text = run(bench, args.quick)
        print(
            f"   {'ok' if error is None else error} ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        outputs[bench.name] = text
        if result is not None:
            results[bench.name] = result
        rows += rows_of(bench, result, error)
    print(f"machine: {machine()}")
    print(table(rows))
    this = Run(stamp, machine(), rows, results)
    full = not args.quick and not args.only
    previous = load_last()
    if not args.no_write:
        kind = "full run" if full else ("quick run" if args.quick else "partial run")
        write_report(this, previous, outputs, NOTES.read_text(), kind)
        print(f"wrote {DOC.relative_to(REPO)}")
        if full:
            save_last(this)
            print(f"kept this run in {LAST_RUN.relative_to(REPO)} for the next one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
