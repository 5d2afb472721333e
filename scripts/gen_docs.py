#!/usr/bin/env python3
"""Generate shell completions and man pages from the ``filamentctl`` command tree.

    python scripts/gen_docs.py            # rewrite completions/ and man/ in the repository
    python scripts/gen_docs.py --out DIR  # write DIR/completions/ and DIR/man/ instead
    python scripts/gen_docs.py --check    # exit 1, listing them, when committed files differ

Everything comes from the Typer app (``typer.main.get_command``): commands, groups, options,
their help and examples, and from the configuration schema (the keys that completion offers).
The output is deterministic: sorted commands, no terminal-width dependence, and the man pages'
date is the date of this version's entry in CHANGELOG.md (``## [0.1.0] — 2026-12-01``), or
of the newest dated entry while the version is unreleased, so the same sources always give the
same pages. ``tests/ops/test_generated_docs.py`` fails when the committed files drift from the
CLI; rerun this script after changing a command.

The completion scripts are static (they never start Python): on a Raspberry Pi a Python start
costs most of a second, which is too long for a TAB press. They complete subcommands, options,
the values of choice options, file names for path options, configuration keys (``config get
heater.<TAB>``) and, for ``config set KEY VALUE``, the values a key allows.
"""

from __future__ import annotations

import argparse
import enum
import os
import re
import sys
import textwrap
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filamentctl import errors, paths

REPO = Path(__file__).resolve().parents[1]
PROG = "filamentctl"


@dataclass(frozen=True)
class Opt:
    names: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()
    is_path: bool = False
    metavar: str = "VALUE"


#: What completion offers for a positional argument.
ArgKind = typing.Literal["none", "choices", "file", "key", "pairs"]


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    required: bool
    choices: tuple[str, ...] = ()
    kind: ArgKind = "none"


@dataclass
class Cmd:
    path: tuple[str, ...]  # () for the root
    help: str
    options: list[Opt]
    args: list[Arg]
    children: list[Cmd] = field(default_factory=list)
    short_help: str = ""
    examples: list[str] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return bool(self.children)

    @property
    def full(self) -> str:
        return " ".join((PROG, *self.path))

    @property
    def short(self) -> str:
        """The command's summary: its short_help, else the first sentence of its help."""
        if self.short_help:
            return self.short_help
        first = self.help.split("\n\n", 1)[0].replace("\n", " ").strip()
        match = re.match(r"(.+?\.)(\s|$)", first)
        return match.group(1) if match else first

    def walk(self) -> Iterator[Cmd]:
        yield self
        for child in self.children:
            yield from child.walk()


# ---------------------------------------------------------------------------------------------
# Reading the command tree


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``list[X]`` → X."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        rest = [a for a in args if a is not type(None)]
        return _unwrap(rest[0]) if len(rest) == 1 else annotation
    if origin in (list, tuple, set) and args:
        return _unwrap(args[0])
    return annotation


def _param_type(param: Any) -> Any:
    # The descriptor holds the resolved annotation; bare_type() may be a string under
    # ``from __future__ import annotations``.
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        bare = getattr(param, "bare_type", None)
        annotation = bare() if callable(bare) else None
    return _unwrap(annotation)


def _choices(kind: Any, param: Any = None) -> tuple[str, ...]:
    declared = getattr(getattr(param, "type", None), "choices", None)
    if declared:
        return tuple(str(c.value if isinstance(c, enum.Enum) else c) for c in declared)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return tuple(str(m.value) for m in kind)
    if typing.get_origin(kind) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(kind))
    return tuple(str(c) for c in getattr(kind, "choices", ()) or ())


def _clean(text: str | None) -> str:
    """Docstring → plain paragraphs (Click's ``\\b`` markers dropped, indentation removed)."""
    if not text:
        return ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() != "\b"]
    return "\n".join(lines)


def _is_path(param: Any, kind: Any) -> bool:
    # Click's Path type is named "path"; the annotation may still be a string here.
    return kind is Path or getattr(param.type, "name", "") == "path"


def _arg_kind(param: Any, kind: Any, choices: tuple[str, ...]) -> ArgKind:
    from filamentctl.cli import common

    parser = getattr(param.type, "func", None)
    if parser is common.config_key:
        return "key"
    if parser is common.config_pairs:
        return "pairs"
    if choices:
        return "choices"
    return "file" if _is_path(param, kind) else "none"


