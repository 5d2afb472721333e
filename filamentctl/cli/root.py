"""The root of the ``filamentctl`` Typer app: its options and the command tree.

:func:`build_app` makes the root app with every command group, or with only the group the command
line names (what :func:`filamentctl.cli.main.main` runs). Importing this module imports Typer;
the entry point imports it only when its fast path (:mod:`filamentctl.cli.fast`) does not answer.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from filamentctl import __version__
from filamentctl.cli import common
from filamentctl.cli.fast import apply_root_options
from filamentctl.cli.groups import GROUPS

HELP = (
    "Keep 3D-printer filament dry: sample the box, keep its history, deliver it to your "
    "database, drive the heater and fan. Talks to the running service over a Unix socket."
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"filamentctl {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    socket: Path | None = typer.Option(
        None,
        "--socket",
        envvar="FILAMENTCTL_SOCKET",
        metavar="PATH",
        help="Service socket to talk to (default: your own service's, then the system service's).",
    ),
    box: str | None = typer.Option(
        None,
        "--box",
        envvar="FILAMENTCTL_BOX",
        metavar="NAME",
        help="Which box on this machine (its own configuration, history and socket; "
        "default: the box named 'default'). See 'filamentctl boxes'.",
    ),
    system: bool = typer.Option(
        False,
        "--system",
        help="Act on the system service (filamentctl.service, or filamentctl@BOX with --box): "
        "its socket and its files in /etc/filamentctl and /var/lib/filamentctl.",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    apply_root_options(box, system)
    ctx.obj = common.CliContext(socket=socket, debug=debug)


EXAMPLES = common.examples(
    "filamentctl demo                      # try it all on a simulated box",
    "filamentctl status",
    "filamentctl status --json | jq .reading.humidity",
    "filamentctl heater on --for 2h",
    "filamentctl config set heater.min_temp_c 45 heater.max_temp_c 50",
)


def build_app(only: str | None = None) -> typer.Typer:
    """The root app with every command group, or only the group named ``only``."""
    app = typer.Typer(
        name="filamentctl",
        help=HELP,
        epilog=EXAMPLES,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Plain Click help: Typer's boxed rich help costs ~80 ms of imports on every --help.
        rich_markup_mode=None,
        # The static scripts in completions/ are the one completion mechanism (no Python start
        # per TAB press); Typer's --install-completion would be a second, competing one.
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    done: set[str] = set()
    for name, (module_name, how) in GROUPS.items():
        if (only is not None and name != only) or module_name in done:
            continue
        done.add(module_name)
        module = importlib.import_module(f"filamentctl.cli.{module_name}")
        if how == "register":
            module.register(app)
        else:
            app.add_typer(getattr(module, how), name=name)
    return app
