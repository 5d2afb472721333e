"""What the read-only commands do and print, free of Typer: ``status``, ``read``, ``heater
status`` and ``fan status``.

The Typer commands (:mod:`~filamentctl.cli.data`, :mod:`~filamentctl.cli.control`) and the fast
path of the entry point (:mod:`~filamentctl.cli.fast`) both run these functions, so a command
prints the same whichever way it was started. Nothing here imports Typer or Click.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filamentctl import display
from filamentctl.errors import ServiceNotRunning


def request(
    socket: Path | None,
    op: str,
    args: dict[str, Any] | None = None,
    timeout: float | None = 10.0,
    *,
    names: Mapping[str, str] | None = None,
) -> Any:
    """One request to the running service at ``socket`` (None: the usual places).

    Raises ServiceNotRunning (exit 3), PermissionDenied (4) or the service's error reply.
    ``names`` maps wire argument names to what the user typed (``{"for_s": "--for"}``): an
    error reply that quotes a wire name is shown with the user's name instead.
    """
    from filamentctl.client import Client, ServiceError

    try:
        with Client.connect(socket, timeout=timeout) as client:
            return client.call(op, args)
    except ServiceError as exc:
        if not names:
            raise
        message = str(exc)
        for wire, shown in names.items():
            message = message.replace(f"'{wire}'", shown).replace(f'"{wire}"', shown)
        if message == str(exc):
            raise
        raise ServiceError(exc.code, message) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# -- status -----------------------------------------------------------------------------------
def show_status(socket: Path | None, json_: bool) -> None:
    """``filamentctl status [--json]``: the service's whole state, once."""
    state = request(socket, "status", timeout=5.0)
    print_json(state) if json_ else sys.stdout.write(render_status(state))


def describe_reading(r: dict[str, Any]) -> str:
    """``21.3 °C (70.3 °F)  41.2 %RH  dew point 7.6 °C  abs 7.7 g/m³  1013.2 hPa``."""
    num = display.num
    text = (
        f"{num(r.get('temperature_c'), 1, ' °C')} ({num(r.get('temperature_f'), 1, ' °F')})"
        f"  {num(r.get('humidity'), 1, ' %RH')}"
        f"  dew point {num(r.get('dew_point_c'), 1, ' °C')}"
        f"  abs {num(r.get('absolute_humidity_g_m3'), 1, ' g/m³')}"
    )
    if r.get("pressure_hpa") is not None:
        text += f"  {num(r.get('pressure_hpa'), 1, ' hPa')}"
    return text


def render_status(s: dict[str, Any]) -> str:
    """Human-readable status (plain text, works over SSH and without colours)."""
    lines: list[str] = []
    r = s.get("reading") or {}
    sensor = s.get("sensor") or {}
    lines.append(
        f"filamentctl {s.get('version', '?')} — up {display.age(s.get('uptime_s'))}, "
        + display.plural(s.get("readings_total") or 0, "reading")
        + (" (simulated)" if s.get("simulated") else "")
    )
    if r:
        age = display.age(r.get("age_s"))
        lines.append(f"  reading   {describe_reading(r)}  — {age} old (#{r.get('seq')})")
    else:
        lines.append("  reading   none yet")
    err = f", last error: {sensor.get('last_error')}" if sensor.get("last_error") else ""
    lines.append(
        f"  sensor    {sensor.get('type', '?')}: {sensor.get('health', '?')}, "
        f"{sensor.get('errors', 0)} errors, {sensor.get('rejected', 0)} rejected{err}"
    )
    for name in ("heater", "fan"):
        lines.extend(_relay_lines(name, s.get(name)))
    lines.extend(_drying_lines(s.get("drying")))
    lines.extend(_storage_lines(s.get("storage") or {}))
    lines.extend(_notifications_lines(s.get("notifications") or {}))
    return "\n".join(lines) + "\n"


def _relay_lines(name: str, relay: dict[str, Any] | None) -> list[str]:
    if not relay:
        return []
    if not relay.get("enabled", True):
        return [f"  {name:<9} disabled"]
    state = "ON" if relay.get("on") else "off"
    until = f" until {relay['override_until']}" if relay.get("override_until") else ""
    lines = [
        f"  {name:<9} {state} [{relay.get('mode')}{until}] pin level "
        f"{relay.get('pin_level')} — {relay.get('reason', '')}"
    ]
    latched = display.latch(relay)
    if latched:
        lines.append(f"  {'':<9} {latched}; clear with 'filamentctl {name} reset'")
    return lines


def _drying_lines(drying: Any) -> list[str]:
    if not isinstance(drying, dict):
        return []
    expected = drying.get("expected") or {}
    target = display.num(drying.get("target_c"), 1, " °C")
    elapsed, most = display.age(drying.get("elapsed_s")), display.age(drying.get("max_s"))
    return [
        f"  drying    {drying.get('material')} at {target}, {elapsed} of {most}; expected to "
        f"end ({expected.get('reason', '?')}) by {display.iso_clock(expected.get('at'))}"
    ]


def _storage_lines(st: dict[str, Any]) -> list[str]:
    conn = "connected" if st.get("connected") else "not connected"
    if st.get("backend") == "none":
        conn = "local history only"
    lines = [
        f"  storage   {st.get('backend', '?')} ({conn}): backlog {st.get('backlog', 0)}"
        f" (oldest {display.age(st.get('oldest_unsent_age_s'))}), written {st.get('written', 0)},"
        f" dropped {st.get('dropped', 0)}, rejected {st.get('rejected', 0)},"
        f" dead-letter {st.get('dead_letter', 0)}"
    ]
    if st.get("last_error"):
        retry = st.get("next_retry_s")
        lines.append(
            f"            last error: {st['last_error']}"
            + (f" — retry in {display.age(retry)}" if retry else "")
        )
    alert = st.get("alert")
    if alert:
        lines.append(f"  ALERT     {alert.get('kind')}: {alert.get('message')}")
    return lines


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
            + (f" — retry in {display.age(retry)}" if retry is not None else "")
        )
    return out


# -- read -------------------------------------------------------------------------------------
def show_reading(socket: Path | None, json_: bool, direct: bool) -> None:
    """``filamentctl read [--json] [--direct]``: from the service, else (or with ``direct``)
    straight from the configured sensor."""
    reading: dict[str, Any] | None = None
    source = "service"
    if not direct:
        try:
            reading = request(socket, "read", timeout=5.0)
        except ServiceNotRunning:
            reading = None
    if reading is None:
        from filamentctl.service.direct import read_direct

        reading, source = read_direct(), "direct"
    if json_:
        print_json({**reading, "source": source})
        return
    sys.stdout.write(f"{describe_reading(reading)}  ({source}, {reading.get('time')})\n")


# -- heater status, fan status ----------------------------------------------------------------
def show_relay_status(socket: Path | None, name: str, json_: bool) -> None:
    """``filamentctl heater|fan status [--json]``."""
    show_relay(name, request(socket, "status", timeout=5.0).get(name), json_, False)


def show_relay(name: str, state: dict[str, Any] | None, json_: bool, quiet: bool) -> None:
    """A relay's state as the heater/fan commands print it (after a change, or for status)."""
    if json_:
        print_json(state)
        return
    if quiet:
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
