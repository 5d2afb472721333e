"""``filamentctl heater|fan on|off|auto [--for D]``, ``status`` and ``reset``.

Each command is one socket request (``heater.set``, ``heater.reset``, ``status``; the same for
the fan). A request the service refuses (e.g. ``heater on`` during a latched fault) exits 1 with
the service's reason on one stderr line; an invalid argument exits 2; no service exits 3.
"""

from __future__ import annotations

from typing import Any

import typer

from filamentctl.cli.common import call, ctx_of, examples, parse_duration_option, quiet_option
from filamentctl.cli.readouts import show_relay, show_relay_status
from filamentctl.errors import UsageError

# What the user typed for each wire argument, so a refusal names the option, not the field.
OPTION_NAMES = {"for_s": "--for"}
FOR_HELP = "Expire after this long, e.g. 30m, 2h (then back to automatic)."


def register(app: typer.Typer) -> None:
    app.add_typer(_make("heater"), name="heater")
    app.add_typer(_make("fan"), name="fan")


def _make(name: str) -> typer.Typer:
    sub = typer.Typer(
        help=f"Switch the {name} by hand, hand it back to automatic control, or "
        "clear a latched safety fault. Safety rules apply to manual ON too.",
        short_help=f"Switch the {name} on/off by hand or back to auto; reset a fault.",
        epilog=examples(
            f"filamentctl {name} status",
            f"filamentctl {name} on --for 2h",
            f"filamentctl {name} auto",
        ),
        no_args_is_help=True,
    )
    _add_mode_commands(sub, name)
    _add_state_commands(sub, name)
    return sub


def _set(
    ctx: typer.Context, name: str, mode: str, for_: str | None, json_: bool, quiet: bool
) -> None:
    """``NAME.set`` with ``mode`` (and ``--for`` as seconds), then the new state."""
    args: dict[str, Any] = {"mode": mode}
    if for_ is not None:
        if mode == "auto":
            raise UsageError("--for applies to 'on' and 'off' only")
        args["for_s"] = parse_duration_option("--for", for_)
        if args["for_s"] <= 0:
            raise UsageError(f"invalid --for {for_!r}: the override must last longer than 0 s")
    state = call(ctx, f"{name}.set", args, names=OPTION_NAMES)
    show_relay(name, state, json_, quiet)


def _add_mode_commands(sub: typer.Typer, name: str) -> None:
    """``on``, ``off`` and ``auto``."""

    @sub.command(
        "on",
        short_help="Force ON by hand; every safety rule still applies.",
        epilog=examples(f"filamentctl {name} on", f"filamentctl {name} on --for 90m"),
    )
    def on(
        ctx: typer.Context,
        for_: str | None = typer.Option(None, "--for", metavar="DURATION", help=FOR_HELP),
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
        quiet: bool = quiet_option(),
    ) -> None:
        """Force ON (manual override); still switched off by every safety rule."""
        _set(ctx, name, "on", for_, json_, quiet)

    @sub.command(
        "off",
        short_help="Force OFF by hand.",
        epilog=examples(f"filamentctl {name} off", f"filamentctl {name} off --for 8h"),
    )
    def off(
        ctx: typer.Context,
        for_: str | None = typer.Option(None, "--for", metavar="DURATION", help=FOR_HELP),
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
        quiet: bool = quiet_option(),
    ) -> None:
        """Force OFF (manual override)."""
        _set(ctx, name, "off", for_, json_, quiet)

    @sub.command(
        "auto",
        short_help="Back to automatic control; re-evaluates at once.",
        epilog=examples(f"filamentctl {name} auto", f"filamentctl {name} auto --quiet"),
    )
    def auto(
        ctx: typer.Context,
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
        quiet: bool = quiet_option(),
    ) -> None:
        """Back to automatic control; re-evaluates at once."""
        _set(ctx, name, "auto", None, json_, quiet)


def _add_state_commands(sub: typer.Typer, name: str) -> None:
    """``status`` and ``reset``."""

    @sub.command(
        "status",
        short_help="Show on/off, pin level, mode, reason and thresholds.",
        epilog=examples(
            f"filamentctl {name} status", f"filamentctl {name} status --json | jq .reason"
        ),
    )
    def status(
        ctx: typer.Context,
        json_: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Show on/off, pin level, mode, reason, thresholds and override expiry."""
        show_relay_status(ctx_of(ctx).socket, name, json_)

    @sub.command(
        "reset",
        short_help="Clear a latched safety fault (once its cause is gone).",
        epilog=examples(f"filamentctl {name} reset"),
    )
    def reset(
        ctx: typer.Context,
        json_: bool = typer.Option(False, "--json", help="Print the new state as JSON."),
        quiet: bool = quiet_option(),
    ) -> None:
        """Clear a latched safety fault (refused while the cause is still present)."""
        state = call(ctx, f"{name}.reset")
        show_relay(name, state, json_, quiet)
