"""``filamentctl tui``: the live dashboard. Textual is imported only when the command runs."""

from __future__ import annotations

import typer

from filamentctl.cli.common import ctx_of


def register(app: typer.Typer) -> None:
    app.command()(tui)


def tui(ctx: typer.Context) -> None:
    """Open the live dashboard: readings, chart, heater and fan, storage, events.

    Keys: h heater, f fan, r reset, d drying, ? help, q quit, ctrl+p every action.
    Reconnects by itself when the service restarts.
    """
    from filamentctl.tui.app import run_dashboard

    run_dashboard(ctx_of(ctx).socket)
