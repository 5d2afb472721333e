"""The ``filamentctl`` command: a thin Typer app. Commands import what they need when they run.

Start-up time matters (scripts call ``status --json`` in loops, a Pi Zero is ~10x slower than a
laptop): :func:`main` builds only the command group the command line names, so neither its
modules nor Typer's conversion of the other 30-odd commands are paid for. ``--help``, shell
completion and anything unrecognised get the full app. A test checks that importing this module
loads none of textual, influxdb_client, psycopg, hvac, sqlcipher3, gpiozero or Adafruit/Blinka.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from filamentctl import __version__
from filamentctl.cli import common
from filamentctl.errors import EXIT_FAILED, EXIT_USAGE, UserError

HELP = (
    "Keep 3D-printer filament dry: sample the box, keep its history, deliver it to your "
    "database, drive the heater and fan. Talks to the running service over a Unix socket."
)

# Command group -> (module under filamentctl.cli, how it joins the root app), in --help order.
# "register" modules add their commands with register(app); the others are Typer sub-apps.
GROUPS: dict[str, tuple[str, str]] = {
    "run": ("service_cmds", "register"),
    "demo": ("service_cmds", "register"),
    "status": ("data", "register"),
    "read": ("data", "register"),
    "flush": ("data", "register"),
    "history": ("data", "register"),
    "heater": ("control", "register"),
    "fan": ("control", "register"),
    "dry": ("dry", "app"),
    "tui": ("tui", "register"),
    "web": ("web", "register"),
    "mqtt": ("mqtt", "register"),
    "sim": ("sim", "app"),
    "config": ("config", "app"),
    "notify": ("notify", "app"),
    "service": ("service_unit", "app"),
    "relays-off": ("relays", "register"),
    "boxes": ("boxes", "register"),
}
# Root options that take a value (so their value is not mistaken for a command name).
_VALUE_OPTIONS = ("--socket", "--box")


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
    if box is not None:
        from filamentctl.errors import UsageError
        from filamentctl.paths import BOX_ENV, check_box_name

        try:
            check_box_name(box)
        except ValueError as exc:
            raise UsageError(f"--box: {exc}") from None
        # Every command finds its files through the environment: so do its child processes.
        os.environ[BOX_ENV] = box
    if system:
        from filamentctl.paths import box_name, use_system_paths

        use_system_paths(os.environ, box_name())
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


def command_name(argv: Sequence[str]) -> str | None:
    """The command group the arguments name, or None when the full app is needed."""
    if any(key.endswith("_COMPLETE") for key in os.environ):  # shell completion
        return None
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            return None
        if arg in _VALUE_OPTIONS:
            next(args, None)
            continue
        if arg.startswith("-"):
            continue
        return arg if arg in GROUPS else None
    return None


def __getattr__(name: str) -> Any:
    # ``filamentctl.cli.main.app``: the full app, built on first use (docs, completion, tests).
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _click_exceptions() -> ModuleType:
    try:
        from typer._click import exceptions  # Typer >= 0.26 ships its own copy of Click
    except ImportError:  # pragma: no cover - older Typer uses Click itself
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def usage_line(exc: Exception) -> str:
    """A Click usage error as one line: ``no such option: -1 (see 'filamentctl X --help')``."""
    message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
    message = message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{message.rstrip('.')}{hint}"


def main() -> None:
    """Entry point: run the app; turn user errors into one line on stderr and an exit code.

    Every error, ours or a usage error found by Click, is ``filamentctl: …`` on one line.
    """
    argv = sys.argv[1:]
    debug = "--debug" in argv
    click = _click_exceptions()
    # Typer >= 0.26 vendors Click without its Abort (typer.Abort is raised instead); older Typer
    # raises Click's. Naming a missing attribute in an except clause would turn every error that
    # reaches it (a broken pipe, Ctrl+C, an internal error) into a traceback.
    aborts = (getattr(click, "Abort", typer.Abort), typer.Abort)
    try:
        code = build_app(command_name(argv))(prog_name="filamentctl", standalone_mode=False)
    except UserError as exc:
        if debug:
            raise
        sys.stderr.write(f"filamentctl: {exc}\n")
        sys.exit(exc.exit_code)
    except click.NoArgsIsHelpError as exc:  # a bare group: its help on stderr, as Click does
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        sys.stderr.write(f"filamentctl: {usage_line(exc)}\n")
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:  # e.g. a file Click could not open
        sys.stderr.write(f"filamentctl: {' '.join(exc.format_message().split())}\n")
        sys.exit(exc.exit_code)
    except aborts:  # Ctrl+C or end of input at a prompt
        sys.stderr.write("\nfilamentctl: aborted; nothing changed\n")
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.stderr.write("filamentctl: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_FAILED)
    except Exception as exc:  # a bug: still one line, the traceback only with --debug
        if debug:
            raise
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        sys.stderr.write(
            f"filamentctl: internal error: {type(exc).__name__}: {first} "
            "(run again with --debug for the traceback, and please report it)\n"
        )
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
