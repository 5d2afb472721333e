"""The ``filamentctl`` entry point: answer the command line, turn every error into one line.

Start-up time matters (scripts call ``status --json`` in loops, a Pi Zero is ~10x slower than a
laptop), so :func:`main` takes the cheapest way that gives the same answer:

1. the fast path (:mod:`filamentctl.cli.fast`): ``status``, ``read``, ``heater|fan status``,
   ``web`` and the root ``--help`` without importing Typer or Click;
2. else the Typer app (:mod:`filamentctl.cli.root`) with only the command group the command line
   names, so neither the other modules nor Typer's conversion of the other 30-odd commands are
   paid for;
3. the whole app for the root ``--help`` on a narrow terminal, shell completion and anything
   unrecognised.

Importing this module imports neither Typer nor any command module (a test checks that importing
it loads none of textual, influxdb_client, psycopg, hvac, sqlcipher3, gpiozero or Blinka).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from filamentctl.cli.groups import GROUPS
from filamentctl.errors import EXIT_FAILED, EXIT_USAGE, UserError

# Root options that take a value (so their value is not mistaken for a command name).
_VALUE_OPTIONS = ("--socket", "--box")


def command_name(argv: Sequence[str]) -> str | None:
    """The command group the arguments name, or None when the full app is needed.

    ``--help`` after the group's name is that group's help, which needs no other group; before
    it, the root's help lists them all.
    """
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
    # ``filamentctl.cli.main.app``: the full app, built on first use (docs, completion, tests);
    # ``build_app`` and ``root`` live in filamentctl.cli.root, which imports Typer.
    if name == "app":
        from filamentctl.cli.root import build_app

        return build_app()
    if name in ("build_app", "root"):
        from filamentctl.cli import root

        return getattr(root, name)
    raise AttributeError(name)


def _click_exceptions() -> ModuleType:
    try:
        from typer._click import exceptions  # Typer >= 0.26 ships its own copy of Click
    except ImportError:  # pragma: no cover - older Typer uses Click itself
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


class _Caught:
    """Click's exception kinds :func:`main` reports; empty (matching nothing) on the fast path,
    which never loads Click. (A plain class: dataclasses would cost the fast path an import.)"""

    def __init__(self, click: ModuleType | None = None) -> None:
        self.no_args: tuple[type[Any], ...] = ()
        self.usage: tuple[type[Any], ...] = ()
        self.other: tuple[type[Any], ...] = ()
        self.aborts: tuple[type[Any], ...] = ()
        if click is None:
            return
        import typer

        self.no_args = (click.NoArgsIsHelpError,)
        self.usage = (click.UsageError,)
        self.other = (click.ClickException,)
        # Typer >= 0.26 vendors Click without its Abort (typer.Abort is raised instead); older
        # Typer raises Click's. Naming a missing attribute in an except clause would turn every
        # error that reaches it (a broken pipe, Ctrl+C, an internal error) into a traceback.
        self.aborts = (getattr(click, "Abort", typer.Abort), typer.Abort)


def usage_line(exc: Exception) -> str:
    """A Click usage error as one line: ``no such option: -1 (see 'filamentctl X --help')``."""
    message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
    message = message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{message.rstrip('.')}{hint}"


def main(argv: Sequence[str] | None = None, *, fast: bool = True) -> None:
    """Entry point: run the command line; turn user errors into one line on stderr and an exit
    code (always exits). ``argv`` defaults to ``sys.argv[1:]``; ``fast=False`` skips the fast
    path (tests compare the two).

    Every error, ours or a usage error found by Click, is ``filamentctl: …`` on one line.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    quick = None
    if fast:
        from filamentctl.cli.fast import recognise

        quick = recognise(argv)
    caught = _Caught() if quick is not None else _Caught(_click_exceptions())
    try:
        if quick is not None:
            code: Any = quick()
        else:
            from filamentctl.cli.root import build_app

            code = build_app(command_name(argv))(
                args=argv, prog_name="filamentctl", standalone_mode=False
            )
    except UserError as exc:
        if debug:
            raise
        sys.stderr.write(f"filamentctl: {exc}\n")
        sys.exit(exc.exit_code)
    except caught.no_args as exc:  # a bare group: its help on stderr, as Click does
        exc.show()
        sys.exit(EXIT_USAGE)
    except caught.usage as exc:
        sys.stderr.write(f"filamentctl: {usage_line(exc)}\n")
        sys.exit(EXIT_USAGE)
    except caught.other as exc:  # e.g. a file Click could not open
        sys.stderr.write(f"filamentctl: {' '.join(exc.format_message().split())}\n")
        sys.exit(exc.exit_code)
    except caught.aborts:  # Ctrl+C or end of input at a prompt
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
