"""``filamentctl sim set|clear``: drive a simulated service's sensor (demos, tests, training)."""

from __future__ import annotations

import math
from enum import StrEnum

import typer

from filamentctl.cli.common import call, examples, print_json, quiet_option, say
from filamentctl.errors import UsageError


class Fault(StrEnum):
    """What the simulated sensor can be made to do wrong (stale: no new data; error: reads
    fail; nan: not-a-number values; spike: every second reading jumps)."""

    stale = "stale"
    error = "error"
    nan = "nan"
    spike = "spike"


app = typer.Typer(
    help="Pin the simulated sensor to values or inject a fault (simulated service only).",
    short_help="Drive a simulated box: pin its readings or inject a sensor fault.",
    epilog=examples(
        "filamentctl sim set --temperature 17 --humidity 60",
        "filamentctl sim set --fault stale",
        "filamentctl sim clear",
    ),
    no_args_is_help=True,
)


@app.command(
    "set",
    short_help="Pin the simulated readings and/or inject a fault.",
    epilog=examples(
        "filamentctl sim set --temperature 17              # the heater should come on",
        "filamentctl sim set --humidity 60                 # and the fan",
        "filamentctl sim set --fault stale                 # watch the safety rules act",
    ),
)
def set_(
    ctx: typer.Context,
    temperature: float | None = typer.Option(
        None, "--temperature", "-t", metavar="CELSIUS", help="Pin the temperature (°C)."
    ),
    humidity: float | None = typer.Option(
        None, "--humidity", "-u", metavar="PERCENT", help="Pin the relative humidity (%)."
    ),
    fault: Fault | None = typer.Option(
        None,
        "--fault",
        help="Inject a fault: no new data (stale), failing reads (error), not-a-number "
        "values (nan), or every second reading jumping (spike).",
    ),
    json_: bool = typer.Option(False, "--json", help="Print the simulator state as JSON."),
    quiet: bool = quiet_option(),
) -> None:
    """Pin the simulated sensor's values and/or inject a fault until 'sim clear'."""
    if temperature is None and humidity is None and fault is None:
        raise UsageError("nothing to set: give --temperature, --humidity and/or --fault")
    for name, value in (("--temperature", temperature), ("--humidity", humidity)):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"invalid {name} {value}: give a finite number")
    args = {
        k: v
        for k, v in (
            ("temperature", temperature),
            ("humidity", humidity),
            ("fault", fault.value if fault is not None else None),
        )
        if v is not None
    }
    state = call(
        ctx, "sim.set", args, names={"temperature": "--temperature", "humidity": "--humidity"}
    )
    print_json(state) if json_ else say(quiet, f"simulator: {_describe(state)}")


@app.command(
    short_help="Remove pinned values and faults: the box runs free again.",
    epilog=examples("filamentctl sim clear"),
)
def clear(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="Print the simulator state as JSON."),
    quiet: bool = quiet_option(),
) -> None:
    """Remove pinned values and faults: the simulated box runs free again."""
    state = call(ctx, "sim.clear")
    print_json(state) if json_ else say(quiet, f"simulator: {_describe(state)}")


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
