"""The docs test's engine (``tests/docs/runner.py``): it finds every shell block, classifies every
command by an explicit rule, compares output in substance, and FAILS on a broken block — shown
here on temporary documents run against the real CLI, including the user guide's First
configuration as it was when it broke (the band's minimum set before its maximum)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.docs.runner import (
    RULES,
    STDIN_RULES,
    Command,
    DocRun,
    Outcome,
    commands_of,
    extract_blocks,
    parse_note,
    rule_for,
    stdin_for,
    substance_problem,
)
from tests.helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def md(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_blocks_come_with_language_line_body_and_the_annotation_right_before_them() -> None:
    text = md(
        """
        Intro.

        <!-- docs-test: skip: not here -->

        ```sh
        filamentctl status
        ```

        <!-- docs-test: new box -->
        A paragraph in between: the annotation no longer applies.

        1. In a list:

           ```console
           $ filamentctl dry start pla
           drying PLA at 50 °C
           ```

        ~~~text
        plain
        ~~~
        """
    )
    blocks = extract_blocks(text, "x.md")
    assert [(b.line, b.lang, b.note) for b in blocks] == [
        (5, "sh", "skip: not here"),
        (14, "console", None),
        (19, "text", None),
    ]
    assert blocks[0].lines == ((6, "filamentctl status"),)
    assert [t for _, t in blocks[1].lines] == ["$ filamentctl dry start pla", "drying PLA at 50 °C"]


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="x.md:2: the block opened here is never closed"):
        extract_blocks("text\n```sh\nfilamentctl status\n", "x.md")


def test_commands_join_continuations_and_leave_out_comments_and_blank_lines() -> None:
    (block,) = extract_blocks(
        md(
            """
            ```sh
            # a comment line

            filamentctl config set a 1   # trailing comments stay (bash drops them)
            sudo -u filamentctl env A=1 \\
                filamentctl config init
            ```
            """
        ),
        "x.md",
    )
    assert [(c.line, c.text) for c in commands_of(block)] == [
        (4, "filamentctl config set a 1   # trailing comments stay (bash drops them)"),
        (5, "sudo -u filamentctl env A=1 filamentctl config init"),
    ]


def test_console_blocks_pair_each_command_with_the_output_shown_after_it() -> None:
    (block,) = extract_blocks(
        md(
            """
            ```console
            $ filamentctl dry start pla
            drying PLA at 50 °C
              ends when the filament is dry

            $ filamentctl dry stop
            ```
            """
        ),
        "x.md",
    )
    first, second = commands_of(block)
    assert first.text == "filamentctl dry start pla"
    assert first.expected == ("drying PLA at 50 °C", "  ends when the filament is dry")
    assert (second.text, second.expected) == ("filamentctl dry stop", ())


STATUS_SHOWN = """\
filamentctl 0.1.0 — up 6.3 s, 7 readings (simulated)
  reading   22.1 °C (71.8 °F)  49.5 %RH  dew point 11.0 °C  abs 9.6 g/m³  — 0.1 s old (#7)
  heater    ON [auto] pin level 1 — auto: 22.1 °C < 26.0 °C
  fan       ON [auto] pin level 1 — auto: 49.5 % > 40.0 %
""".splitlines()

STATUS_REAL = """\
filamentctl 0.1.0 — up 2.0 s, 2 readings (simulated)
  reading   21.98 °C (71.6 °F)  50.0 %RH  dew point 11.1 °C  abs 9.7 g/m³  — 0.4 s old (#2)
  sensor    simulated: OK, 0 errors, 0 rejected
  heater    ON [auto] pin level 1 — auto: 22.0 °C < 26.0 °C
  fan       ON [auto] pin level 1 — auto: 50.0 % > 40.0 %
"""


def test_output_matches_in_substance_when_only_numbers_and_spacing_differ() -> None:
    assert substance_problem(STATUS_SHOWN, STATUS_REAL) is None
    shown = ["drying PLA … capped by dry.max_temp_c)"]
    assert (
        substance_problem(shown, "drying PLA at 50 °C (profile 55 °C, capped by dry.max_temp_c)")
        is None
    )


@pytest.mark.parametrize(
    ("real", "missing"),
    [
        (STATUS_REAL.replace("heater    ON", "heater    OFF"), "heater    ON [auto]"),
        (STATUS_REAL.replace("pin level", "level"), "heater    ON [auto]"),
        ("\n".join(STATUS_REAL.splitlines()[:3]), "heater    ON [auto]"),
        # the right lines in the wrong order
        ("\n".join(reversed(STATUS_REAL.splitlines())), ""),
    ],
    ids=["other-word", "renamed", "line-missing", "other-order"],
)
def test_output_that_says_something_else_does_not_match(real: str, missing: str) -> None:
    problem = substance_problem(STATUS_SHOWN, real)
    assert problem is not None and "no line like" in problem
    if missing:
        assert missing in problem


@pytest.mark.parametrize(
    ("command", "action"),
    [
        ("filamentctl status", None),
        ("filamentctl status --json | jq .reading.humidity", None),
        ("filamentctl run --simulate          # the service", "service"),
        ("filamentctl run", "service"),
        ("sudo filamentctl service install --dry-run    # look first", "without-sudo"),
        ("sudo filamentctl service install              # user, unit", "skip"),
        ("sudo filamentctl service install    # a hardened systemd unit; --dry-run first", "skip"),
        ("sudo -u filamentctl filamentctl mqtt --remove-discovery", "skip"),
        ("filamentctl mqtt --remove-discovery", None),
        ("filamentctl web --listen 0.0.0.0:8780", "skip"),
        ("fcsys config init", "skip"),
        ("filamentctl tui", "skip"),
        ("ssh pi@drybox filamentctl status", "skip"),
    ],
)
def test_each_command_gets_the_rule_its_text_calls_for(command: str, action: str | None) -> None:
    rule = rule_for(command)
    assert (rule.action if rule else None) == action


def test_secrets_and_pastes_get_test_input_and_other_commands_none() -> None:
    inputs = {"notify_url": "json://127.0.0.1:9/x"}
    assert stdin_for("filamentctl config set notify.urls -   # paste", inputs) == (
        "json://127.0.0.1:9/x\n"
    )
    # a prompt asks twice; '-' reads once
    prompted = stdin_for("filamentctl config set database.influxdb_v2.token  # prompts", inputs)
    assert prompted.count("\n") == 2
    assert stdin_for("filamentctl config set web.token -", inputs).count("\n") == 1
    assert stdin_for("filamentctl config set heater.min_temp_c 45", inputs) == ""


def test_annotations_are_parsed_and_an_unknown_one_is_refused() -> None:
    assert parse_note("skip: needs a Pi").skip == "needs a Pi"
    assert parse_note("new box").new_box
    note = parse_note("output of `filamentctl status` on the demo box")
    assert (note.output_of, note.demo_box) == ("filamentctl status", True)
    for bad in ("skip", "skip:", "skipp: typo", "output of filamentctl status"):
        with pytest.raises(ValueError, match="unknown docs-test annotation"):
            parse_note(bad)


def doc_commands() -> list[Command]:
    out = []
    for path in DOCS:
        for block in extract_blocks(path.read_text(encoding="utf-8"), path.name):
            if block.lang in ("sh", "bash", "shell", "console"):
                out += commands_of(block)
    return out


def test_every_rule_and_input_is_used_by_a_doc_and_says_why() -> None:
    """The lists stay reviewed: no rule without a reason, none left over from deleted docs."""
    texts = [c.text for c in doc_commands()]
    for rule in RULES:
        assert len(rule.reason) > 20, rule
        assert any(rule.matches(t) for t in texts), f"no doc command matches {rule.pattern!r}"
    for pattern, _ in STDIN_RULES:
        assert any(re.match(pattern, t) for t in texts), f"no doc command matches {pattern!r}"


def test_every_annotation_in_the_docs_is_one_the_engine_knows() -> None:
    for path in DOCS:
        for block in extract_blocks(path.read_text(encoding="utf-8"), path.name):
            parse_note(block.note)  # raises for a typo


# --- Against the real CLI: a broken block fails the docs test. -----------------------------


def run_doc(tmp_path: Path, text: str) -> list[Outcome]:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    return DocRun({"notify_url": "json://127.0.0.1:9/unused"}).run_document(path)


@pytest.mark.slow
def test_the_first_configuration_as_it_was_when_it_broke_fails(tmp_path: Path) -> None:
    guide = (REPO / "docs" / "user-guide.md").read_text(encoding="utf-8")
    fixed = (
        "filamentctl config set heater.min_temp_c 45 heater.max_temp_c 50 heater.cutoff_temp_c 60"
    )
    assert fixed in guide
    # The broken version: one key per command, the minimum first (above the default max 22).
    broken_block = guide.split("## First configuration", 1)[1].split("```sh\n", 1)[1]
    broken_block = broken_block.split("```", 1)[0].replace(
        fixed,
        "filamentctl config set heater.min_temp_c 45\nfilamentctl config set heater.max_temp_c 50",
    )
    outcomes = run_doc(tmp_path, f"```sh\n{broken_block}```\n")
    failed = [o for o in outcomes if o.status == "failed"]
    assert [o.command for o in failed] == ["filamentctl config set heater.min_temp_c 45"], outcomes
    assert "exit 2" in failed[0].detail and "heater.max_temp_c" in failed[0].detail
    # ...and the same block as the guide has it now passes (the failure above is specific).
    fixed_block = broken_block.replace(
        "filamentctl config set heater.min_temp_c 45\nfilamentctl config set heater.max_temp_c 50",
        fixed,
    )
    outcomes = run_doc(tmp_path, f"```sh\n{fixed_block}```\n")
    assert [o.status for o in outcomes] == ["ran"] * len(outcomes), outcomes


@pytest.mark.slow
def test_wrong_output_a_missing_field_a_bad_command_and_skips_are_reported(tmp_path: Path) -> None:
    outcomes = run_doc(
        tmp_path,
        md(
            """
            ```sh
            filamentctl config init
            filamentctl config path --json | jq .key_file
            filamentctl config path --json | jq .no_such_field
            filamentctl config sett heater.enabled true
            sudo reboot
            ```

            ```console
            $ filamentctl config get heater.max_temp_c
            22.0
            $ filamentctl config get heater.enabled
            true
            ```

            <!-- docs-test: skip: shows the skip annotation -->
            ```sh
            filamentctl no-such-command
            ```

            ```text
            filamentctl no-such-command
            ```

            ```
            filamentctl status
            ```
            """
        ),
    )
    got = {(o.command, o.status) for o in outcomes}
    assert got == {
        ("filamentctl config init", "ran"),
        ("filamentctl config path --json | jq .key_file", "ran"),
        ("filamentctl config path --json | jq .no_such_field", "failed"),
        ("filamentctl config sett heater.enabled true", "failed"),
        ("sudo reboot", "skipped"),
        ("filamentctl config get heater.max_temp_c", "ran"),
        ("filamentctl config get heater.enabled", "failed"),
        ("filamentctl no-such-command", "skipped"),
        ("```", "failed"),  # the untagged block of commands
    }, outcomes
    detail = {o.command: o.detail for o in outcomes}
    assert "jq printed null" in detail["filamentctl config path --json | jq .no_such_field"]
    assert "exit 2" in detail["filamentctl config sett heater.enabled true"]
    assert "no line like 'true'" in detail["filamentctl config get heater.enabled"]
    assert detail["filamentctl no-such-command"] == "shows the skip annotation"


@pytest.mark.slow
def test_a_service_that_does_not_start_fails(tmp_path: Path) -> None:
    outcomes = run_doc(tmp_path, "```sh\nfilamentctl run --no-such-flag\n```\n")
    assert [o.status for o in outcomes] == ["failed"], outcomes
    assert "the service exited with 2" in outcomes[0].detail