def _read(command: Any, path: tuple[str, ...], help_names: tuple[str, ...]) -> Cmd:
    from filamentctl.cli.common import example_lines

    options: list[Opt] = []
    args: list[Arg] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind = _param_type(param)
        if param.param_type_name == "argument":
            choices = _choices(kind, param)
            args.append(
                Arg(
                    name=str(param.metavar or param.name).upper(),
                    help=_clean(getattr(param, "help", None)),
                    required=bool(param.required),
                    choices=choices,
                    kind=_arg_kind(param, kind, choices),
                )
            )
            continue
        names = tuple(sorted([*param.opts, *param.secondary_opts], key=lambda n: (len(n), n)))
        long_names = [n for n in names if n.startswith("--")]
        from_name = (long_names[-1] if long_names else names[-1]).lstrip("-")
        is_path = _is_path(param, kind)
        metavar = param.metavar or ("PATH" if is_path else from_name.upper().replace("-", "_"))
        options.append(
            Opt(
                names=names,
                help=_clean(param.help),
                takes_value=not param.is_flag,
                choices=_choices(kind, param),
                is_path=is_path,
                metavar=metavar,
            )
        )
    options.append(Opt(help_names, "Show the help and exit.", takes_value=False))
    cmd = Cmd(
        path=path,
        help=_clean(command.help),
        options=options,
        args=args,
        short_help=" ".join((command.short_help or "").split()),
        examples=example_lines(command.epilog, comments=True),
    )
    children = getattr(command, "commands", {})
    for name in sorted(children):
        child = children[name]
        if not getattr(child, "hidden", False):
            cmd.children.append(_read(child, (*path, name), help_names))
    return cmd


def command_tree() -> Cmd:
    """The CLI as :class:`Cmd` objects, from ``filamentctl.cli.main.app``."""
    import typer

    from filamentctl.cli.main import app

    root = typer.main.get_command(app)
    settings = getattr(root, "context_settings", None) or {}
    help_names = tuple(sorted(settings.get("help_option_names", ["--help"]), key=len))
    return _read(root, (), help_names)


# ---------------------------------------------------------------------------------------------
# Completion scripts: a function walks the words typed so far into the command path and the
# positional arguments after it; tables (generated below) give the subcommands, options,
# value-taking options and choices of a path, what its positional arguments are (configuration
# keys, KEY VALUE pairs, files, choices), the schema's keys and the values each key allows.


def _value_options(cmd: Cmd) -> list[str]:
    return [n for o in cmd.options if o.takes_value for n in o.names]


def _sh_case(entries: list[tuple[str, str]], indent: str = "        ") -> str:
    return "\n".join(f'{indent}"{key}") echo "{value}" ;;' for key, value in entries if value)


def _arg_kinds(tree: Cmd) -> list[tuple[str, str]]:
    """(command path, what its first positional argument completes to), for leaf commands."""
    return [
        (" ".join(c.path), c.args[0].kind)
        for c in tree.walk()
        if c.args and not c.children and c.args[0].kind != "none"
    ]


def _arg_choices(tree: Cmd) -> list[tuple[str, str]]:
    return [
        (" ".join(c.path), " ".join(c.args[0].choices))
        for c in tree.walk()
        if c.args and c.args[0].kind == "choices"
    ]


def config_keys() -> list[tuple[str, str]]:
    """Every configuration key with its one-line help, in schema order."""
    from filamentctl.core import schema

    return [(k.name, k.help) for k in schema.SCHEMA.values()]


def key_values() -> list[tuple[str, tuple[str, ...]]]:
    """The values ``config set KEY`` can complete: a choice key's choices, true/false."""
    from filamentctl.core import schema

    out: list[tuple[str, tuple[str, ...]]] = []
    for k in schema.SCHEMA.values():
        if k.type == "choice":
            out.append((k.name, tuple(k.choices)))
        elif k.type == "bool":
            out.append((k.name, ("true", "false")))
    return out


