#!/usr/bin/env python3
"""Generate shell completions and man pages from the ``filamentctl`` command tree.

    python scripts/gen_docs.py            # rewrite completions/ and man/ in the repository
    python scripts/gen_docs.py --out DIR  # write DIR/completions/ and DIR/man/ instead
    python scripts/gen_docs.py --check    # exit 1, listing them, when committed files differ

Everything comes from the Typer app (``typer.main.get_command``): commands, groups, options,
their help. The output is deterministic: sorted commands, no dates (the pages carry the version
instead), no terminal-width dependence. ``tests/ops/test_generated_docs.py`` fails when the
committed files drift from the CLI; rerun this script after changing a command.

The completion scripts are static (they never start Python): on a Raspberry Pi a Python start
costs most of a second, which is too long for a TAB press.
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    required: bool
    choices: tuple[str, ...] = ()


@dataclass
class Cmd:
    path: tuple[str, ...]  # () for the root
    help: str
    options: list[Opt]
    args: list[Arg]
    children: list[Cmd] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return bool(self.children)

    @property
    def full(self) -> str:
        return " ".join((PROG, *self.path))

    @property
    def short(self) -> str:
        """The first sentence of the help (up to the first period followed by a space)."""
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


def _choices(kind: Any) -> tuple[str, ...]:
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


def _read(command: Any, path: tuple[str, ...], help_names: tuple[str, ...]) -> Cmd:
    options: list[Opt] = []
    args: list[Arg] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind = _param_type(param)
        if param.param_type_name == "argument":
            args.append(
                Arg(
                    name=str(param.name).upper(),
                    help=_clean(getattr(param, "help", None)),
                    required=bool(param.required),
                    choices=_choices(kind),
                )
            )
            continue
        names = tuple(sorted([*param.opts, *param.secondary_opts], key=lambda n: (len(n), n)))
        long_names = [n for n in names if n.startswith("--")]
        from_name = (long_names[-1] if long_names else names[-1]).lstrip("-")
        metavar = param.metavar or ("PATH" if kind is Path else from_name.upper().replace("-", "_"))
        options.append(
            Opt(
                names=names,
                help=_clean(param.help),
                takes_value=not param.is_flag,
                choices=_choices(kind),
                is_path=kind is Path,
                metavar=metavar,
            )
        )
    options.append(Opt(help_names, "Show the help and exit.", takes_value=False))
    cmd = Cmd(path=path, help=_clean(command.help), options=options, args=args)
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
# Completion scripts: a function finds the command path in the words typed so far, then tables
# (generated below) give the subcommands, options, value-taking options and choices of a path.


def _value_options(cmd: Cmd) -> list[str]:
    return [n for o in cmd.options if o.takes_value for n in o.names]


def _sh_case(entries: list[tuple[str, str]], indent: str = "        ") -> str:
    return "\n".join(f'{indent}"{key}") echo "{value}" ;;' for key, value in entries if value)


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

_{PROG}() {{
    local cur prev word path="" skip=0 i
    COMPREPLY=()
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    # Walk the words before the cursor: options (and the values they take) are skipped, a word
    # naming a subcommand of the current path extends it.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
        --*=*) continue ;;
        -*)
            case " $(_{PROG}_value_options "$path") " in
            *" $word "*) skip=1 ;;
            esac
            continue
            ;;
        esac
        case " $(_{PROG}_subcommands "$path") " in
        *" $word "*) path="${{path:+$path }}$word" ;;
        esac
    done
    if ((skip)); then
        local key="${{path:+$path }}$prev"
        local values
        values="$(_{PROG}_choices "$key")"
        if [[ -n "$values" ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
        elif _{PROG}_path_option "$key"; then
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_options "$path")" -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_subcommands "$path")" -- "$cur")
    fi
    return 0
}}

complete -F _{PROG} {PROG}
"""


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_desc(name: str, help_text: str) -> str:
    short = help_text.split("\n", 1)[0]
    return _zsh_quote(f"{name}:{short}")


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

