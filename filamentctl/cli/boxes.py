"""``filamentctl boxes``: the boxes on this machine, one line of status each."""

from __future__ import annotations

import sys
from typing import Any

import typer

from filamentctl import display
from filamentctl.cli.common import examples, print_json

PROBE_TIMEOUT_S = 2.0


def register(app: typer.Typer) -> None:
    app.command(
        "boxes",
        short_help="List the boxes on this machine, one line of status each.",
        epilog=examples(
            "filamentctl boxes",
            "filamentctl boxes --json | jq -r '.[] | select(.running) | .box'",
        ),
    )(boxes)


def boxes(
    json_: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the boxes on this machine with a one-line status each.

    A box is one dry box with its own configuration, history and service (select one with
    --box NAME or FILAMENTCTL_BOX). Lists your own boxes and the system service's
    (filamentctl@NAME instances), or those under FILAMENTCTL_HOME when it is set.
    """
    from filamentctl import paths as _paths

    found = [probe(b) for b in _paths.known_boxes()]
    if json_:
        print_json(found)
        return
    if not found:
        sys.stdout.write(
            "no boxes on this machine yet: 'filamentctl config init' creates one "
            "(--box NAME for a named one)\n"
        )
        return
    width = max(len(b["box"]) for b in found)
    for b in found:
        sys.stdout.write(f"{b['box']:<{width}}  {b['scope']:<6}  {b['summary']}\n")


def probe(location: Any) -> dict[str, Any]:
    """A box's entry: where it is, and its service's state if one answers."""
    from filamentctl.client import Client
    from filamentctl.errors import PermissionDenied, UserError

    sock = location.paths.socket
    entry: dict[str, Any] = {
        "box": location.name,
        "scope": location.scope,
        "config": str(location.paths.config_db),
        "socket": str(sock),
        "running": False,
        "error": None,
        "status": None,
    }
    try:
        with Client.connect(sock, timeout=PROBE_TIMEOUT_S) as client:
            status = client.call("status")
    except PermissionDenied as exc:
        entry.update(error=str(exc), summary="service running, no permission (see the group)")
        return entry
    except UserError as exc:
        quiet = "no filamentctl" in str(exc)  # simply not running: no error to show
        entry.update(summary="not running", error=None if quiet else str(exc))
        return entry
    entry.update(running=True, status=summary_of(status), summary=describe(status))
    return entry


def summary_of(status: dict[str, Any]) -> dict[str, Any]:
    reading = status.get("reading") or {}
    heater = status.get("heater") or {}
    fan = status.get("fan") or {}
    return {
        "temperature_c": reading.get("temperature_c"),
        "humidity": reading.get("humidity"),
        "age_s": reading.get("age_s"),
        "heater_on": heater.get("on"),
        "heater_mode": heater.get("mode"),
        "heater_latched": heater.get("latched"),
        "fan_on": fan.get("on"),
        "sensor_health": (status.get("sensor") or {}).get("health"),
        "backlog": (status.get("storage") or {}).get("backlog"),
    }


def describe(status: dict[str, Any]) -> str:
    s = summary_of(status)
    heater = "ON" if s["heater_on"] else "off"
    fault = f", heater LATCHED: {s['heater_latched']}" if s["heater_latched"] else ""
    return (
        f"running: {display.num(s['temperature_c'], 1, ' °C')} "
        f"{display.num(s['humidity'], 1, ' %RH')}, heater {heater} ({s['heater_mode']}), "
        f"fan {'ON' if s['fan_on'] else 'off'}, sensor {s['sensor_health']}{fault}"
    )