def bash_completion(tree: Cmd, version: str) -> str:
    cmds = list(tree.walk())
    subcommands = [(" ".join(c.path), " ".join(ch.path[-1] for ch in c.children)) for c in cmds]
    options = [(" ".join(c.path), " ".join(n for o in c.options for n in o.names)) for c in cmds]
    valued = [(" ".join(c.path), " ".join(_value_options(c))) for c in cmds]
    choices: list[tuple[str, str]] = []
    paths: list[str] = []
    for c in cmds:
        for o in c.options:
            for n in o.names:
                key = " ".join((*c.path, n)).strip()
                if o.choices:
                    choices.append((key, " ".join(o.choices)))
                elif o.is_path:
                    paths.append(key)
    keys = " ".join(name for name, _ in config_keys())
    values = [(name, " ".join(v)) for name, v in key_values()]
    return f"""# bash completion for {PROG} {version}
# Generated by scripts/gen_docs.py from the CLI; do not edit. Install: copy to
# /usr/share/bash-completion/completions/{PROG} (or ~/.local/share/bash-completion/completions/).

_{PROG}_subcommands() {{
    case "$1" in
{_sh_case(subcommands)}
    esac
}}

_{PROG}_options() {{
    case "$1" in
{_sh_case(options)}
    esac
}}

_{PROG}_value_options() {{
    case "$1" in
{_sh_case(valued)}
    esac
}}

_{PROG}_choices() {{
    case "$1" in
{_sh_case(choices)}
    esac
}}

_{PROG}_path_option() {{
    case "$1" in
{chr(10).join(f'        "{p}") return 0 ;;' for p in paths)}
    esac
    return 1
}}

# What the positional arguments of a command are: key, pairs (KEY VALUE...), file, choices.
_{PROG}_arg_kind() {{
    case "$1" in
{_sh_case(_arg_kinds(tree))}
    esac
}}

_{PROG}_arg_choices() {{
    case "$1" in
{_sh_case(_arg_choices(tree))}
    esac
}}

_{PROG}_keys() {{
    echo "{keys}"
}}

# The values `config set KEY` offers for KEY.
_{PROG}_key_values() {{
    case "$1" in
{_sh_case(values)}
    esac
}}

_{PROG}() {{
    local cur prev word path="" kind="" skip=0 i
    local -a args=()
    COMPREPLY=()
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    # Walk the words before the cursor: options (and the values they take) are skipped, a word
    # naming a subcommand of the current path extends it, anything else is a positional argument.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        kind="$(_{PROG}_arg_kind "$path")"
        # A VALUE of KEY VALUE may look like an option (-1.5).
        if [[ "$kind" == pairs ]] && (( ${{#args[@]}} % 2 == 1 )); then
            args+=("$word")
            continue
        fi
        case "$word" in
        --*=*) continue ;;
        -*)
            case " $(_{PROG}_value_options "$path") " in
            *" $word "*) skip=1 ;;
            esac
            continue
            ;;
        esac
        if (( ${{#args[@]}} == 0 )); then
            case " $(_{PROG}_subcommands "$path") " in
            *" $word "*) path="${{path:+$path }}$word"; continue ;;
            esac
        fi
        args+=("$word")
    done
    kind="$(_{PROG}_arg_kind "$path")"
    if ((skip)); then
        local key="${{path:+$path }}$prev"
        local values
        values="$(_{PROG}_choices "$key")"
        if [[ -n "$values" ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
        elif _{PROG}_path_option "$key"; then
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
        return 0
    fi
    if [[ "$kind" == pairs ]] && (( ${{#args[@]}} % 2 == 1 )); then
        mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_key_values "${{args[-1]}}")" -- "$cur")
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_options "$path")" -- "$cur")
    elif [[ -n "$(_{PROG}_subcommands "$path")" ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_subcommands "$path")" -- "$cur")
    else
        case "$kind" in
        key | pairs) mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_keys)" -- "$cur") ;;
        choices) mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_arg_choices "$path")" -- "$cur") ;;
        file)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            ;;
        esac
    fi
    return 0
}}

complete -F _{PROG} {PROG}
"""


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_desc(name: str, help_text: str) -> str:
    """``'name:help'`` for _describe (a colon inside the name is escaped)."""
    short = help_text.split("\n", 1)[0]
    escaped = name.replace(":", "\\:")
    return _zsh_quote(f"{escaped}:{short}")


