"""The entry point's fast path: the commonest command lines answered without Typer or Click.

Scripts call ``filamentctl status --json`` in loops and a Raspberry Pi Zero starts Python ~10x
slower than a laptop; importing Typer and building even one command group costs more than the
request itself. :func:`recognise` takes these command lines, after any of the root options
``--socket PATH``, ``--box NAME``, ``--system`` and ``--debug``:

- ``status [--json]``, ``read [--json] [--direct]``, ``heater status [--json]``,
  ``fan status [--json]``: run through :mod:`filamentctl.cli.readouts`, the functions the Typer
  commands run too;
- ``web [--listen ADDRESS]``: the web gateway, a long-running process whose resident memory
  Typer would add to (~2 MB of a 40 MB budget); it runs what the Typer command runs;
- ``--help`` / ``-h`` alone, on a terminal at least 80 columns wide (or not a terminal): the root
  help Click renders at that width, generated into :mod:`filamentctl.cli.help_text` by
  ``scripts/gen_docs.py`` (a test fails when it drifts).

Anything else — another option, a value Click would refuse, ``--help`` anywhere else, a narrow
terminal, shell completion — is not recognised, and the entry point builds the Typer app as
before; so every help text and usage error still comes from Click alone. A test runs the same
command lines both ways and compares stdout, stderr and exit codes byte for byte.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from filamentctl.errors import UsageError

SOCKET_ENV = "FILAMENTCTL_SOCKET"
BOX_ENV = "FILAMENTCTL_BOX"
# The width Click wraps help to is min(terminal columns, 80) - 2; the stored text is that at 80.
HELP_COLUMNS = 80
_JSON = "--json"


def apply_root_options(box: str | None, system: bool) -> None:
    """What ``--box`` and ``--system`` do, for the Typer root and the fast path alike.

    Every command finds its files through the environment (so do its child processes): the box
    goes into ``FILAMENTCTL_BOX``, ``--system`` points the directories at the system service's.
    Raises UsageError for a malformed box name.
    """
    if box is not None:
        from filamentctl.paths import check_box_name

        try:
            check_box_name(box)
        except ValueError as exc:
            raise UsageError(f"--box: {exc}") from None
        os.environ[BOX_ENV] = box
    if system:
        from filamentctl.paths import box_name, use_system_paths

        use_system_paths(os.environ, box_name())


def recognise(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> Callable[[], int | None] | None:
    """What to run for ``argv`` without Typer, or None when the full app must answer.

    Pure: looks at the arguments and the environment, changes nothing. The returned function
    raises what the command raises (UserError and its kinds; the entry point reports them) and
    returns the exit code (None: 0).
    """
    env = os.environ if environ is None else environ
    if any(key.endswith("_COMPLETE") for key in env):  # shell completion is Click's
        return None
    args = list(argv)
    if args in (["--help"], ["-h"]):
        import shutil  # the way Click measures the terminal

        return _root_help if shutil.get_terminal_size().columns >= HELP_COLUMNS else None
    parsed = _root_options(args)
    if parsed is None:
        return None
    values, rest = parsed
    socket = values.get("--socket") or env.get(SOCKET_ENV) or None
    box = values.get("--box") or env.get(BOX_ENV) or None
    system = "--system" in values
    if not _plain_socket(socket) or not _good_box(box):
        return None
    path = Path(socket) if socket is not None else None
    command = _command(rest, debug="--debug" in values)
    if command is None:
        return None

    def run() -> int | None:
        apply_root_options(box, system)
        return command(path)

    return run


def _root_options(args: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The root options before the command (each at most once) and what follows them; None
    for anything Click alone should judge."""
    values: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        if name in values:
            return None
        if name in ("--system", "--debug") and not eq:
            values[name] = ""
            i += 1
        elif name in ("--socket", "--box"):
            if not eq:
                if i + 1 >= len(args):
                    return None
                value = args[i + 1]
                i += 1
            if not value or value.startswith("-"):
                return None
            values[name] = value
            i += 1
        else:
            return None
    return values, args[i:]


def _plain_socket(socket: str | None) -> bool:
    """Whether Click's path check would pass ``socket`` as it is: an existing path must be
    readable (Click refuses it otherwise, with its own message)."""
    if socket is None:
        return True
    try:
        os.stat(socket)
    except OSError:
        return True
    return os.access(socket, os.R_OK)


def _good_box(box: str | None) -> bool:
    if box is None:
        return True
    from filamentctl.paths import check_box_name

    try:
        check_box_name(box)
    except ValueError:
        return False  # the full app says why, in Click's words
    return True


def _command(rest: list[str], *, debug: bool) -> Callable[[Path | None], int | None] | None:
    """The command ``rest`` names, with its flags; None for anything else."""
    from filamentctl.cli import readouts

    if not rest:
        return None
    if rest[0] == "web":
        plain, listen = _listen(rest[1:])
        if not plain:
            return None
        return lambda socket: _web(listen, socket, debug)
    if rest[0] == "status" and _only(rest[1:], _JSON):
        json_ = _JSON in rest
        return lambda socket: readouts.show_status(socket, json_)
    if rest[0] == "read" and _only(rest[1:], _JSON, "--direct"):
        json_, direct = _JSON in rest, "--direct" in rest
        return lambda socket: readouts.show_reading(socket, json_, direct)
    if rest[0] in ("heater", "fan") and rest[1:2] == ["status"] and _only(rest[2:], _JSON):
        name, json_ = rest[0], _JSON in rest
        return lambda socket: readouts.show_relay_status(socket, name, json_)
    return None


def _listen(args: list[str]) -> tuple[bool, str | None]:
    """(whether ``web``'s arguments are plain, the ``--listen`` value or None). Not plain:
    anything Click should judge (another option, a missing or empty value, a repeat)."""
    if not args:
        return True, None
    if len(args) == 1 and args[0].startswith("--listen="):
        value = args[0].removeprefix("--listen=")
    elif len(args) == 2 and args[0] == "--listen":
        value = args[1]
    else:
        return False, None
    return (True, value) if value and not value.startswith("-") else (False, None)


def _web(listen: str | None, socket: Path | None, debug: bool) -> int:
    """What ``filamentctl web`` runs (see :func:`filamentctl.cli.web.web`)."""
    from filamentctl.gateways.web.main import run
    from filamentctl.service import logs

    logs.setup("info", "text", debug)
    return run(listen, socket, debug)


def _only(flags: list[str], *allowed: str) -> bool:
    """Each of ``flags`` is one of ``allowed`` (a flag repeated is still that flag to Click)."""
    return all(flag in allowed for flag in flags)


def _root_help() -> None:
    from filamentctl.cli.help_text import ROOT_HELP

    sys.stdout.write(ROOT_HELP)
