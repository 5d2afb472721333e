"""``filamentctl relays-off``: both relay pins OFF through GPIO, without the service."""

from __future__ import annotations

import sys

import typer

from filamentctl.cli.common import examples, print_json
from filamentctl.errors import EXIT_FAILED


def register(app: typer.Typer) -> None:
    app.command(
        "relays-off",
        short_help="Drive both relay pins OFF through GPIO, without the service.",
        epilog=examples(
            "filamentctl relays-off                      # as the service's user, service stopped",
            "filamentctl relays-off --json",
        ),
    )(relays_off)


def relays_off(
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Drive this box's relay pins to OFF directly through GPIO, without the service.

    For systemd's ExecStopPost= (after a crash, a kill or a hang) and for emergencies. Uses the
    pins the service recorded at its last start, else the configuration. Refuses nothing: no
    socket, no lock. Exits 1 if a pin could not be driven.
    """
    from filamentctl import paths as _paths
    from filamentctl.service.relays_off import relays_off as drive

    results, source = drive(_paths.resolve())
    if json_:
        print_json({"source": source, "relays": [r.to_dict() for r in results]})
    elif not results:
        sys.stderr.write(
            f"filamentctl: relays-off: no relay pins known ({source}); nothing to do\n"
        )
    for r in results if not json_ else ():
        polarity = "active-high" if r.active_high else "active-low"
        if r.error is None:
            state = "OFF" if r.off else "NOT OFF"
            print(f"{r.relay}: GPIO {r.gpio_pin} level {r.level} ({state}, {polarity})")
        else:
            sys.stderr.write(
                f"filamentctl: relays-off: cannot drive the {r.relay} relay on GPIO "
                f"{r.gpio_pin}: {r.error}\n"
            )
    if any(not r.off for r in results):
        raise typer.Exit(EXIT_FAILED)