def zsh_completion(tree: Cmd, version: str) -> str:
    sub_cases: list[str] = []
    opt_cases: list[str] = []
    val_cases: list[str] = []
    choice_cases: list[str] = []
    path_cases: list[str] = []
    for c in tree.walk():
        key = " ".join(c.path)
        if c.children:
            items = " ".join(_zsh_desc(ch.path[-1], ch.short) for ch in c.children)
            sub_cases.append(f'        "{key}") reply=({items}) ;;')
        items = " ".join(_zsh_desc(n, o.help) for o in c.options for n in o.names)
        opt_cases.append(f'        "{key}") reply=({items}) ;;')
        if _value_options(c):
            val_cases.append(f'        "{key}") reply=({" ".join(_value_options(c))}) ;;')
        for o in c.options:
            for n in o.names:
                okey = " ".join((*c.path, n)).strip()
                if o.choices:
                    choice_cases.append(f'        "{okey}") reply=({" ".join(o.choices)}) ;;')
                elif o.is_path:
                    path_cases.append(f'        "{okey}") return 0 ;;')
    kind_cases = [f'        "{path}") REPLY={kind} ;;' for path, kind in _arg_kinds(tree)]
    arg_choice_cases = [
        f'        "{path}") reply=({words}) ;;' for path, words in _arg_choices(tree)
    ]
    keys = "\n".join(f"        {_zsh_desc(name, help_)}" for name, help_ in config_keys())
    value_cases = [f'        "{name}") reply=({" ".join(v)}) ;;' for name, v in key_values()]
    nl = "\n"
    return f"""#compdef {PROG}
# zsh completion for {PROG} {version}
# Generated by scripts/gen_docs.py from the CLI; do not edit. Install: copy as _{PROG} into a
# directory on $fpath (e.g. /usr/local/share/zsh/site-functions/), then restart zsh.

_{PROG}_subcommands() {{
    reply=()
    case "$1" in
{nl.join(sub_cases)}
    esac
}}

_{PROG}_options() {{
    reply=()
    case "$1" in
{nl.join(opt_cases)}
    esac
}}

_{PROG}_value_options() {{
    reply=()
    case "$1" in
{nl.join(val_cases)}
    esac
}}

_{PROG}_choices() {{
    reply=()
    case "$1" in
{nl.join(choice_cases)}
    esac
}}

_{PROG}_path_option() {{
    case "$1" in
{nl.join(path_cases)}
    esac
    return 1
}}

# What the positional arguments of a command are: key, pairs (KEY VALUE...), file, choices.
_{PROG}_arg_kind() {{
    REPLY=""
    case "$1" in
{nl.join(kind_cases)}
    esac
}}

_{PROG}_arg_choices() {{
    reply=()
    case "$1" in
{nl.join(arg_choice_cases)}
    esac
}}

_{PROG}_keys() {{
    reply=(
{keys}
    )
}}

# The values `config set KEY` offers for KEY.
_{PROG}_key_values() {{
    reply=()
    case "$1" in
{nl.join(value_cases)}
    esac
}}

_{PROG}() {{
    local path="" word kind skip=0 i
    local -a reply names args
    # Walk the words before the cursor, as the bash version does.
    for ((i = 2; i < CURRENT; i++)); do
        word="${{words[i]}}"
        if ((skip)); then skip=0; continue; fi
        _{PROG}_arg_kind "$path"
        # A VALUE of KEY VALUE may look like an option (-1.5).
        if [[ "$REPLY" == pairs ]] && (( ${{#args}} % 2 == 1 )); then
            args+=("$word")
            continue
        fi
        case "$word" in
        --*=*) continue ;;
        -*)
            _{PROG}_value_options "$path"
            (( ${{reply[(Ie)$word]}} )) && skip=1
            continue
            ;;
        esac
        if (( ${{#args}} == 0 )); then
            _{PROG}_subcommands "$path"
            names=(${{reply%%:*}})
            if (( ${{names[(Ie)$word]}} )); then
                path="${{path:+$path }}$word"
                continue
            fi
        fi
        args+=("$word")
    done
    _{PROG}_arg_kind "$path"
    kind="$REPLY"
    if ((skip)); then
        local key="${{path:+$path }}${{words[CURRENT-1]}}"
        _{PROG}_choices "$key"
        if (( ${{#reply}} )); then
            compadd -a reply
        elif _{PROG}_path_option "$key"; then
            _files
        fi
        return
    fi
    if [[ "$kind" == pairs ]] && (( ${{#args}} % 2 == 1 )); then
        _{PROG}_key_values "${{args[-1]}}"
        (( ${{#reply}} )) && compadd -a reply
        return
    fi
    if [[ "${{words[CURRENT]}}" == -* ]]; then
        _{PROG}_options "$path"
        _describe -t options option reply
        return
    fi
    _{PROG}_subcommands "$path"
    if (( ${{#reply}} )); then
        _describe -t commands command reply
        return
    fi
    case "$kind" in
    key | pairs)
        _{PROG}_keys
        _describe -t keys 'configuration key' reply
        ;;
    choices)
        _{PROG}_arg_choices "$path"
        compadd -a reply
        ;;
    file) _files ;;
    esac
}}

if [[ "${{funcstack[1]}}" == "_{PROG}" ]]; then
    _{PROG} "$@"
else
    compdef _{PROG} {PROG}
fi
"""


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_completion(tree: Cmd, version: str) -> str:
    lines = [
        f"# fish completion for {PROG} {version}",
        "# Generated by scripts/gen_docs.py from the CLI; do not edit. Install: copy to",
        f"# ~/.config/fish/completions/{PROG}.fish (or /usr/share/fish/vendor_completions.d/).",
        "",
        "# Walk the tokens typed so far: prints the command path, then one positional argument",
        "# per line (options and their values skipped; a VALUE of KEY VALUE may look like -1.5).",
        f"function __{PROG}_walk",
        "    set -l tokens (commandline -opc)",
        "    set -e tokens[1]",
        '    set -l path ""',
        "    set -l args",
        "    set -l skip 0",
        "    for word in $tokens",
        "        if test $skip -eq 1",
        "            set skip 0",
        "            continue",
        "        end",
        f'        set -l kind (__{PROG}_arg_kind "$path")',
        '        if test "$kind" = pairs; and test (math (count $args) % 2) -eq 1',
        "            set -a -- args $word",
        "            continue",
        "        end",
        "        switch $word",
        "            case '--*=*'",
        "                continue",
        "            case '-*'",
        f'                if contains -- $word (__{PROG}_value_options "$path")',
        "                    set skip 1",
        "                end",
        "                continue",
        "        end",
        "        if test (count $args) -eq 0; and "
        f'contains -- $word (__{PROG}_subcommands "$path")',
        '            set path (string trim -- "$path $word")',
        "            continue",
        "        end",
        "        set -a -- args $word",
        "    end",
        '    printf "%s\\n" "$path" $args',
        "end",
        "",
        f"function __{PROG}_path",
        f"    set -l walked (__{PROG}_walk)",
        '    echo "$walked[1]"',
        "end",
        "",
        f"function __{PROG}_at --description 'is the command path typed so far exactly argv[1]?'",
        f"    set -l path (__{PROG}_path)",
        '    test "$path" = "$argv[1]"',
        "end",
        "",
        f"function __{PROG}_expects_value --description 'after KEY in KEY VALUE pairs?'",
        f"    set -l walked (__{PROG}_walk)",
        "    test (math (count $walked) % 2) -eq 0",
        "end",
        "",
        f"function __{PROG}_pair_values --description 'the values the last KEY allows'",
        f"    set -l walked (__{PROG}_walk)",
        f"    __{PROG}_key_values $walked[-1]",
        "end",
        "",
        f"function __{PROG}_subcommands",
        "    switch $argv[1]",
    ]
    for c in tree.walk():
        if c.children:
            lines.append(f"        case {_fish_quote(' '.join(c.path))}")
            lines.append("            printf '%s\\n' " + " ".join(ch.path[-1] for ch in c.children))
    lines += ["    end", "end", "", f"function __{PROG}_value_options", "    switch $argv[1]"]
    for c in tree.walk():
        if _value_options(c):
            lines.append(f"        case {_fish_quote(' '.join(c.path))}")
            lines.append("            printf '%s\\n' -- " + " ".join(_value_options(c)))
    lines += ["    end", "end", "", f"function __{PROG}_arg_kind", "    switch $argv[1]"]
    for path, kind in _arg_kinds(tree):
        lines.append(f"        case {_fish_quote(path)}")
        lines.append(f"            echo {kind}")
    lines += ["    end", "end", "", f"function __{PROG}_keys"]
    for name, help_ in config_keys():
        lines.append(f"    printf '%s\\t%s\\n' {name} {_fish_quote(help_)}")
    lines += ["end", "", f"function __{PROG}_key_values", "    switch $argv[1]"]
    for name, values in key_values():
        lines.append(f"        case {_fish_quote(name)}")
        lines.append("            printf '%s\\n' " + " ".join(values))
    lines += ["    end", "end", "", f"complete -c {PROG} -f", ""]
    for c in tree.walk():
        path = _fish_quote(" ".join(c.path))
        cond = f'-n "__{PROG}_at {path}"'
        for ch in c.children:
            lines.append(f"complete -c {PROG} {cond} -a {ch.path[-1]} -d {_fish_quote(ch.short)}")
        for o in c.options:
            spec: list[str] = []
            for n in o.names:
                if n.startswith("--"):
                    spec.append(f"-l {n[2:]}")
                elif len(n) == 2:
                    spec.append(f"-s {n[1:]}")
                else:
                    spec.append(f"-o {n[1:]}")
            extra = ""
            if o.takes_value:
                # -x: a value is required and it is not a file name; -r -F: it is one.
                if o.choices:
                    extra = f" -x -a {_fish_quote(' '.join(o.choices))}"
                elif o.is_path:
                    extra = " -r -F"
                else:
                    extra = " -x"
            short = o.help.split("\n", 1)[0]
            lines.append(
                f"complete -c {PROG} {cond} {' '.join(spec)}{extra} -d {_fish_quote(short)}"
            )
        if c.args and not c.children:
            kind = c.args[0].kind
            if kind == "key":
                lines.append(f"complete -c {PROG} {cond} -a '(__{PROG}_keys)'")
            elif kind == "pairs":
                at = f"__{PROG}_at {path}"
                lines.append(
                    f'complete -c {PROG} -n "{at}; and not __{PROG}_expects_value" '
                    f"-a '(__{PROG}_keys)'"
                )
                lines.append(
                    f'complete -c {PROG} -n "{at}; and __{PROG}_expects_value" '
                    f"-a '(__{PROG}_pair_values)'"
                )
            elif kind == "choices":
                lines.append(
                    f"complete -c {PROG} {cond} -a {_fish_quote(' '.join(c.args[0].choices))}"
                )
            elif kind == "file":
                lines.append(f"complete -c {PROG} {cond} -F")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Man pages (man(7) macros)


