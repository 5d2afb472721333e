"""``filamentctl sim set|clear``: drive a simulated service's sensor (demos, tests, training)."""

from __future__ import annotations

import math

import typer

from filamentctl.cli.common import call, print_json
from filamentctl.errors import UsageError

FAULTS = ("stale", "error", "nan", "spike")

app = typer.Typer(
    help="Pin the simulated sensor to values or inject a fault (simulated service only).",
    no_args_is_help=True,
)


@app.command("set")
def set_(
    ctx: typer.Context,
    temperature: float | None = typer.Option(
        None, "--temperature", "-t", help="Pin the temperature (°C)."
    ),
    humidity: float | None = typer.Option(
        None, "--humidity", "-u", help="Pin the relative humidity (%)."
    ),
    fault: str | None = typer.Option(
        None, "--fault", help="Inject a fault: stale, error, nan or spike."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the simulator state as JSON."),
) -> None:
    """Pin the simulated sensor's values and/or inject a fault until 'sim clear'."""
    if temperature is None and humidity is None and fault is None:
        raise UsageError("nothing to set: give --temperature, --humidity and/or --fault")
    for name, value in (("--temperature", temperature), ("--humidity", humidity)):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"invalid {name} {value}: give a finite number")
    if fault is not None and fault not in FAULTS:
        raise UsageError(f"invalid --fault {fault!r}: use one of {', '.join(FAULTS)}")
    args = {
        k: v
        for k, v in (("temperature", temperature), ("humidity", humidity), ("fault", fault))
        if v is not None
    }
    state = call(ctx, "sim.set", args)
    print_json(state) if json_ else typer.echo(f"simulator: {_describe(state)}")


@app.command()
def clear(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="Print the simulator state as JSON."),
) -> None:
    """Remove pinned values and faults: the simulated box runs free again."""
    state = call(ctx, "sim.clear")
    print_json(state) if json_ else typer.echo(f"simulator: {_describe(state)}")


def _describe(state: dict[str, object]) -> str:
    parts = []
    pinned = state.get("pinned")
    pinned = pinned if isinstance(pinned, dict) else {}
    if pinned.get("temperature_c") is not None:
        parts.append(f"temperature pinned at {pinned['temperature_c']} °C")
    if pinned.get("humidity") is not None:
        parts.append(f"humidity pinned at {pinned['humidity']} %")
    if state.get("fault"):
        parts.append(f"fault '{state['fault']}'")
    return ", ".join(parts) or "running free"
