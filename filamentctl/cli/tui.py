"""``filamentctl tui``: the live dashboard. Textual is imported only when the command runs."""

from __future__ import annotations

import os
import sys

import typer

from filamentctl.cli.common import ctx_of, examples
from filamentctl.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command(
        short_help="Open the live dashboard (readings, chart, heater, fan, events).",
        epilog=examples(
            "filamentctl tui",
            "filamentctl --socket /run/filamentctl/filamentctl.sock tui",
        ),
    )(tui)


def terminal_problem() -> str | None:
    """Why this process cannot show a full-screen dashboard, or None when it can.

    Without a terminal Textual would write escape codes into a file or pipe and spin a CPU core
    waiting for keys that never come; ``TERM=dumb`` cannot draw it either.
    """
    if not sys.stdin.isatty():
        return "standard input is not a terminal"
    if not sys.stdout.isatty():
        return "standard output is not a terminal"
    if os.environ.get("TERM", "") == "dumb":
        return "TERM=dumb cannot draw it"
    return None


def tui(ctx: typer.Context) -> None:
    """Open the live dashboard: readings, chart, heater and fan, storage, events.

    Keys: h heater, f fan, r reset, d drying, ? help, q quit, ctrl+p every action. Reconnects
    by itself when the service restarts. Needs an interactive terminal (exit 2 otherwise); for
    scripts and pipes use `filamentctl status --watch`.
    """
    problem = terminal_problem()
    if problem is not None:
        raise UsageError(
            f"the dashboard needs an interactive terminal: {problem}; for plain text use "
            "'filamentctl status --watch'"
        )
    from filamentctl.tui.app import run_dashboard

    run_dashboard(ctx_of(ctx).socket)