def _roff(text: str) -> str:
    """Escape text for roff and turn `code` into bold."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    out = []
    for line in text.split("\n"):
        # A line starting with . or ' would be read as a request.
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    parts = [p for p in text.split("\n\n") if p.strip()]
    return "\n.PP\n".join(_roff(p.replace("\n", " ")) for p in parts)


def _synopsis(cmd: Cmd) -> str:
    words = [f"\\fB{_roff(cmd.full)}\\fR"]
    if any(o.names[0] not in ("-h", "--help") for o in cmd.options):
        words.append("[\\fIOPTIONS\\fR]")
    if cmd.children:
        words.append("\\fICOMMAND\\fR")
    for a in cmd.args:
        words.append(f"\\fI{a.name}\\fR" if a.required else f"[\\fI{a.name}\\fR]")
    return " ".join(words)


def _options_block(cmd: Cmd) -> list[str]:
    out: list[str] = []
    for o in cmd.options:
        names = ", ".join(f"\\fB{_roff(n)}\\fR" for n in o.names)
        if o.takes_value:
            value = "|".join(o.choices) if o.choices else o.metavar
            names += f" \\fI{_roff(value)}\\fR"
        out += [".TP", names, _roff(o.help.replace("\n", " ")) or "(no description)"]
    return out


def _examples_block(lines: list[str]) -> list[str]:
    """Command lines kept as typed (no filling), indented."""
    return [".RS 4", ".nf", *(_roff(line) for line in lines), ".fi", ".RE"]


def _command_section(cmd: Cmd) -> list[str]:
    out = [".SS " + _roff(cmd.full), _synopsis(cmd), ".PP", _paragraphs(cmd.help)]
    if cmd.args:
        for a in cmd.args:
            text = a.help or ("one of: " + ", ".join(a.choices) if a.choices else "")
            out += [".TP", f"\\fI{a.name}\\fR", _roff(text) or "(see above)"]
    out += _options_block(cmd)
    if cmd.examples:
        out += [".PP", "Examples:", *_examples_block(cmd.examples)]
    return out


def release_date(version: str, changelog: Path | None = None) -> str:
    """The date (YYYY-MM-DD) on the CHANGELOG.md heading of ``version``: the man pages' date.

    A fixed date from a committed file keeps the pages reproducible (no build clock). Raises
    SystemExit naming the fix when the heading has no date.
    """
    path = changelog or REPO / "CHANGELOG.md"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## ") and re.search(rf"(\[|\s){re.escape(version)}(\]|\s|,|$)", line):
            found = re.search(r"\d{4}-\d{2}-\d{2}", line)
            if found:
                return found.group(0)
            break
    raise SystemExit(
        f"{path.name}: the heading for {version} needs a date (YYYY-MM-DD) for the man pages, "
        f"e.g. '## [{version}] — 2026-12-01'"
    )


def _header(name: str, version: str, date: str) -> list[str]:
    title = _roff(name.upper())
    return [
        f'.\\" Generated by scripts/gen_docs.py from the {PROG} CLI; do not edit.',
        f'.TH {title} 1 "{date}" "{PROG} {version}" "User Commands"',
        ".nh",
        ".ad l",
    ]


def _mandoc_len(line: str) -> int:
    """A line's length as mandoc's style check counts it (non-ASCII as an 8-byte escape)."""
    return sum(1 if ord(c) < 128 else 8 for c in line)


def wrap_roff(page: str, width: int = 80) -> str:
    """Break text lines longer than ``width`` bytes (mandoc's style limit) at spaces.

    Requests (``.XX``), the tag line after ``.TP`` and ``.nf`` blocks are left alone: in fill
    mode a line break in the source is just a space, elsewhere it would change the page.
    """
    out: list[str] = []
    no_fill = False
    after_tp = False
    for line in page.split("\n"):
        if line.startswith("."):
            no_fill = {".nf": True, ".fi": False}.get(line.split(" ")[0], no_fill)
            after_tp = line == ".TP"
            out.append(line)
            continue
        if no_fill or after_tp or _mandoc_len(line) <= width:
            after_tp = False
            out.append(line)
            continue
        chars = width - 2
        parts = textwrap.wrap(line, width=chars, break_long_words=False, break_on_hyphens=False)
        # mandoc measures a non-ASCII character (…, °) as its \[uXXXX] escape: wrap shorter.
        while chars > 20 and any(_mandoc_len(p) > width for p in parts):
            chars -= 4
            parts = textwrap.wrap(line, width=chars, break_long_words=False, break_on_hyphens=False)
        for part in parts:
            # A line starting with . or ' would be read as a request.
            out.append("\\&" + part if part.startswith((".", "'")) else part)
    return "\n".join(out)


_ENVIRONMENT = [
    (
        "FILAMENTCTL_HOME",
        "Keep configuration, key, state and socket under this one directory (tests, several "
        "boxes on one machine).",
    ),
    ("FILAMENTCTL_SOCKET", "The service socket to talk to (same as --socket)."),
    (
        "FILAMENTCTL_CONFIG_KEY",
        "The configuration key; wins over the key file. Never put it on a command line.",
    ),
    (
        "FILAMENTCTL_SECTION__KEY",
        "Override one setting, e.g. FILAMENTCTL_SENSOR__READ_INTERVAL=2; a command-line flag "
        "wins over it.",
    ),
    (
        "JOURNAL_STREAM",
        "Set by systemd; when it names standard error, log lines carry <N> syslog priority "
        "prefixes for journald.",
    ),
]

# The system service's files, from the one definition of its directories.
_SYSTEM = paths.resolve(
    {
        "CONFIGURATION_DIRECTORY": str(paths.SYSTEM_CONFIG_DIR),
        "STATE_DIRECTORY": str(paths.SYSTEM_STATE_DIR),
        "RUNTIME_DIRECTORY": str(paths.SYSTEM_RUNTIME_ROOT),
    }
)

_FILES = [
    (
        "/etc/systemd/system/filamentctl.service",
        "The unit written by `filamentctl service install`.",
    ),
    (str(_SYSTEM.config_db), "The system service's encrypted configuration."),
    (str(_SYSTEM.key_file), "Its key (mode 0600, owned by the service user)."),
    (str(_SYSTEM.history_db), "The system service's local history."),
    (str(_SYSTEM.socket), "The system service's socket; members of its group may use it."),
    (
        "~/.config/filamentctl/, ~/.local/state/filamentctl/",
        "Configuration and history when you run the service as yourself.",
    ),
]

_EXIT = [
    (str(errors.EXIT_OK), "Success."),
    (str(errors.EXIT_FAILED), "The operation failed."),
    (str(errors.EXIT_USAGE), "Usage or validation error."),
    (str(errors.EXIT_NOT_RUNNING), "No service is running."),
    (str(errors.EXIT_PERMISSION), "Permission denied."),
]


def _group_page_name(cmd: Cmd) -> str:
    return f"{PROG}-{'-'.join(cmd.path)}"


def main_page(tree: Cmd, version: str, date: str) -> str:
    groups = [c for c in tree.children if c.is_group]
    out = _header(PROG, version, date)
    out += [".SH NAME", f"{PROG} \\- {_roff(tree.short.rstrip('.'))}"]
    out += [".SH SYNOPSIS", _synopsis(tree)]
    out += [".SH DESCRIPTION", _paragraphs(tree.help)]
    out += [
        ".PP",
        _roff(
            "Every command has --help. Commands that print data accept --json: one JSON "
            "document on standard output and nothing else. Errors are one line on standard "
            "error; --debug shows the traceback."
        ),
    ]
    out += [".SH OPTIONS"] + _options_block(tree)
    out += [".SH COMMANDS"]
    for c in tree.children:
        if c.is_group:
            out += [
                ".SS " + _roff(c.full) + " \\fICOMMAND\\fR",
                _paragraphs(c.help),
                ".PP",
                f"See \\fB{_group_page_name(c)}\\fR(1).",
            ]
            for ch in c.children:
                out += [".TP", f"\\fB{_roff(ch.full)}\\fR", _roff(ch.short)]
            if c.examples:
                out += [".PP", "Examples:", *_examples_block(c.examples)]
        else:
            out += _command_section(c)
    out += [".SH ENVIRONMENT"]
    for name, text in _ENVIRONMENT:
        out += [".TP", f"\\fB{_roff(name)}\\fR", _roff(text)]
    out += [".SH FILES"]
    for name, text in _FILES:
        out += [".TP", f"\\fI{_roff(name)}\\fR", _roff(text)]
    out += [".SH EXIT STATUS"]
    for code, text in _EXIT:
        out += [".TP", f"\\fB{code}\\fR", _roff(text)]
    out += [".SH EXAMPLES", *_examples_block(tree.examples)]
    see = [f"\\fB{_group_page_name(c)}\\fR(1)" for c in groups]
    out += [".SH SEE ALSO", ",\n".join([*see, "\\fBsystemctl\\fR(1)", "\\fBjournalctl\\fR(1)"])]
    return wrap_roff("\n".join(out)) + "\n"


def group_page(group: Cmd, version: str, date: str) -> str:
    name = _group_page_name(group)
    out = _header(name, version, date)
    out += [".SH NAME", f"{_roff(name)} \\- {_roff(group.short.rstrip('.'))}"]
    out += [".SH SYNOPSIS", _synopsis(group)]
    out += [".SH DESCRIPTION", _paragraphs(group.help)]
    out += [".SH COMMANDS"]
    for child in group.children:
        out += _command_section(child)
    if group.examples:
        out += [".SH EXAMPLES", *_examples_block(group.examples)]
    out += [".SH SEE ALSO", f"\\fB{PROG}\\fR(1)"]
    return wrap_roff("\n".join(out)) + "\n"


# ---------------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    """Relative path → file content, for every generated file."""
    from filamentctl import __version__ as version

    tree = command_tree()
    date = release_date(version)
    files = {
        f"completions/{PROG}.bash": bash_completion(tree, version),
        f"completions/_{PROG}": zsh_completion(tree, version),
        f"completions/{PROG}.fish": fish_completion(tree, version),
        f"man/{PROG}.1": main_page(tree, version, date),
    }
    for c in tree.children:
        if c.is_group:
            files[f"man/{_group_page_name(c)}.1"] = group_page(c, version, date)
    files["docs/configuration.md"] = configuration_reference(version)
    files["filamentctl/cli/help_text.py"] = root_help_module(version)
    return files


def root_help_module(version: str) -> str:
    """filamentctl/cli/help_text.py: the root ``--help`` as Click prints it on a terminal 80 or
    more columns wide, which the entry point's fast path prints without loading Click."""
    import subprocess

    from filamentctl.cli.fast import HELP_COLUMNS

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from filamentctl.cli.main import main; main(['--help'], fast=False)",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": str(HELP_COLUMNS)},
        cwd=REPO,
        check=True,
    )
    text = proc.stdout
    # The fast path writes it to whatever stdout is; Click would re-encode a non-ASCII text on
    # an ASCII stream, so the two agree only while the text is ASCII.
    if not text.isascii():
        raise SystemExit(
            "the root --help is not ASCII: the fast path cannot print it as Click does"
        )
    # One string literal per line, quoted as ruff format would (double quotes unless that needs
    # more escapes), so the committed file stays formatted.
    lines = "".join(f"    {_literal(line)}\n" for line in text.splitlines(keepends=True))
    return (
        f'"""The root ``--help`` of filamentctl {version} at {HELP_COLUMNS} columns, as Click '
        "prints it.\n"
        "\n"
        "Generated by scripts/gen_docs.py from the Typer app; do not edit. The fast path of the "
        "entry\npoint prints it (see filamentctl.cli.fast).\n"
        '"""\n'
        "\n"
        f"ROOT_HELP = (\n{lines})\n"
    )


