"""docs/performance.md, written from the figures of this run and of the full run before it.

Every verdict in it is computed here from the figures (the goals are predicates in
:mod:`bench.figures`), and so is every number in the generated sections: what missed and the
arithmetic of why, the drain's CPU budget, and what a Raspberry Pi Zero 2 W user would feel. A
full run (no ``--quick``, no ``--only``) is kept in ``bench/last_full_run.json``, so the next one
can show both and say which goals held in two consecutive runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.figures import Bench, Result

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "performance.md"
LAST_RUN = Path(__file__).with_name("last_full_run.json")
# How much slower a Raspberry Pi Zero 2 W (4x Cortex-A53 at 1 GHz) runs the same Python work.
PI_SLOWER = (5, 10)


@dataclass
class Row:
    bench: str
    label: str
    value: float | None
    unit: str
    baseline: float | None
    baseline_label: str
    goal: str
    met: bool | None  # None: no goal, or not measured
    error: str = ""

    def value_text(self) -> str:
        return "—" if self.value is None else f"{self.value:.2f}"

    def ratio_text(self) -> str:
        if self.value is None or not self.baseline:
            return ""
        return f"{self.value / self.baseline:.2f}×"

    def baseline_text(self) -> str:
        if self.baseline is None:
            return ""
        return f"{self.baseline:.2f} ({self.baseline_label})"

    def met_text(self) -> str:
        if self.error:
            return f"ERROR: {self.error}"
        return "" if self.met is None else ("yes" if self.met else "NO")


def rows_of(bench: Bench, result: Result | None, error: str | None) -> list[Row]:
    """The figures of one benchmark's result (an error row when it failed)."""
    if result is None:
        return [Row(bench.name, f"({bench.module})", None, "", None, "", "", None, str(error))]
    rows = []
    for fig in bench.figures:
        try:
            value = float(fig.value(result))
            base = float(fig.baseline(result)) if fig.baseline else None
        except (KeyError, ZeroDivisionError, ValueError) as exc:  # a figure this run lacks
            rows.append(
                Row(bench.name, fig.label, None, fig.unit, None, "", fig.goal, None, f"{exc!r}")
            )
            continue
        met = None if fig.met is None or math.isnan(value) else fig.met(value, base)
        rows.append(
            Row(bench.name, fig.label, value, fig.unit, base, fig.baseline_label, fig.goal, met)
        )
    return rows


def table(rows: list[Row]) -> str:
    """This run's figures, as the terminal shows them."""
    head = ["benchmark", "figure", "value", "unit", "baseline (same run)", "ratio", "goal", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.bench, r.label, r.value_text(), r.unit, r.baseline_text(), r.ratio_text()]
        cells += [r.goal, r.met_text()]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


# -- the previous full run ----------------------------------------------------------------------
@dataclass
class Run:
    stamp: str
    machine: str
    rows: list[Row]
    results: dict[str, Result]

    def row(self, bench: str, label: str) -> Row | None:
        return next((r for r in self.rows if r.bench == bench and r.label == label), None)


