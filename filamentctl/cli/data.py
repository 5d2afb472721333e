"""Data commands: ``status``, ``read``, ``flush``, ``history``."""

from __future__ import annotations

import math
import sys
import time
from enum import StrEnum
from typing import Any

import typer

from filamentctl import display
from filamentctl.cli.common import (
    call,
    ctx_of,
    examples,
    parse_duration_option,
    parse_since,
    print_json,
    quiet_option,
    say,
)
from filamentctl.cli.readouts import render_status, show_reading, show_status
from filamentctl.errors import EXIT_FAILED, ServiceNotRunning, UsageError, UserError

JSON_HELP = "Print one JSON document on stdout (for scripts)."
MAX_WATCH_INTERVAL_S = 3600.0
# What the user typed for each wire argument of ``history``, so a refusal names the option.
HISTORY_OPTIONS = {"since_s": "--since", "step_s": "--every", "limit": "--limit"}


class HistoryFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class DeadLetterAction(StrEnum):
    list = "list"
    replay = "replay"
    purge = "purge"


def register(app: typer.Typer) -> None:
    app.command(
        short_help="Show the service's whole state; --check for a health exit code.",
        epilog=examples(
            "filamentctl status",
            "filamentctl status --json | jq .reading.humidity",
            "filamentctl status --check || echo 'look at the box'",
            "filamentctl status --watch --interval 5",
        ),
    )(status)
    app.command(
        short_help="Take one reading (from the service, or the sensor directly).",
        epilog=examples(
            "filamentctl read",
            "filamentctl read --json | jq .temperature_c",
            "filamentctl read --direct          # the sensor itself, e.g. to check wiring",
        ),
    )(read)
    app.command(
        short_help="Deliver the backlog now, or handle rejected batches.",
        epilog=examples(
            "filamentctl flush",
            "filamentctl flush --timeout 300 --quiet",
            "filamentctl flush --dead-letter list",
            "filamentctl flush --dead-letter replay --id 3",
        ),
    )(flush)
    app.command(
        short_help="Print readings from the local history (table, CSV or JSON).",
        epilog=examples(
            "filamentctl history --since 6h",
            "filamentctl history --since 7d --every 1h --format csv > week.csv",
            "filamentctl history --since 30m --format json | jq length",
        ),
    )(history)


# -- status -----------------------------------------------------------------------------------
def status(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every second until Ctrl+C."),
    interval: float = typer.Option(
        1.0,
        "--interval",
        min=0.2,
        metavar="SECONDS",
        help="Refresh period for --watch (0.2 to 3600).",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Judge health: exit 0 when healthy, 1 when a fault, latch, stale reading or "
        "delivery alert is active (one line says which).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="With --check: print nothing, only the exit code tells."
    ),
) -> None:
    """Show the running service's whole state: reading, sensor, heater, fan, storage.

    Exits 3 when no service is running. With --check, exits 1 when the box needs a look (for
    cron and monitoring). On a terminal --watch redraws the screen; piped, it prints one block
    per refresh (with --json, one JSON object per line).
    """
    if not math.isfinite(interval) or not 0.2 <= interval <= MAX_WATCH_INTERVAL_S:
        raise UsageError(
            f"invalid --interval {interval!r}: use a number of seconds from 0.2 to "
            f"{MAX_WATCH_INTERVAL_S:g}"
        )
    if check:
        if watch:
            raise UsageError("--check and --watch do not go together; use one of them")
        _check(call(ctx, "status", timeout=5.0), json_, quiet)
        return
    if not watch:
        show_status(ctx_of(ctx).socket, json_)
        return
    redraw = sys.stdout.isatty() and not json_
    first = True
    try:
        while True:
            state = call(ctx, "status", timeout=5.0)
            if json_:
                sys.stdout.write(_compact_json(state) + "\n")
            elif redraw:
                sys.stdout.write("\x1b[H\x1b[2J" + render_status(state))
                sys.stdout.write("\n(Ctrl+C to stop)\n")
            else:  # a file or a pipe: no control codes, a blank line between refreshes
                sys.stdout.write(("" if first else "\n") + render_status(state))
            first = False
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def _check(state: dict[str, Any], json_: bool, quiet: bool) -> None:
    from filamentctl.core.health import problems

    found = problems(state)
    if json_:
        print_json({"healthy": not found, "problems": found})
    elif found:
        say(quiet, "unhealthy: " + "; ".join(found))
    else:
        reading = state.get("reading") or {}
        say(quiet, f"healthy: reading {display.age(reading.get('age_s'))} old, no faults or alerts")
    if found:
        raise typer.Exit(EXIT_FAILED)


