"""``filamentctl dry start|status|stop|profiles|history``: drying sessions.

Each command is one socket request (``dry.start``, ``dry.status``, ``dry.stop``,
``dry.profiles``, ``dry.history``). ``dry profiles`` and ``dry history`` also work without a
running service (from the configuration and the state directory). Exit codes: 2 for an unknown
material or a ``--temp`` above the cap (the service's message lists the profiles or names the
cap), 1 when the service refuses (heater disabled or latched, a session already running), 3
when no service runs.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import typer

from filamentctl import display
from filamentctl.cli.common import Command, call, examples, print_json
from filamentctl.errors import ServiceNotRunning, UsageError

JSON_HELP = "Print one JSON document on stdout (for scripts)."

app = typer.Typer(
    help="Dry a spool: heat the box to the material's drying temperature and vent it until the "
    "filament stops giving off water (or the profile's maximum time). Safety rules still apply.",
    short_help="Drying sessions: dry a spool until the filament stops giving off water.",
    epilog=examples(
        "filamentctl dry profiles",
        "filamentctl dry start pla",
        "filamentctl dry status",
        "filamentctl dry stop",
    ),
    no_args_is_help=True,
)


def _span(seconds: Any) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return display.DASH
    from filamentctl.core.drying import duration_text

    return duration_text(float(seconds))


def _deg(value: Any) -> str:
    return display.num(value, 1, " °C").replace(".0 °C", " °C")


@app.command(
    cls=Command,
    short_help="Start drying a spool with a material profile.",
    epilog=examples(
        "filamentctl dry start pla",
        "filamentctl dry start PETG --temp 55 --for 6h",
        "filamentctl dry start nylon --json",
    ),
)
def start(
    ctx: typer.Context,
    material: str = typer.Argument(
        ...,
        metavar="MATERIAL",
        help="Material profile, any case: PLA, PETG, ABS, ... ('dry profiles' lists them).",
    ),
    temp: float | None = typer.Option(
        None,
        "--temp",
        metavar="CELSIUS",
        help="Target °C instead of the profile's (at most the cap).",
    ),
    for_: str | None = typer.Option(
        None,
        "--for",
        metavar="DURATION",
        help="Maximum time instead of the profile's, e.g. 6h, 90m.",
    ),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Start drying: the heater holds the material's temperature (capped by dry.max_temp_c) and
    the fan vents the box on a schedule, until the box's absolute humidity stops changing (after
    the profile's minimum time) or the maximum time is up.

    Exits 2 for an unknown material (the message lists the profiles) or a --temp above the cap
    (the message names it), 1 when the heater is disabled or latched or a session already runs.
    """
    args: dict[str, Any] = {"material": material}
    if temp is not None:
        if not math.isfinite(temp):
            raise UsageError(f"invalid --temp {temp}: give a number of °C")
        args["temp_c"] = temp
    if for_ is not None:
        from filamentctl.core.duration import parse_duration

        try:
            args["for_s"] = parse_duration(for_)
        except ValueError as exc:
            raise UsageError(f"invalid --for {for_!r}: {exc}") from None
        if args["for_s"] <= 0:
            raise UsageError(f"invalid --for {for_!r}: a session must last longer than 0 s")
    state = call(ctx, "dry.start", args)
    if json_:
        print_json(state)
        return
    st = state or {}
    sys.stdout.write(f"drying {st.get('material')} at {_deg(st.get('target_c'))}{_capped(st)}\n")
    sys.stdout.write(
        f"  ends when the filament is dry (not before {_span(st.get('min_s'))}), at the latest "
        f"at {display.iso_clock(st.get('ends_by'))} ({_span(st.get('max_s'))})\n"
        "  follow it with 'filamentctl dry status'; end it with 'filamentctl dry stop'\n"
    )


def _capped(st: dict[str, Any]) -> str:
    if not st.get("capped"):
        return ""
    return (
        f" (profile {_deg(st.get('profile_temp_c'))}, capped by "
        f"{st.get('cap_reason') or 'dry.max_temp_c'})"
    )


