"""What every command shares: the typed context, JSON/text output, errors and the client call.

Conventions every command follows (``tests/cli/test_help_conventions.py`` checks them on every
command, including ones added later):

- ``short_help=`` is set, so group listings never cut a summary with ``...``;
- ``epilog=examples(...)`` gives the command's ``--help`` an Examples section (real command
  lines, which the test parses against the CLI);
- an option with a fixed set of values is an ``Enum`` (a Click choice: shown in help, checked,
  completed); every other value-taking option or argument has a metavar such as ``DURATION``,
  ``SECONDS`` or ``KEY``;
- a command with a required argument uses ``cls=Command`` (usage ``KEY``, not Typer's ``{KEY}``);
- a configuration key argument uses ``parser=config_key`` (``config_pairs`` for ``KEY VALUE``
  pairs) so that the generated shell completions offer the schema's keys.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.core

# The read-only commands' output lives in readouts (free of Typer, for the fast path); these
# names stay importable from here for every other command.
from filamentctl.cli.readouts import describe_reading as describe_reading
from filamentctl.cli.readouts import print_json as print_json
from filamentctl.cli.readouts import request
from filamentctl.errors import UsageError


@dataclass(slots=True)
class CliContext:
    """The root options every command may need: the service socket (``--socket``) and
    ``--debug``. The root callback stores it as the Click context's ``obj``."""

    socket: Path | None = None
    debug: bool = False


def ctx_of(ctx: typer.Context) -> CliContext:
    """The root's :class:`CliContext` (defaults when a sub-app runs on its own, as in tests)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliContext) else CliContext()


def call(
    ctx: typer.Context,
    op: str,
    args: dict[str, Any] | None = None,
    timeout: float | None = 10.0,
    *,
    names: Mapping[str, str] | None = None,
) -> Any:
    """One request to the running service (raises ServiceNotRunning → exit 3); see
    :func:`filamentctl.cli.readouts.request` (``names``: wire argument → what the user typed)."""
    return request(ctx_of(ctx).socket, op, args, timeout, names=names)


def print_error(message: str) -> None:
    """One error line on stderr in the CLI's style: ``filamentctl: what failed: why; what to do``.

    For commands that report an error themselves and go on (most raise a UserError instead, which
    the entry point prints the same way).
    """
    sys.stderr.write(f"filamentctl: {message}\n")


def parse_duration_option(option: str, text: str) -> float:
    """``24h``, ``90m``, ``7d`` → seconds; a usage error naming ``option`` otherwise.

    The message is ``invalid --since 'banana': use e.g. 90s, 15m, …`` (the value once).
    """
    from filamentctl.core.duration import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        reason = str(exc)
        quoted = f"invalid duration {text!r}"
        if reason.startswith(quoted):
            reason = reason[len(quoted) :].lstrip(":; ")
        raise UsageError(f"invalid {option} {text!r}: {reason}") from None


def parse_since(text: str) -> float:
    """``--since`` as seconds (usage error otherwise)."""
    return parse_duration_option("--since", text)


# -- help conventions ----------------------------------------------------------------------------

EXAMPLES_HEADING = "Examples:"


def examples(*lines: str) -> str:
    """An ``epilog`` for ``--help``: an Examples section, one command line per entry.

    An entry may end with ``  # comment``. Click's ``\\b`` marker keeps the lines as written.
    """
    if not lines:
        raise ValueError("give at least one example")
    return "\n".join([EXAMPLES_HEADING, "", "\b", *(f"  {line}" for line in lines)])


def example_lines(epilog: str | None, comments: bool = False) -> list[str]:
    """The command lines of an :func:`examples` epilog, for docs and tests (their ``  # ...``
    comments only when ``comments``)."""
    if not epilog or EXAMPLES_HEADING not in epilog:
        return []
    body = epilog.split(EXAMPLES_HEADING, 1)[1]
    out = []
    for line in body.splitlines():
        line = line.strip()
        if not line or line == "\b":
            continue
        out.append(line if comments else line.split("  #", 1)[0].rstrip())
    return out


class Command(typer.core.TyperCommand):
    """A command whose usage line names required arguments plainly: ``config get KEY``.

    Typer writes ``{KEY}``, which reads like a set of choices to anyone used to other tools.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


QUIET_HELP = "Print nothing on success (errors still go to stderr; the exit code tells)."


def quiet_option() -> Any:
    """``-q/--quiet`` for commands that report what they did."""
    return typer.Option(False, "--quiet", "-q", help=QUIET_HELP)


def say(quiet: bool, text: str) -> None:
    """Print one line on stdout unless ``--quiet``."""
    if not quiet:
        sys.stdout.write(text + "\n")


def config_key(text: str) -> str:
    """Parser of a configuration-key argument: the text as typed (the store checks it).

    It is a marker too: the generated shell completions offer every key of the schema for
    arguments parsed with it.
    """
    return text


def config_pairs(text: str) -> str:
    """Parser of ``KEY VALUE [KEY VALUE]...`` arguments (completion: keys, then their values)."""
    return text