def _literal(text: str) -> str:
    """An ASCII string as a Python literal, quoted the way ruff format quotes it."""
    import json

    return repr(text) if '"' in text and "'" not in text else json.dumps(text)


def configuration_reference(version: str) -> str:
    """docs/configuration.md: every key of the schema, which is the single source of truth."""
    from filamentctl.core import schema

    out = [
        "# Configuration reference",
        "",
        f"<!-- generated by scripts/gen_docs.py from filamentctl/core/schema.py ({version}); "
        "do not edit -->",
        "",
        "Set a key with `filamentctl config set KEY VALUE` (secrets: `config set KEY -` reads",
        "stdin, or a hidden prompt), or override it for one process with the environment variable",
        "shown. Cross-field rules (e.g. `heater.min_temp_c < heater.max_temp_c <",
        "heater.cutoff_temp_c`) are checked on every change. Secret values may be Vault",
        "references: `vault:mount/path#field`.",
    ]
    section = None
    for key in schema.SCHEMA.values():
        if key.section != section:
            section = key.section
            out += [
                "",
                f"## {section}",
                "",
                "| key | default | allowed | meaning |",
                "|---|---|---|---|",
            ]
        default = "(secret)" if key.secret else schema.format_value(key.default)
        default = default.replace("|", "\\|") if default else '""'
        allowed = key.allowed().replace("|", "\\|")
        meaning = key.help.replace("|", "\\|") + f" — env `{key.env}`"
        out.append(f"| `{key.name}` | `{default}` | {allowed} | {meaning} |")
    return "\n".join(out) + "\n"


def _existing(out: Path) -> set[str]:
    found = {str(p.relative_to(out)) for p in (out / "man").glob(f"{PROG}*.1")}
    found |= {str(p.relative_to(out)) for p in (out / "completions").glob("*") if p.is_file()}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO, help="directory to write into")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out, write nothing"
    )
    opts = parser.parse_args(argv)
    files = generate()
    out: Path = opts.out
    stale = sorted(_existing(out) - set(files))
    if opts.check:
        differ = [
            rel
            for rel, text in sorted(files.items())
            if not (out / rel).is_file() or (out / rel).read_bytes() != text.encode()
        ]
        for rel in differ + stale:
            print(f"out of date: {rel}", file=sys.stderr)
        if differ or stale:
            print("run: python scripts/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    for rel, text in sorted(files.items()):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode())
    for rel in stale:
        (out / rel).unlink()
    print(f"wrote {len(files)} files under {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