@app.command(
    short_help="Show the running session: progress, time left, expected end.",
    epilog=examples("filamentctl dry status", "filamentctl dry status --json | jq .expected"),
)
def status(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show the running session: target, progress with time left, how and when it is expected
    to end, the humidity trend and the water removed so far. Prints null with --json when no
    session runs.
    """
    state = call(ctx, "dry.status", timeout=5.0)
    if json_:
        print_json(state)
        return
    if not state:
        sys.stdout.write(
            "no drying session is running; start one with 'filamentctl dry start MATERIAL'\n"
        )
        return
    if sys.stdout.isatty():
        _rich_status(state)
    else:
        sys.stdout.write(render_status(state))


def _bar_text(progress: float, width: int = 30) -> str:
    done = max(0, min(width, round(progress * width)))
    return "[" + "#" * done + "." * (width - done) + f"] {progress * 100:3.0f}%"


def _progress(st: dict[str, Any]) -> float:
    value = st.get("progress")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return max(0.0, min(1.0, float(value)))


def _detail_lines(st: dict[str, Any]) -> list[str]:
    expected = st.get("expected") or {}
    if expected.get("reason") == "plateau":
        end = (
            f"expected to end on the plateau at {display.iso_clock(expected.get('at'))} "
            f"(in {_span(expected.get('in_s'))}): {expected.get('note', '')}"
        )
    else:
        end = (
            f"ends at {display.iso_clock(expected.get('at'))} at the latest (in "
            f"{_span(expected.get('in_s'))}, maximum time), {expected.get('note', '')}"
        )
    trend = st.get("trend")
    limit = st.get("plateau_slope")
    window = _span(st.get("plateau_window_s"))
    if isinstance(trend, dict):
        slope = trend.get("slope_g_m3_h")
        err = trend.get("stderr_g_m3_h")
        trend_text = (
            f"humidity trend {display.num(slope, 2)} ± {display.num(err, 2)} g/m³/h over the "
            f"last {window} (plateau: within ±{limit:g})"
            if isinstance(limit, (int, float))
            else f"humidity trend {display.num(slope, 2)} g/m³/h"
        )
    else:
        trend_text = f"humidity trend: not enough closed-box readings yet (window {window})"
    water = (
        f"water removed at least {display.num(st.get('water_removed_g'), 1)} ± "
        f"{display.num(st.get('water_uncertainty_g'), 1)} g ({st.get('vents_measured', 0)} vents)"
    )
    box = f"box {st.get('vent', '?')}, peak {_deg(st.get('peak_temp_c'))}"
    return [end, trend_text, water, box]


def _headline(st: dict[str, Any]) -> str:
    return f"drying {st.get('material')} at {_deg(st.get('target_c'))}{_capped(st)}"


def _times(st: dict[str, Any]) -> str:
    return (
        f"{_span(st.get('elapsed_s'))} of {_span(st.get('max_s'))}, "
        f"{_span(st.get('remaining_s'))} left"
    )


def render_status(st: dict[str, Any]) -> str:
    """The running session as plain text (no colours: logs, pipes, SSH without a terminal)."""
    lines = [_headline(st), f"  {_bar_text(_progress(st))}  {_times(st)}"]
    lines += [f"  {line}" for line in _detail_lines(st)]
    return "\n".join(lines) + "\n"


def _rich_status(st: dict[str, Any]) -> None:
    """The same, with a Rich progress bar (imported only here: CLI start-up time)."""
    from rich.console import Console
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    console = Console()
    console.print(_headline(st), markup=False, highlight=False)
    row = Table.grid(padding=(0, 1))
    row.add_row(
        ProgressBar(total=1.0, completed=_progress(st), width=30),
        f"{_progress(st) * 100:3.0f}%  {_times(st)}",
    )
    console.print(row)
    for line in _detail_lines(st):
        console.print(f"  {line}", markup=False, highlight=False)


@app.command(
    short_help="End the running session now; back to the storage band.",
    epilog=examples("filamentctl dry stop", "filamentctl dry stop --json | jq .water_removed_g"),
)
def stop(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """End the running session now; the heater returns to its storage band. Exits 1 when no
    session runs.
    """
    record = call(ctx, "dry.stop")
    if json_:
        print_json(record)
        return
    sys.stdout.write(f"{(record or {}).get('message', 'drying stopped')}\n")


@app.command(
    short_help="List the drying profiles: temperature, times, sources.",
    epilog=examples(
        "filamentctl dry profiles",
        "filamentctl dry profiles --json | jq '.profiles[].name'",
    ),
)
def profiles(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the drying profiles (built-in and from dry.profiles), the temperature each runs at
    under the cap, and their minimum and maximum times. Works without a running service.
    """
    try:
        doc = call(ctx, "dry.profiles", timeout=5.0)
    except ServiceNotRunning:
        doc = _local_profiles()
    if json_:
        print_json(doc)
        return
    sys.stdout.write(f"{'profile':<12}{'target':>9}{'runs at':>9}{'min':>8}{'max':>8}  source\n")
    for p in doc.get("profiles") or []:
        runs = _deg(p.get("runs_at_c")) + ("*" if p.get("capped") else "")
        sys.stdout.write(
            f"{str(p.get('name')):<12}{_deg(p.get('temp_c')):>9}{runs:>9}"
            f"{_span(p.get('min_s')):>8}{_span(p.get('max_s')):>8}  {p.get('source', '')}\n"
        )
    sys.stdout.write(
        f"* capped: no session runs above {_deg(doc.get('cap_c'))} ({doc.get('cap_reason')})\n"
    )


def _local_profiles() -> dict[str, Any]:
    from filamentctl.core.drying import DryingError, DryingSettings
    from filamentctl.errors import ConfigError
    from filamentctl.store.settings import load_settings

    try:
        settings = DryingSettings.from_settings(load_settings())
    except DryingError as exc:
        raise ConfigError(f"invalid dry.profiles: {exc}") from None
    cap = settings.cap_c
    return {
        "cap_c": cap,
        "cap_reason": settings.cap_reason,
        "profiles": [
            {**p.to_dict(), "runs_at_c": min(p.temp_c, cap), "capped": p.temp_c > cap}
            for p in settings.profiles.values()
        ],
    }


@app.command(
    short_help="List past sessions: material, end reason, water removed.",
    epilog=examples(
        "filamentctl dry history",
        "filamentctl dry history --limit 5 --json | jq '.[] | {material, reason}'",
    ),
)
def history(
    ctx: typer.Context,
    limit: int = typer.Option(
        50, "--limit", min=1, max=500, metavar="COUNT", help="At most this many sessions (1-500)."
    ),
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List past sessions, oldest first: material, start, duration, how each ended (plateau,
    time, stopped or fault), peak temperature and water removed. Works without a running
    service.
    """
    try:
        rows = call(ctx, "dry.history", {"limit": limit}, timeout=10.0)
    except ServiceNotRunning:
        rows = _local_history(limit)
    if json_:
        print_json(rows)
        return
    if not rows:
        sys.stdout.write("no drying sessions yet\n")
        return
    sys.stdout.write(
        f"{'started':<17}{'material':<10}{'target':>8}{'took':>8}  {'ended by':<9}"
        f"{'peak':>9}{'water':>14}\n"
    )
    for r in rows:
        water = (
            f"{display.num(r.get('water_removed_g'), 1)} ± "
            f"{display.num(r.get('water_uncertainty_g'), 1)} g"
        )
        sys.stdout.write(
            f"{display.iso_local(r.get('started')):<17}{str(r.get('material')):<10}"
            f"{_deg(r.get('target_c')):>8}{_span(r.get('duration_s')):>8}  "
            f"{str(r.get('reason')):<9}{_deg(r.get('peak_temp_c')):>9}{water:>14}\n"
        )


def _local_history(limit: int) -> list[dict[str, Any]]:
    from filamentctl import paths
    from filamentctl.errors import UserError
    from filamentctl.store.drying import DryingLog

    log = DryingLog(paths.resolve().state_dir)
    try:
        return log.read(limit)
    except OSError as exc:
        raise UserError(
            f"cannot read the drying history {log.path}: {exc.strerror or exc}; run it as the "
            "service's user, or start the service"
        ) from None
