"""Every command's ``--help`` follows the conventions of the best CLIs (gh, kubectl, systemctl),
checked on the real command tree, so a command added later is held to them too:

- an Examples section whose command lines parse against the CLI itself;
- group listings never cut a summary with ``...``;
- an option with a fixed set of values is a choice (shown in help, checked, completed);
- values are named for what they are (DURATION, SECONDS, KEY), never ``<str>`` or ``{key}``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from filamentctl.cli.common import example_lines
from filamentctl.cli.main import app

ROOT: Any = typer.main.get_command(app)
# Options known to take one of a fixed set of values (the review found them typed as text).
FIXED_VALUE_OPTIONS = {
    ("history",): "--format",
    ("sim", "set"): "--fault",
    ("run",): "--log-format",
    ("flush",): "--dead-letter",
}
# Help text that lists the allowed values: "table, csv or json", "one of ...", "a|b|c".
LISTS_VALUES = re.compile(r"\b\w+, \w+,? or \w+\b|\bone of\b|\b\w+\|\w+\b")
METAVAR = re.compile(r"^(-|[A-Z][A-Z_]*( [A-Z][A-Z_]*)*(\.\.\.)?)$")


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, click command) for the root and every visible command below it."""

    def walk(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, cmd
        for name, child in sorted(getattr(cmd, "commands", {}).items()):
            if not getattr(child, "hidden", False):
                yield from walk(child, (*path, name))

    return walk(ROOT, ())


ALL = list(commands())
IDS = [" ".join(path) or "filamentctl" for path, _ in ALL]


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def value_params(cmd: Any) -> Iterator[Any]:
    for param in cmd.params:
        if getattr(param, "hidden", False) or getattr(param, "is_flag", False):
            continue
        if param.param_type_name == "option" and getattr(param, "count", False):
            continue
        yield param


def is_choice(param: Any) -> bool:
    return bool(getattr(param.type, "choices", None))


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_every_help_has_an_examples_section(path: tuple[str, ...], cmd: Any) -> None:
    text = help_text(path)
    assert "Examples:" in text, f"{' '.join(path)}: add epilog=examples(...) to the command"
    assert example_lines(cmd.epilog), "the examples come from common.examples()"


def parse_example(line: str) -> list[str]:
    """The ``filamentctl`` arguments of one example line (sudo, env, pipes and redirects
    around it removed)."""
    words = shlex.split(line, comments=True)
    segments: list[list[str]] = [[]]
    for word in words:
        if word in ("|", "||", "&&", ";"):
            segments.append([])
        else:
            segments[-1].append(word)
    for segment in segments:
        while segment and (segment[0] == "sudo" or re.fullmatch(r"[A-Z_]+=\S*", segment[0])):
            segment.pop(0)
        if segment and segment[0] == "filamentctl":
            args = segment[1:]
            if ">" in args:
                args = args[: args.index(">")]
            return args
    raise AssertionError(f"no filamentctl command in example {line!r}")


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_every_example_is_a_valid_command_line(path: tuple[str, ...], cmd: Any) -> None:
    """Each example parses against the real CLI: its command exists, its options exist and
    its values are accepted (choices, ranges). Nothing runs."""
    for line in example_lines(cmd.epilog):
        args = parse_example(line)
        rest = _after_root_options(args)
        # The root's own options (--socket PATH ...) are checked with it; then each group.
        parent = ROOT.make_context("filamentctl", args[: len(args) - len(rest)] + ["x"])
        leaf = ROOT
        while hasattr(leaf, "commands"):
            assert rest, f"{line!r}: a command group needs a command"
            name, rest = rest[0], rest[1:]
            assert name in leaf.commands, f"{line!r}: no command {name!r}"
            leaf = leaf.commands[name]
            if hasattr(leaf, "commands"):
                parent = leaf.make_context(name, [], parent=parent, resilient_parsing=True)
        leaf.make_context(leaf.name, list(rest), parent=parent)  # raises on a bad option/value
        assert example_path(args)[: len(path)] == path, f"{line!r} is not an example of this"


def _after_root_options(args: list[str]) -> list[str]:
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("--socket", "--box"):  # the root options that take a value
            rest.pop(0)
    return rest


def example_path(args: list[str]) -> tuple[str, ...]:
    """The command path an example runs (``("heater", "on")``)."""
    rest, cmd, path = _after_root_options(args), ROOT, ()
    while hasattr(cmd, "commands") and rest and rest[0] in cmd.commands:
        cmd, path, rest = cmd.commands[rest[0]], (*path, rest[0]), rest[1:]
    return path


@pytest.mark.parametrize(
    ("path", "cmd"), [(p, c) for p, c in ALL if hasattr(c, "commands")], ids=lambda v: str(v)
)
def test_group_listings_never_cut_a_summary(path: tuple[str, ...], cmd: Any) -> None:
    for name, child in cmd.commands.items():
        assert child.short_help, f"{' '.join((*path, name))}: set short_help"
        assert not child.get_short_help_str(limit=45).endswith("..."), name
    listing = help_text(path).split("Commands:", 1)[1].split("Examples:", 1)[0]
    assert not [line for line in listing.splitlines() if line.rstrip().endswith("...")]


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_fixed_value_options_are_choices(path: tuple[str, ...], cmd: Any) -> None:
    for param in value_params(cmd):
        name = max(param.opts, key=len)
        if FIXED_VALUE_OPTIONS.get(path) == name:
            assert is_choice(param), f"{' '.join(path)} {name} must be a choice"
        if not is_choice(param):
            assert not LISTS_VALUES.search(param.help or ""), (
                f"{' '.join(path)} {name}: its help lists fixed values; make it a choice "
                "(an Enum) so help, validation and completion know them"
            )


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_values_have_names_not_types(path: tuple[str, ...], cmd: Any) -> None:
    for param in value_params(cmd):
        if is_choice(param):
            continue
        assert param.metavar and METAVAR.match(param.metavar), (
            f"{' '.join(path)} {param.name}: give metavar= a name such as DURATION, SECONDS, "
            "KEY or FILE"
        )
    text = help_text(path)
    usage = text.splitlines()[0]
    assert "{" not in usage, f"{usage!r}: use cls=common.Command for required arguments"
    generic = re.findall(r"<[a-z][a-z ]*>", text)  # <str>, <float range>, <path>; not <a|b|c>
    assert generic == []


def test_a_choice_is_checked_and_listed_in_the_error() -> None:
    result = CliRunner().invoke(app, ["history", "--format", "xml"])
    assert result.exit_code == 2
    assert "'table', 'csv', 'json'" in result.output


def test_the_sim_faults_match_the_simulator() -> None:
    from filamentctl.cli.sim import Fault
    from filamentctl.hw.simulated import FAULTS

    assert tuple(f.value for f in Fault) == FAULTS
