"""``filamentctl mqtt``: the Home Assistant gateway in the foreground (its unit runs exactly this).

The gateway lives in :mod:`filamentctl.gateways.mqtt`; this command sets up logging and signals,
runs it, and maps its fatal errors to exit codes (2: the ``mqtt.*`` settings are invalid or the
gateway is disabled; 4: the service will not hand this user the settings).
"""

from __future__ import annotations

from pathlib import Path

import typer

from filamentctl.cli.common import ctx_of, examples
from filamentctl.cli.service_cmds import LogFormat

HELP = """Run the Home Assistant MQTT gateway in the foreground (its unit runs this).

The box appears in Home Assistant by itself (MQTT discovery): readings, heater and fan,
their modes and the safety fault. The gateway is a client of the running service: it gets
the mqtt.* settings from it, and every command from Home Assistant goes through the same
safety rules as `filamentctl heater`. It keeps running while the service or the broker is
away and reconnects to both.
"""
EXAMPLES = examples(
    "filamentctl mqtt                              # or: sudo filamentctl service install",
    "filamentctl mqtt --log-format json",
    "filamentctl mqtt --remove-discovery           # remove the box from Home Assistant",
)


def register(app: typer.Typer) -> None:
    app.command(
        "mqtt",
        help=HELP,
        short_help="Run the Home Assistant MQTT gateway (the box appears in Home Assistant).",
        epilog=EXAMPLES,
    )(mqtt)


def mqtt(
    ctx: typer.Context,
    remove_discovery: bool = typer.Option(
        False,
        "--remove-discovery",
        help="Clear the box's retained discovery, state and availability messages and exit.",
    ),
    debug: bool = typer.Option(False, "--debug", help="Debug logging (never secrets)."),
    log_format: LogFormat = typer.Option(LogFormat.text, "--log-format", help="Log line format."),
) -> None:
    socket = ctx_of(ctx).socket
    if remove_discovery:
        from filamentctl.gateways.mqtt.gateway import remove_discovery as remove

        cleared = remove(socket)
        typer.echo(f"cleared {len(cleared)} retained messages; the box is gone from Home Assistant")
        return
    _run(socket, debug or ctx_of(ctx).debug, log_format)


def _run(socket: Path | None, debug: bool, log_format: str) -> None:
    import signal

    from filamentctl.gateways.mqtt.gateway import MqttGateway
    from filamentctl.service.logs import setup

    setup("debug" if debug else "info", log_format, debug)
    gateway = MqttGateway(socket_path=socket)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: gateway.stop())
    signal.signal(signal.SIGINT, lambda _sig, _frame: gateway.stop())
    signal.signal(signal.SIGHUP, lambda _sig, _frame: gateway.reload())
    gateway.run()