_{PROG}() {{
    local path="" word skip=0 i
    local -a reply names
    # Walk the words before the cursor, as the bash version does.
    for ((i = 2; i < CURRENT; i++)); do
        word="${{words[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
        --*=*) continue ;;
        -*)
            _{PROG}_value_options "$path"
            (( ${{reply[(Ie)$word]}} )) && skip=1
            continue
            ;;
        esac
        _{PROG}_subcommands "$path"
        names=(${{reply%%:*}})
        (( ${{names[(Ie)$word]}} )) && path="${{path:+$path }}$word"
    done
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
    if [[ "${{words[CURRENT]}}" == -* ]]; then
        _{PROG}_options "$path"
        _describe -t options option reply
    else
        _{PROG}_subcommands "$path"
        (( ${{#reply}} )) && _describe -t commands command reply
    fi
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
        "# The command path typed so far (subcommand words; options and their values skipped).",
        f"function __{PROG}_path",
        "    set -l tokens (commandline -opc)",
        "    set -e tokens[1]",
        '    set -l path ""',
        "    set -l skip 0",
        "    for word in $tokens",
        "        if test $skip -eq 1",
        "            set skip 0",
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
        f'        if contains -- $word (__{PROG}_subcommands "$path")',
        '            set path (string trim -- "$path $word")',
        "        end",
        "    end",
        '    echo "$path"',
        "end",
        "",
        f"function __{PROG}_at --description 'is the command path typed so far exactly argv[1]?'",
        f"    set -l path (__{PROG}_path)",
        '    test "$path" = "$argv[1]"',
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
    lines += ["    end", "end", "", f"complete -c {PROG} -f", ""]
    for c in tree.walk():
        cond = f'-n "__{PROG}_at {_fish_quote(" ".join(c.path))}"'
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
                extra = " -r"
                if o.choices:
                    extra += f" -a {_fish_quote(' '.join(o.choices))}"
                elif o.is_path:
                    extra += " -F"
            short = o.help.split("\n", 1)[0]
            lines.append(
                f"complete -c {PROG} {cond} {' '.join(spec)}{extra} -d {_fish_quote(short)}"
            )
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


def _command_section(cmd: Cmd) -> list[str]:
    out = [".SS " + _roff(cmd.full), _synopsis(cmd), ".PP", _paragraphs(cmd.help)]
    if cmd.args:
        for a in cmd.args:
            text = a.help or ("one of: " + ", ".join(a.choices) if a.choices else "")
            out += [".TP", f"\\fI{a.name}\\fR", _roff(text) or "(see above)"]
    out += _options_block(cmd)
    return out


def _header(name: str, version: str) -> list[str]:
    title = _roff(name.upper())
    return [
        f'.\\" Generated by scripts/gen_docs.py from the {PROG} CLI; do not edit.',
        f'.TH {title} 1 "" "{PROG} {version}" "User Commands"',
        ".nh",
        ".ad l",
    ]


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

_FILES = [
    (
        "/etc/systemd/system/filamentctl.service",
        "The unit written by `filamentctl service install`.",
    ),
    ("/etc/filamentctl/config.db", "The system service's encrypted configuration."),
    ("/var/lib/filamentctl/secrets/config.key", "Its key (mode 0600, owned by the service user)."),
    ("/var/lib/filamentctl/history.db", "The system service's local history."),
    (
        "/run/filamentctl/filamentctl.sock",
        "The system service's socket; members of its group may use it.",
    ),
    (
        "~/.config/filamentctl/, ~/.local/state/filamentctl/",
        "Configuration and history when you run the service as yourself.",
    ),
]

_EXIT = [
    ("0", "Success."),
    ("1", "The operation failed."),
    ("2", "Usage or validation error."),
    ("3", "No service is running."),
    ("4", "Permission denied."),
]


def _group_page_name(cmd: Cmd) -> str:
    return f"{PROG}-{'-'.join(cmd.path)}"


def main_page(tree: Cmd, version: str) -> str:
    groups = [c for c in tree.children if c.is_group]
    out = _header(PROG, version)
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
    out += [
        ".SH EXAMPLES",
        ".nf",
        _roff("filamentctl demo"),
        _roff("filamentctl status --json"),
        _roff("filamentctl heater on --for 2h"),
        _roff("sudo filamentctl service install --dry-run"),
        ".fi",
    ]
    see = [f"\\fB{_group_page_name(c)}\\fR(1)" for c in groups]
    out += [".SH SEE ALSO", ",\n".join([*see, "\\fBsystemctl\\fR(1)", "\\fBjournalctl\\fR(1)"])]
    return "\n".join(out) + "\n"


def group_page(group: Cmd, version: str) -> str:
    name = _group_page_name(group)
    out = _header(name, version)
    out += [".SH NAME", f"{_roff(name)} \\- {_roff(group.short.rstrip('.'))}"]
    out += [".SH SYNOPSIS", _synopsis(group)]
    out += [".SH DESCRIPTION", _paragraphs(group.help)]
    out += [".SH COMMANDS"]
    for child in group.children:
        out += _command_section(child)
    out += [".SH SEE ALSO", f"\\fB{PROG}\\fR(1)"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    """Relative path → file content, for every generated file."""
    from filamentctl import __version__ as version

    tree = command_tree()
    files = {
        f"completions/{PROG}.bash": bash_completion(tree, version),
        f"completions/_{PROG}": zsh_completion(tree, version),
        f"completions/{PROG}.fish": fish_completion(tree, version),
        f"man/{PROG}.1": main_page(tree, version),
    }
    for c in tree.children:
        if c.is_group:
            files[f"man/{_group_page_name(c)}.1"] = group_page(c, version)
    files["docs/configuration.md"] = configuration_reference(version)
    return files


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
        default = "(secret)" if key.secret else schema.format_value(key.name, key.default)
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
