"""Data commands: ``status``, ``read``, ``flush``, ``history``."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import typer

from filamentctl import display
from filamentctl.cli.common import (
    call,
    ctx_of,
    describe_reading,
    fmt_age,
    fmt_num,
    parse_since,
    print_json,
)
from filamentctl.errors import ServiceNotRunning, UsageError

JSON_HELP = "Print one JSON document on stdout (for scripts)."
MAX_WATCH_INTERVAL_S = 3600.0


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(read)
    app.command()(flush)
    app.command()(history)


# -- status -----------------------------------------------------------------------------------
def status(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every second until Ctrl+C."),
    interval: float = typer.Option(
        1.0, "--interval", help="Refresh period for --watch (s, 0.2 to 3600)."
    ),
) -> None:
    """Show the running service's whole state: reading, sensor, heater, fan, storage.

    Exits 3 when no service is running.
    """
    if not math.isfinite(interval) or not 0.2 <= interval <= MAX_WATCH_INTERVAL_S:
        raise UsageError(
            f"invalid --interval {interval!r}: use a number of seconds from 0.2 to "
            f"{MAX_WATCH_INTERVAL_S:g}"
        )
    if not watch:
        state = call(ctx, "status", timeout=5.0)
        print_json(state) if json_ else sys.stdout.write(render_status(state))
        return
    try:
        while True:
            state = call(ctx, "status", timeout=5.0)
            if json_:
                sys.stdout.write(_compact_json(state) + "\n")
            else:
                sys.stdout.write("\x1b[H\x1b[2J" + render_status(state))
                sys.stdout.write("\n(Ctrl+C to stop)\n")
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def _compact_json(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"), default=str)


def render_status(s: dict[str, Any]) -> str:
    """Human-readable status (plain text, works over SSH and without colours)."""
    lines: list[str] = []
    r = s.get("reading") or {}
    sensor = s.get("sensor") or {}
    lines.append(
        f"filamentctl {s.get('version', '?')} — up {fmt_age(s.get('uptime_s'))}, "
        f"{s.get('readings_total', 0)} readings" + (" (simulated)" if s.get("simulated") else "")
    )
    if r:
        lines.append(
            f"  reading   {describe_reading(r)}  — {fmt_age(r.get('age_s'))} old (#{r.get('seq')})"
        )
    else:
        lines.append("  reading   none yet")
    err = f", last error: {sensor.get('last_error')}" if sensor.get("last_error") else ""
    lines.append(
        f"  sensor    {sensor.get('type', '?')}: {sensor.get('health', '?')}, "
        f"{sensor.get('errors', 0)} errors, {sensor.get('rejected', 0)} rejected{err}"
    )
    for name in ("heater", "fan"):
        relay = s.get(name)
        if not relay:
            continue
        if not relay.get("enabled", True):
            lines.append(f"  {name:<9} disabled")
            continue
        state = "ON" if relay.get("on") else "off"
        until = f" until {relay['override_until']}" if relay.get("override_until") else ""
        lines.append(
            f"  {name:<9} {state} [{relay.get('mode')}{until}] pin level "
            f"{relay.get('pin_level')} — {relay.get('reason', '')}"
        )
        latched = display.latch(relay)
        if latched:
            lines.append(f"  {'':<9} {latched}; clear with 'filamentctl {name} reset'")
    drying = s.get("drying")
    if isinstance(drying, dict):
        expected = drying.get("expected") or {}
        lines.append(
            f"  drying    {drying.get('material')} at {fmt_num(drying.get('target_c'), ' °C')}, "
            f"{fmt_age(drying.get('elapsed_s'))} of {fmt_age(drying.get('max_s'))}; expected to "
            f"end ({expected.get('reason', '?')}) by {display.iso_clock(expected.get('at'))}"
        )
    st = s.get("storage") or {}
    conn = "connected" if st.get("connected") else "not connected"
    if st.get("backend") == "none":
        conn = "local history only"
    lines.append(
        f"  storage   {st.get('backend', '?')} ({conn}): backlog {st.get('backlog', 0)}"
        f" (oldest {fmt_age(st.get('oldest_unsent_age_s'))}), written {st.get('written', 0)},"
        f" dropped {st.get('dropped', 0)}, rejected {st.get('rejected', 0)},"
        f" dead-letter {st.get('dead_letter', 0)}"
    )
    if st.get("last_error"):
        retry = st.get("next_retry_s")
        lines.append(
            f"            last error: {st['last_error']}"
            + (f" — retry in {fmt_age(retry)}" if retry else "")
        )
    alert = st.get("alert")
    if alert:
        lines.append(f"  ALERT     {alert.get('kind')}: {alert.get('message')}")
    lines.extend(_notifications_lines(s.get("notifications") or {}))
    return "\n".join(lines) + "\n"


def _notifications_lines(n: dict[str, Any]) -> list[str]:
    """``notify    1 target(s): 3 sent, 1 pending, 4 held``; nothing while they are off."""
    if not n.get("enabled"):
        return [f"  notify    not started: {n['last_error']}"] if n.get("last_error") else []
    held = sum((n.get("held") or {}).values())
    targets = n.get("targets")
    line = f"  notify    {'?' if targets is None else targets} target(s): {n.get('sent', 0)} sent"
    line += f", {n['pending']} pending" if n.get("pending") else ""
    line += f", {held} held" if held else ""
    out = [line]
    if n.get("last_error"):
        retry = n.get("next_retry_s")
        out.append(
            f"            last error: {n['last_error']}"
            + (f" — retry in {fmt_age(retry)}" if retry is not None else "")
        )
    return out


# -- read -------------------------------------------------------------------------------------
def read(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    direct: bool = typer.Option(
        False, "--direct", help="Read the configured sensor directly, even if a service is running."
    ),
) -> None:
    """Take one reading: from the running service, else straight from the configured sensor."""
    reading: dict[str, Any] | None = None
    source = "service"
    if not direct:
        try:
            reading = call(ctx, "read", timeout=5.0)
        except ServiceNotRunning:
            reading = None
    if reading is None:
        from filamentctl.service.direct import read_direct

        reading, source = read_direct(), "direct"
    if json_:
        print_json({**reading, "source": source})
        return
    sys.stdout.write(f"{describe_reading(reading)}  ({source}, {reading.get('time')})\n")


# -- flush ------------------------------------------------------------------------------------
def flush(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help=JSON_HELP),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Give up after this many seconds (0.1 to 3600)."
    ),
    dead_letter: str | None = typer.Option(
        None,
        "--dead-letter",
        help="Work on the batches the database rejected instead: list, replay or purge.",
    ),
    ids: list[int] | None = typer.Option(
        None, "--id", help="With --dead-letter replay/purge: only this entry (repeatable)."
    ),
) -> None:
    """Deliver the backlog now, with a progress bar. Via the service if it runs, else directly
    (only while no service holds the history)."""
    from filamentctl.client import Client
    from filamentctl.protocol import MAX_FLUSH_TIMEOUT_S, MAX_ID

    if ids and dead_letter not in ("replay", "purge"):
        raise UsageError("--id works with --dead-letter replay or purge only")
    bad = [i for i in ids or () if not 1 <= i <= MAX_ID]
    if bad:
        raise UsageError(f"invalid --id {bad[0]}: dead-letter ids are 1 to {MAX_ID}")
    if dead_letter is not None:
        _dead_letter(ctx, dead_letter, ids, json_)
        return
    if not math.isfinite(timeout) or not 0.1 <= timeout <= MAX_FLUSH_TIMEOUT_S:
        raise UsageError(
            f"invalid --timeout {timeout!r}: use a number of seconds from 0.1 to "
            f"{MAX_FLUSH_TIMEOUT_S:g}"
        )
    show_bar = not json_ and sys.stderr.isatty()
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
    if json_:
        print_json(result)
    else:
        sys.stdout.write(
            f"delivered {result.get('delivered', 0)}, remaining {result.get('remaining', 0)}"
            + (f" — {result['error']}" if result.get("error") else "")
            + "\n"
        )
    if not result.get("ok", False):
        raise typer.Exit(1)


def _dead_letter(ctx: typer.Context, action: str, ids: list[int] | None, json_: bool) -> None:
    if action not in ("list", "replay", "purge"):
        raise UsageError(f"invalid --dead-letter {action!r}: use list, replay or purge")
    args = {"ids": ids} if ids else {}
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
        sys.stdout.write(f"purged {result.get('purged', 0)} dead-letter entries\n")
    else:
        sys.stdout.write(
            f"replayed {result.get('replayed', 0)} entries ({result.get('readings', 0)} readings)"
            + (f"; still failing: {result.get('failed')}" if result.get("failed") else "")
            + "\n"
        )
    if action == "replay" and not result.get("ok", True):
        raise typer.Exit(1)


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
    since: str = typer.Option("24h", "--since", help="How far back, e.g. 90m, 24h, 7d."),
    format_: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    limit: int = typer.Option(
        100_000, "--limit", min=1, max=100_000, help="At most this many readings (newest kept)."
    ),
    every: str | None = typer.Option(
        None, "--every", help="Average into buckets of this length, e.g. 10m (long spans)."
    ),
) -> None:
    """Print readings from the local history (works with or without a running service)."""
    if format_ not in ("table", "csv", "json"):
        raise UsageError(f"invalid --format {format_!r}: use table, csv or json")
    since_s = parse_since(since)
    args: dict[str, Any] = {"since_s": since_s, "limit": limit}
    if every is not None:
        args["step_s"] = parse_since(every)
        if args["step_s"] < 1:
            raise UsageError(f"invalid --every {every!r}: use at least 1s")
    try:
        rows = call(ctx, "history", args, timeout=30.0)
    except ServiceNotRunning:
        from filamentctl.service.direct import history_direct

        rows = history_direct(since_s, limit, args.get("step_s"))
    if format_ == "json":
        print_json(rows)
    elif format_ == "csv":
        import csv

        cols = [
            "time",
            "seq",
            "temperature_c",
            "temperature_f",
            "humidity",
            "dew_point_c",
            "absolute_humidity_g_m3",
            "pressure_hpa",
        ]
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
                f"{row['time']:<27}{row['seq']:>8}{fmt_num(row.get('temperature_c'), digits=2):>8}"
                f"{fmt_num(row.get('humidity'), digits=1):>8}{fmt_num(row.get('dew_point_c')):>8}"
                f"{fmt_num(row.get('absolute_humidity_g_m3'), digits=2):>8}"
                f"{fmt_num(row.get('pressure_hpa')):>9}\n"
            )
        if not rows:
            sys.stderr.write(f"no readings in the last {since}\n")
