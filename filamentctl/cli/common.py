"""What every command shares: the typed context, JSON/text output, errors and the client call."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from filamentctl import display
from filamentctl.errors import UsageError


@dataclass(slots=True)
class Ctx:
    socket: Path | None = None
    debug: bool = False


def ctx_of(ctx: typer.Context) -> Ctx:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Ctx) else Ctx()


def call(
    ctx: typer.Context, op: str, args: dict[str, Any] | None = None, timeout: float | None = 10.0
) -> Any:
    """One request to the running service (raises ServiceNotRunning → exit 3)."""
    from filamentctl.client import Client

    with Client.connect(ctx_of(ctx).socket, timeout=timeout) as client:
        return client.call(op, args)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt_num(value: Any, unit: str = "", digits: int = 1) -> str:
    """``21.3 °C``; "—" for a missing or non-finite value (see :func:`display.num`)."""
    return display.num(value, digits, unit)


fmt_age = display.age


def parse_since(text: str) -> float:
    """``24h``, ``90m``, ``7d`` → seconds (usage error otherwise)."""
    from filamentctl.core.duration import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"invalid duration {text!r}: {exc}") from None


def describe_reading(r: dict[str, Any]) -> str:
    """``21.3 °C (70.3 °F)  41.2 %RH  dew point 7.6 °C  abs 7.7 g/m³  1013.2 hPa``."""
    text = (
        f"{fmt_num(r.get('temperature_c'), ' °C')} ({fmt_num(r.get('temperature_f'), ' °F')})"
        f"  {fmt_num(r.get('humidity'), ' %RH')}"
        f"  dew point {fmt_num(r.get('dew_point_c'), ' °C')}"
        f"  abs {fmt_num(r.get('absolute_humidity_g_m3'), ' g/m³')}"
    )
    if r.get("pressure_hpa") is not None:
        text += f"  {fmt_num(r.get('pressure_hpa'), ' hPa')}"
    return text