def load_last() -> Run | None:
    """The last full run, or None when none was kept (or its file cannot be read)."""
    try:
        data = json.loads(LAST_RUN.read_text())
        rows = [Row(**row) for row in data["rows"]]
        return Run(data["stamp"], data["machine"], rows, data.get("results", {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_last(run: Run) -> None:
    LAST_RUN.write_text(
        json.dumps(
            {
                "stamp": run.stamp,
                "machine": run.machine,
                "rows": [asdict(r) for r in run.rows],
                "results": run.results,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )


def _two_runs_table(run: Run, previous: Run | None) -> str:
    head = [
        "benchmark",
        "figure",
        "this run",
        "ratio",
        "previous run",
        "ratio",
        "unit",
        "baseline (this run)",
        "goal",
        "met? (this / previous)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in run.rows:
        before = previous.row(r.bench, r.label) if previous else None
        met = r.met_text()
        if before is not None and (r.met is not None or before.met is not None):
            met = f"{met or '—'} / {before.met_text() or '—'}"
        cells = [
            r.bench,
            r.label,
            r.value_text(),
            r.ratio_text(),
            before.value_text() if before else "",
            before.ratio_text() if before else "",
            r.unit,
            r.baseline_text(),
            r.goal,
            met,
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _goal_summary(run: Run, previous: Run | None) -> str:
    goals = [r for r in run.rows if r.met is not None or r.error]
    met_now = [r for r in goals if r.met]
    lines = [f"- Goals in this run: {len(goals)}; met: {len(met_now)}."]
    if previous is not None:
        both = [
            r
            for r in met_now
            if (before := previous.row(r.bench, r.label)) is not None and before.met
        ]
        lines.append(
            f"- Met in both this run and the previous full run ({previous.stamp}): "
            f"{len(both)} of {len(goals)}."
        )
        missed_before = [r for r in previous.rows if r.met is False or r.error]
        if missed_before:
            lines.append(
                "- Missed in the previous full run: "
                + "; ".join(f"{r.bench}: {r.label}" for r in missed_before)
                + "."
            )
    else:
        lines.append("- No previous full run is recorded: run `./dev bench` again to compare.")
    missed = [r for r in goals if not r.met]
    lines.append(
        "- Missed in this run: "
        + ("; ".join(f"{r.bench}: {r.label} ({r.met_text()})" for r in missed) or "none")
        + "."
    )
    return "\n".join(lines)


# -- generated explanations ---------------------------------------------------------------------
def _num(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def drain_budget(r: Result) -> str:
    """The drain's arithmetic in CPU seconds, from the drain benchmark's own figures."""
    n = r["readings"]
    ours = r["shared ours own_cpu_s"]
    server_ours = r["shared ours server_cpu_s"]
    server_curl = r["shared curl server_cpu_s"]
    curl_wall, ours_wall = r["shared curl_s"], r["shared ours_s"]
    cores = int(r.get("cores", 2))
    encoder = "the compiled encoder" if r.get("compiled encoder") else "in Python"
    # On one spare core everything is serial: both sides' CPU time adds up; with all cores
    # free and perfect overlap the slower side sets the pace.
    serial = curl_wall / ((ours + server_ours) or math.inf)
    overlap = curl_wall / (max(ours, server_ours) or math.inf)
    lines = [
        f"- {n:,.0f} readings. filamentctl used {_num(ours)} CPU-s "
        f"({_num(ours / n * 1e6)} µs per reading: SQLite fetch, derived values and line "
        f"protocol ({encoder}), HTTP); the server used {_num(server_ours)} CPU-s for it and "
        f"{_num(server_curl)} CPU-s for curl's identical batches; curl itself "
        f"{_num(r['shared curl curl_cpu_s'])} CPU-s.",
        f"- curl took {_num(curl_wall)} s and filamentctl {_num(ours_wall)} s: "
        f"{_num(r['shared ratio'])}× curl's speed. If both sides' CPU time had to run one after "
        f"the other (one core free) the ratio would be about {_num(serial)}×; with a core each "
        f"and perfect overlap, about {_num(overlap)}×. This machine has {cores} cores, shared "
        "with other work, so a run lands in between.",
    ]
    if "python ours own_cpu_s" in r:
        lines.append(
            f"- With the Python encoder (an install without a C compiler): "
            f"{_num(r['python ours_s'])} s, {_num(r['python ratio'])}× curl's speed, "
            f"{_num(r['python ours own_cpu_s'] / n * 1e6)} µs of CPU per reading."
        )
    if "pinned ratio" in r:
        lines.append(
            f"- With the server pinned to one core and the senders to the other (`taskset`): "
            f"curl {_num(r['pinned curl_s'])} s, filamentctl {_num(r['pinned ours_s'])} s, "
            f"{_num(r['pinned ratio'])}× (filamentctl {_num(r['pinned ours own_cpu_s'])} CPU-s, "
            f"the server {_num(r['pinned ours server_cpu_s'])} CPU-s)."
        )
    return "\n".join(lines)


def _why_missed(row: Row, results: dict[str, Result]) -> str:
    """Why a goal missed, with this run's numbers where the benchmarks measure them."""
    r = results.get(row.bench, {})
    if row.bench == "drain" and "shared ratio" in r:
        return "CPU-bound on shared cores; the arithmetic is in the next section."
    if row.bench == "cli" and row.baseline:
        extra = (row.value or 0) - row.baseline
        return (
            f"{_num(extra, 1)} ms above the Typer floor: what runs after the interpreter starts "
            "(see the CLI notes below), plus this machine's noise in a median of interleaved runs."
        )
    if row.bench == "footprint" and "disk" in row.label:
        return (
            "Disk writes are counted in 4 KiB pages the process dirties (`/proc/PID/io`): each "
            "history commit and each delivery acknowledgement dirties at least one; see the "
            "storage notes below for the cadence."
        )
    return "No explanation is recorded for this figure; see its benchmark's output below."


def why_section(run: Run) -> str:
    missed = [r for r in run.rows if r.met is False or r.error]
    if not missed:
        return "No goal was missed in this run."
    return "\n".join(f"- **{r.bench}: {r.label}** — {_why_missed(r, run.results)}" for r in missed)


def _fmt(value: float) -> str:
    """Three significant figures or so, without trailing noise."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _pi_row(what: str, here: float, unit: str, feel: str) -> str:
    low, high = (here * k for k in PI_SLOWER)
    return f"| {what} | {_fmt(here)} {unit} | {_fmt(low)}–{_fmt(high)} {unit} | {feel} |"


def _wait_feel(seconds: float) -> str:
    """How a wait of ``seconds`` (the slow end of the estimate) feels at a prompt."""
    if seconds < 0.3:
        return "feels instant"
    if seconds < 1.0:
        return "a short pause"
    if seconds < 3.0:
        return "a noticeable wait"
    return "slow"


def pi_section(results: dict[str, Result]) -> str:
    """What the same work costs on a Pi Zero 2 W, from this run's per-call CPU figures."""
    lo, hi = PI_SLOWER
    out = [
        f"The same Python work runs about {lo}–{hi}× slower on a Raspberry Pi Zero 2 W (four "
        "Cortex-A53 cores at 1 GHz, slower storage): each estimate below is this run's CPU time "
        f"(not wall time, which a busy shared machine inflates) multiplied by {lo} and {hi}; "
        "what a user feels is judged from the slow end.",
        "",
        "| what | here (CPU) | Pi Zero 2 W (estimate) | what a user feels there |",
        "|---|---|---|---|",
    ]
    cli = results.get("cli", {})
    for name in (
        "filamentctl status --json",
        "filamentctl heater status --json",
        "filamentctl --help",
        "python -c 'import typer'",
    ):
        if f"{name} cpu ms" in cli:
            ms = cli[f"{name} cpu ms"]
            feel = _wait_feel(ms * hi / 1000)
            if name.startswith("filamentctl status"):
                low, high = ms * lo / 10, ms * hi / 10  # % of a core, once a second
                feel += f"; a script asking every second spends {low:.0f}–{high:.0f} % of a core"
            if name.startswith("python"):
                feel += " (the floor of any Typer command)"
            out.append(_pi_row(f"`{name}`", ms, "ms", feel))
    fp = results.get("footprint", {})
    for rate in (1, 10):
        per = fp.get(f"{rate} Hz cpu_ms_per_reading")
        if per is not None:
            share = per * rate / 10  # % of one core = ms per second / 10
            out.append(
                _pi_row(
                    f"service, per reading at {rate} Hz",
                    per,
                    "ms",
                    f"{_fmt(share * lo)}–{_fmt(share * hi)} % of one core at {rate} Hz",
                )
            )
    drain = results.get("drain", {})
    if "shared ours own_cpu_s" in drain:
        per_million = drain["shared ours own_cpu_s"] / drain["readings"] * 1e6
        month = per_million * 2.6  # a month at 1 Hz: 2.6 million readings
        out.append(
            _pi_row(
                "draining 1,000,000 backlog readings (our side only)",
                per_million,
                "s",
                f"a month of outage at 1 Hz (2.6 M readings) takes {_fmt(month * lo)}–"
                f"{_fmt(month * hi)} s of CPU to send, in the background; sampling and control "
                "go on",
            )
        )
    tui = results.get("tui", {})
    if "filamentctl tui cpu %" in tui:
        pct = tui["filamentctl tui cpu %"]
        out.append(
            _pi_row(
                "dashboard at one update per second",
                pct,
                "% of a core",
                f"{_fmt(pct * lo)}–{_fmt(pct * hi)} % of one of four cores, beside the service",
            )
        )
    if "filamentctl tui launch ms" in tui:
        launch = tui["filamentctl tui launch ms"] / 1000
        out.append(
            _pi_row(
                "dashboard launch to first data (wall; mostly CPU)",
                launch,
                "s",
                _wait_feel(launch * hi),
            )
        )
    mqtt = results.get("mqtt", {})
    if "cpu_ms_per_reading" in mqtt:
        per = mqtt["cpu_ms_per_reading"]
        out.append(_pi_row("Home Assistant gateway, per reading", per, "ms", "per reading sent"))
    control = results.get("control", {})
    if "median_ms" in control:
        ms = control["median_ms"]
        verdict = "inside" if ms * hi < 50 else "beyond"
        out.append(
            _pi_row(
                "reading → relay switched (median)",
                ms,
                "ms",
                f"{verdict} the 50 ms goal at the slow end",
            )
        )
    return "\n".join(out)


def write_doc(
    run: Run, previous: Run | None, outputs: dict[str, str], notes: str, kind: str
) -> None:
    """Rewrite docs/performance.md from ``run`` (and ``previous``, the full run before it)."""
    details = "\n\n".join(
        f"### {name}\n\n```\n{text.strip() or '(no output)'}\n```" for name, text in outputs.items()
    )
    before = f" Previous full run: {previous.stamp}." if previous else ""
    drain = run.results.get("drain", {})
    budget = drain_budget(drain) if "shared ours own_cpu_s" in drain else "(not measured)"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(
        f"""# Performance

<!-- generated by `./dev bench` (bench/report.py): every figure, verdict and estimate below is
computed from the benchmarks' results; edit bench/notes.md for the design notes -->

Measured {run.stamp} ({kind}) on: {run.machine} (shared machine).{before}

Every ratio is against a baseline measured in the same run, because machines here are shared and
noisy; absolute times move from run to run, ratios much less.

## Goals

{_goal_summary(run, previous)}

{_two_runs_table(run, previous)}

## Where a goal is missed, and why

{why_section(run)}

## The backlog drain, in CPU seconds

{budget}

## On a Raspberry Pi Zero 2 W

{pi_section(run.results)}

{notes.strip()}

## Output of each benchmark

{details}
"""
    )