def _compact_json(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"), default=str)


# -- read -------------------------------------------------------------------------------------
def read(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    direct: bool = typer.Option(
        False, "--direct", help="Read the configured sensor directly, even if a service is running."
    ),
) -> None:
    """Take one reading: from the running service, else straight from the configured sensor."""
    show_reading(ctx_of(ctx).socket, json_, direct)


# -- flush ------------------------------------------------------------------------------------
def flush(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    timeout: float = typer.Option(
        60.0,
        "--timeout",
        min=0.1,
        metavar="SECONDS",
        help="Give up after this many seconds (0.1 to 3600).",
    ),
    dead_letter: DeadLetterAction | None = typer.Option(
        None,
        "--dead-letter",
        help="Work on the batches the database rejected instead.",
    ),
    ids: list[int] | None = typer.Option(
        None,
        "--id",
        metavar="ID",
        help="With --dead-letter replay/purge: only this entry (repeatable).",
    ),
    quiet: bool = quiet_option(),
) -> None:
    """Deliver the backlog now, with a progress bar. Via the service if it runs, else directly
    (only while no service holds the history).

    Exits 1 when readings are left undelivered (the reason is printed).
    """
    from filamentctl.client import Client
    from filamentctl.protocol import MAX_FLUSH_TIMEOUT_S, MAX_ID

    if ids and dead_letter not in ("replay", "purge"):
        raise UsageError("--id works with --dead-letter replay or purge only")
    bad = [i for i in ids or () if not 1 <= i <= MAX_ID]
    if bad:
        raise UsageError(f"invalid --id {bad[0]}: dead-letter ids are 1 to {MAX_ID}")
    if dead_letter is not None:
        _dead_letter(ctx, dead_letter.value, ids, json_, quiet)
        return
    if not math.isfinite(timeout) or not 0.1 <= timeout <= MAX_FLUSH_TIMEOUT_S:
        raise UsageError(
            f"invalid --timeout {timeout!r}: use a number of seconds from 0.1 to "
            f"{MAX_FLUSH_TIMEOUT_S:g}"
        )
    show_bar = not json_ and not quiet and sys.stderr.isatty()
    bar = _ProgressBar() if show_bar else None
    try:
        with Client.connect(ctx_of(ctx).socket, timeout=timeout + 10) as client:
            result = client.call(
                "flush",
                {"timeout": timeout},
                on_event=(lambda _name, data: bar.update(data)) if bar else None,
            )
        result["via"] = "service"
    except ServiceNotRunning:
        from filamentctl.service.direct import flush_direct

        result = flush_direct(timeout, progress=bar.update if bar else None)
        result["via"] = "direct"
    finally:
        if bar:
            bar.close()
    line = f"delivered {result.get('delivered', 0)}, remaining {result.get('remaining', 0)}" + (
        f" — {result['error']}" if result.get("error") else ""
    )
    if json_:
        print_json(result)
    elif not result.get("ok", False):
        raise UserError(f"flush incomplete: {line}")
    else:
        say(quiet, line)
    if not result.get("ok", False):
        raise typer.Exit(EXIT_FAILED)


def _dead_letter(
    ctx: typer.Context, action: str, ids: list[int] | None, json_: bool, quiet: bool
) -> None:
    if ids and action == "list":
        raise UsageError("--id goes with --dead-letter replay or purge, not list")
    args = {"ids": ids} if ids else {}
    if ids:
        # The service skips ids it does not have; an id that is not there is the user's mistake.
        known = {e.get("id") for e in call(ctx, "deadletter.list")}
        missing = [i for i in ids if i not in known]
        if missing:
            raise UserError(
                f"no dead-letter entry {', '.join(f'#{i}' for i in missing)}; nothing "
                f"{'replayed' if action == 'replay' else 'purged'} (see 'filamentctl flush "
                "--dead-letter list')"
            )
    if action == "list":
        entries = call(ctx, "deadletter.list")
        if json_:
            print_json(entries)
            return
        if not entries:
            sys.stdout.write("the dead-letter table is empty\n")
        for e in entries:
            sys.stdout.write(
                f"#{e.get('id')}  {e.get('count')} readings (seq {e.get('first_seq')}–"
                f"{e.get('last_seq')})  HTTP {e.get('status')}: {e.get('error')}\n"
            )
        return
    result = call(ctx, f"deadletter.{action}", args, timeout=120.0)
    if json_:
        print_json(result)
    elif action == "purge":
        say(quiet, f"purged {result.get('purged', 0)} dead-letter entries")
    else:
        line = (
            f"replayed {result.get('replayed', 0)} entries ({result.get('readings', 0)} readings)"
        )
        if not result.get("ok", True):
            raise UserError(
                f"{line}; still failing: {result.get('failed')}"
                + (f" — {result['error']}" if result.get("error") else "")
            )
        say(quiet, line)
    if action == "replay" and not result.get("ok", True):
        raise typer.Exit(EXIT_FAILED)


class _ProgressBar:
    """A rich progress bar on stderr, fed by ``flush.progress`` events."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "delivering",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("flush", total=None)

    def update(self, data: Any) -> None:
        if isinstance(data, dict):
            self._progress.update(
                self._task,
                completed=int(data.get("delivered", 0)),
                total=int(data.get("total", 0)) or None,
            )

    def close(self) -> None:
        self._progress.stop()


# -- history ----------------------------------------------------------------------------------
def history(
    ctx: typer.Context,
    since: str = typer.Option(
        "24h", "--since", metavar="DURATION", help="How far back, e.g. 90m, 24h, 7d."
    ),
    format_: HistoryFormat = typer.Option(
        HistoryFormat.table, "--format", "-f", help="Output format."
    ),
    limit: int = typer.Option(
        100_000,
        "--limit",
        min=1,
        max=100_000,
        metavar="N",
        help="At most this many readings (newest kept; 1 to 100000).",
    ),
    every: str | None = typer.Option(
        None,
        "--every",
        metavar="DURATION",
        help="Average into buckets of this length, e.g. 10m (long spans).",
    ),
) -> None:
    """Print readings from the local history (works with or without a running service)."""
    since_s = parse_since(since)
    args: dict[str, Any] = {"since_s": since_s, "limit": limit}
    if every is not None:
        args["step_s"] = parse_duration_option("--every", every)
        if args["step_s"] < 1:
            raise UsageError(f"invalid --every {every!r}: use at least 1s")
    try:
        rows = call(ctx, "history", args, timeout=30.0, names=HISTORY_OPTIONS)
    except ServiceNotRunning:
        from filamentctl.service.direct import history_direct

        rows = history_direct(since_s, limit, args.get("step_s"))
    if format_ is HistoryFormat.json:
        print_json(rows)
    elif format_ is HistoryFormat.csv:
        import csv

        from filamentctl.core.reading import FIELDS

        cols = ["time", "seq", *FIELDS]
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in cols])
    else:
        sys.stdout.write(
            f"{'time (UTC)':<27}{'seq':>8}{'°C':>8}{'%RH':>8}{'dew °C':>8}{'g/m³':>8}{'hPa':>9}\n"
        )
        for row in rows:
            sys.stdout.write(
                f"{row['time']:<27}{row['seq']:>8}{display.num(row.get('temperature_c'), 2):>8}"
                f"{display.num(row.get('humidity')):>8}{display.num(row.get('dew_point_c')):>8}"
                f"{display.num(row.get('absolute_humidity_g_m3'), 2):>8}"
                f"{display.num(row.get('pressure_hpa')):>9}\n"
            )
        if not rows:
            sys.stderr.write(f"no readings in the last {since}\n")
