"""Completions and man pages are generated from the CLI and committed; they must not drift.

When a test here fails after a CLI change, run ``python scripts/gen_docs.py`` and commit the
result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from filamentctl.cli.main import app
from tests.servers import unavailable

REPO = Path(__file__).resolve().parents[2]
GENERATED_DIRS = ("completions", "man")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} is not installed")
    return path


def cli_commands() -> list[tuple[str, ...]]:
    """Every visible command path of the real CLI (e.g. ``("heater", "on")``)."""
    root: Any = typer.main.get_command(app)
    commands = dict(root.commands)
    out: list[tuple[str, ...]] = []

    def walk(children: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for name, cmd in children.items():
            if getattr(cmd, "hidden", False):
                continue
            out.append((*prefix, name))
            walk(getattr(cmd, "commands", {}), (*prefix, name))

    walk(commands, ())
    return out


GENERATED_FILES = (  # beside files written by hand
    "docs/configuration.md",
    "filamentctl/cli/help_text.py",
)


def files_under(base: Path) -> dict[str, bytes]:
    found = {
        str(p.relative_to(base)): p.read_bytes()
        for d in GENERATED_DIRS
        for p in sorted((base / d).rglob("*"))
        if p.is_file()
    }
    found.update({f: (base / f).read_bytes() for f in GENERATED_FILES if (base / f).exists()})
    return found


def render(page: Path) -> str:
    man = need("man")
    proc = subprocess.run(
        [man, "--warnings", "-l", str(page)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANWIDTH": "200", "MANPAGER": "cat", "PAGER": "cat"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"roff warnings in {page.name}: {proc.stderr}"
    return proc.stdout


def test_committed_completions_and_man_pages_match_the_cli(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = files_under(tmp_path)
    committed = files_under(REPO)
    assert sorted(committed) == sorted(fresh), "run: python scripts/gen_docs.py"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert drifted == [], f"out of date: {drifted}; run: python scripts/gen_docs.py"


def test_main_man_page_renders_and_documents_every_command() -> None:
    text = render(REPO / "man" / "filamentctl.1")
    missing = [
        " ".join(path) for path in cli_commands() if f"filamentctl {' '.join(path)}" not in text
    ]
    assert missing == []
    for section in ("SYNOPSIS", "COMMANDS", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        assert section in text


def test_each_command_group_has_a_page_documenting_its_commands() -> None:
    groups = {path[0] for path in cli_commands() if len(path) > 1}
    assert groups >= {"config", "heater", "fan", "sim", "service"}
    for group in sorted(groups):
        text = render(REPO / "man" / f"filamentctl-{group}.1")
        subcommands = [p for p in cli_commands() if len(p) == 2 and p[0] == group]
        assert subcommands
        for path in subcommands:
            assert f"filamentctl {' '.join(path)}" in text


@pytest.mark.parametrize(
    ("shell", "script"),
    [
        ("bash", "filamentctl.bash"),
        ("zsh", "_filamentctl"),
        ("fish", "filamentctl.fish"),
    ],
)
def test_completion_scripts_are_valid_shell(shell: str, script: str) -> None:
    exe = need(shell)  # .ci/run installs zsh and fish; locally they may be missing
    proc = subprocess.run(
        [exe, "-n", str(REPO / "completions" / script)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def bash_complete(*words: str) -> list[str]:
    """What bash offers for ``filamentctl WORDS...<TAB>`` with the shipped completion."""
    script = (
        f"source {REPO / 'completions' / 'filamentctl.bash'}\n"
        'COMP_WORDS=(filamentctl "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n'
        '_filamentctl; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        [need("bash"), "-c", script, "bash", *words], capture_output=True, text=True, check=True
    )
    return [line for line in proc.stdout.splitlines() if line]


def test_bash_completes_top_level_and_group_commands_from_the_cli() -> None:
    top = sorted(p[0] for p in cli_commands() if len(p) == 1)
    assert bash_complete("") == top
    heater = sorted(p[1] for p in cli_commands() if len(p) == 2 and p[0] == "heater")
    # Global options with values before the command are skipped over.
    assert bash_complete("--socket", "/tmp/x.sock", "heater", "") == heater
    assert "--for" in bash_complete("heater", "on", "--")


def test_man_pages_pass_mandoc_lint_with_no_message_at_all() -> None:
    """``mandoc -Tlint`` (every level, style included) finds nothing: the pages have a date and
    no over-long source lines."""
    mandoc = need("mandoc")
    pages = sorted(str(p) for p in (REPO / "man").glob("*.1"))
    assert len(pages) >= 6
    proc = subprocess.run([mandoc, "-Tlint", *pages], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_man_pages_are_dated_from_the_changelog_entry_of_their_version(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_docs
    finally:
        sys.path.remove(str(REPO / "scripts"))
    from filamentctl import __version__

    date = gen_docs.release_date(__version__)
    for page in (REPO / "man").glob("*.1"):
        th = next(line for line in page.read_text().splitlines() if line.startswith(".TH "))
        assert f'"{date}"' in th, th
    undated = tmp_path / "CHANGELOG.md"
    undated.write_text(f"# Changelog\n\n## [{__version__}]\n\n- something\n")
    with pytest.raises(SystemExit, match="needs a date"):
        gen_docs.release_date(__version__, undated)
    dated = tmp_path / "CHANGELOG2.md"
    dated.write_text(f"## [Unreleased]\n\n## [{__version__}] — 2027-01-02\n")
    assert gen_docs.release_date(__version__, dated) == "2027-01-02"


def test_every_command_section_of_the_man_pages_has_examples() -> None:
    for page in sorted((REPO / "man").glob("*.1")):
        text = page.read_text()
        sections = text.split("\n.SS ")[1:]
        assert all("Examples:" in section for section in sections), page.name
        assert ".SH EXAMPLES" in text, page.name
