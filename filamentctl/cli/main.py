"""The ``filamentctl`` command: a thin Typer app. Commands import what they need when they run.

Importing this module must stay cheap (typer + stdlib + small filamentctl modules): a test
checks that textual, influxdb_client, psycopg, hvac and the hardware libraries are not loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from filamentctl import __version__
from filamentctl.cli import common, config, control, data, service_cmds, service_unit, sim
from filamentctl.errors import EXIT_FAILED, UserError

app = typer.Typer(
    name="filamentctl",
    help="Keep 3D-printer filament dry: sample the box, keep its history, deliver it to your "
    "database, drive the heater and fan. Talks to the running service over a Unix socket.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"filamentctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    socket: Path | None = typer.Option(
        None,
        "--socket",
        envvar="FILAMENTCTL_SOCKET",
        help="Service socket to talk to (default: your own service's, then the system service's).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = common.Ctx(socket=socket, debug=debug)


service_cmds.register(app)
data.register(app)
control.register(app)
app.add_typer(sim.app, name="sim")
app.add_typer(config.app, name="config")
app.add_typer(service_unit.app, name="service")


def main() -> None:
    """Entry point: run the app; turn user errors into one line on stderr and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except UserError as exc:
        if debug:
            raise
        sys.stderr.write(f"filamentctl: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("filamentctl: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_FAILED)
