"""``filamentctl heater|fan on|off|auto [--for D]``, ``status`` and ``reset``.

Each command is one socket request (``heater.set``, ``heater.reset``, ``status``; the same for
the fan). A request the service refuses (e.g. ``heater on`` during a latched fault) exits 1 with
the service's reason on one stderr line; an invalid argument exits 2; no service exits 3.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from filamentctl import display
from filamentctl.cli.common import call, print_json
from filamentctl.errors import UsageError


def register(app: typer.Typer) -> None:
    app.add_typer(_make("heater"), name="heater")
    app.add_typer(_make("fan"), name="fan")


def _make(name: str) -> typer.Typer:
    sub = typer.Typer(
        help=f"Switch the {name} by hand, hand it back to automatic control, or "
        "clear a latched safety fault. Safety rules apply to manual ON too.",
        no_args_is_help=True,
    )

    def _set(ctx: typer.Context, mode: str, for_: str | None, json_: bool) -> None:
        args: dict[str, Any] = {"mode": mode}
        if for_ is not None:
            if mode == "auto":
                raise UsageError("--for applies to 'on' and 'off' only")
            from filamentctl.core.duration import parse_duration

            try:
                args["for_s"] = parse_duration(for_)
            except ValueError as exc:
                raise UsageError(f"invalid --for {for_!r}: {exc}") from None
            if args["for_s"] <= 0:
                raise UsageError(f"invalid --for {for_!r}: the override must last longer than 0 s")
        state = call(ctx, f"{name}.set", args)
        _show(name, state, json_)

    @sub.command("on")
    def on(
        ctx: typer.Context,
        for_: str | None = typer.Option(None, "--for", help="Expire after e.g. 30m, 2h."),
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
    ) -> None:
        """Force ON (manual override); still switched off by every safety rule."""
        _set(ctx, "on", for_, json_)

    @sub.command("off")
    def off(
        ctx: typer.Context,
        for_: str | None = typer.Option(None, "--for", help="Expire after e.g. 30m, 2h."),
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
    ) -> None:
        """Force OFF (manual override)."""
        _set(ctx, "off", for_, json_)

    @sub.command("auto")
    def auto(
        ctx: typer.Context,
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
    ) -> None:
        """Back to automatic control; re-evaluates at once."""
        _set(ctx, "auto", None, json_)

    @sub.command("status")
    def status(
        ctx: typer.Context,
        json_: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Show on/off, pin level, mode, reason, thresholds and override expiry."""
        state = call(ctx, "status", timeout=5.0).get(name)
        _show(name, state, json_)

    @sub.command("reset")
    def reset(
        ctx: typer.Context,
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
    ) -> None:
        """Clear a latched safety fault (refused while the cause is still present)."""
        state = call(ctx, f"{name}.reset")
        _show(name, state, json_)

    return sub


def _show(name: str, state: dict[str, Any] | None, json_: bool) -> None:
    if json_:
        print_json(state)
        return
    if not state or not state.get("enabled", True):
        sys.stdout.write(f"{name}: disabled ({name}.enabled is false)\n")
        return
    until = f" until {state['override_until']}" if state.get("override_until") else ""
    sys.stdout.write(
        f"{name}: {'ON' if state.get('on') else 'off'} [{state.get('mode')}{until}], "
        f"pin level {state.get('pin_level')} — {state.get('reason', '')}\n"
    )
    latched = display.latch(state)
    if latched:
        sys.stdout.write(f"  {latched} (clear with 'filamentctl {name} reset')\n")
    th = state.get("thresholds") or {}
    if th:
        sys.stdout.write("  " + ", ".join(f"{k} {v}" for k, v in th.items()) + "\n")
