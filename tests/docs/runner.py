"""The docs test's engine: run the shell blocks of a Markdown document on a simulated box.

What runs: every fenced block tagged ``sh``, ``bash``, ``shell`` or ``console``, in document
order, one command at a time (a line with its backslash continuations; in a ``console`` block the
``$ `` lines, and the lines after one are its documented output). Each command goes through
``bash -o pipefail -c`` (so ``$(...)``, pipes to ``jq`` and ``||`` behave as in a terminal) with
``PATH`` starting at a ``filamentctl`` that runs this checkout, in one box: its own
``FILAMENTCTL_HOME``, ``HOME`` and working directory, so later commands see what earlier ones
did (``config init``, ``config set``, a started service, a file written with ``>``). A shell
variable a line assigns (``rh=$(...)``) is kept for the lines after it.

What a simulated box is: ``FILAMENTCTL_SENSOR__TYPE=simulated`` (an environment override, which
outranks the stored ``sensor.type``: whatever sensor the docs configure, the box has the
simulated one) and ``GPIOZERO_PIN_FACTORY=mock`` (gpiozero's own switch to its mock pins), so
the documented commands run unchanged, ``filamentctl run`` included.

What each command must do: exit 0, print no traceback, and, in a ``console`` block, print what
the document shows in substance (:func:`substance_problem`). A ``jq`` filter that prints
``null`` names a field that does not exist, which fails too.

What does not run, and why, is explicit: a ``<!-- docs-test: skip: REASON -->`` annotation right
before a block, or one of the reviewed :data:`RULES` below (each with its reason). Every skipped
command is reported with its reason. The other annotations (see :func:`parse_note`) say which
box a block runs in, or which command a plain output block shows.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import REPO, raw_request, short_home

SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})
COMMAND_TIMEOUT_S = 90.0
SERVICE_START_TIMEOUT_S = 30.0
OUTPUT_WAIT_S = 30.0
STOP = "Ctrl+C (the service, when the box is done)"

# The environment that makes a box simulated (see the module docstring).
SIMULATED_BOX_ENV = {
    "FILAMENTCTL_SENSOR__TYPE": "simulated",
    "GPIOZERO_PIN_FACTORY": "mock",
}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_NOTE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<text>.*?)\s*-->\s*$")
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_UNTAGGED_COMMAND = re.compile(r"(\$ )?(sudo )?filamentctl [a-z]")


@dataclass(frozen=True)
class Block:
    """A fenced block: where it starts, its language, its lines (numbered) and its annotation."""

    doc: str
    line: int
    lang: str
    lines: tuple[tuple[int, str], ...]
    note: str | None = None


@dataclass(frozen=True)
class Command:
    """One command of a block, as bash gets it; ``expected`` is the output a console block shows."""

    doc: str
    line: int
    text: str
    expected: tuple[str, ...] | None = None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass(frozen=True)
class Rule:
    """What to do with the commands whose text ``pattern`` matches (at the start), and why."""

    pattern: str
    action: str  # "skip", "service" (start it in the background), "without-sudo"
    reason: str

    def matches(self, text: str) -> bool:
        return re.match(self.pattern, text) is not None


# The reviewed list: commands a simulated box on a test machine cannot or must not run, and the
# two that run differently from a terminal. The first matching rule applies.
RULES: tuple[Rule, ...] = (
    Rule(
        r"sudo filamentctl service install\b[^#]*--dry-run",
        "without-sudo",
        "--dry-run prints the units and changes nothing, so it needs no root",
    ),
    Rule(
        r"sudo\b",
        "skip",
        "changes the machine as root (packages, users, systemd units, /etc, /opt)",
    ),
    Rule(
        r"(alias )?fcsys\b",
        "skip",
        "the installed system service's configuration, as its user through sudo",
    ),
    Rule(
        r"filamentctl service status\b",
        "skip",
        "reports on the unit 'sudo filamentctl service install' installs (not installed here)",
    ),
    Rule(r"ssh\b", "skip", "runs on another machine"),
    Rule(r"journalctl\b", "skip", "reads the journal of an installed systemd unit"),
    Rule(
        r"(\./dev|filamentctl) demo\b|filamentctl tui\b",
        "skip",
        "the dashboard needs an interactive terminal (tests/tui drives it under Pilot and tmux)",
    ),
    Rule(
        r"filamentctl (web|mqtt)\b(?![^#]*--remove-discovery)",
        "skip",
        "a gateway that runs until stopped, on fixed ports (tests/gateways runs both)",
    ),
    Rule(
        r"filamentctl run\b",
        "service",
        "the service runs in the foreground: it starts in the background as the box's service "
        "and is stopped with Ctrl+C (SIGINT), which must exit 0",
    ),
    Rule(r"curl\b", "skip", "talks to the web gateway of a box on the network ($BOX)"),
    Rule(
        r"\./dev test\b",
        "skip",
        "the whole suite, which this test is part of",
    ),
    Rule(r"\./dev lock\b", "skip", "rewrites the lock files from the package index"),
    Rule(
        r"/opt/filamentctl/bin/",
        "skip",
        "the venv the line before creates as root (tests/ops/test_wheel.py builds the wheel and "
        "installs it with requirements.lock into a fresh venv)",
    ),
    Rule(
        r"(python3? -m build|pipx install)\b",
        "skip",
        "builds or installs the package from the index (tests/ops/test_wheel.py builds the wheel)",
    ),
    Rule(
        r"\.venv/bin/python scripts/gen_docs\.py\b",
        "skip",
        "tests/ops/test_generated_docs.py runs the check (without --check it rewrites the tree)",
    ),
    Rule(r"man\b", "skip", "reads the installed man pages (tests/ops renders man/ directly)"),
)


def rule_for(text: str) -> Rule | None:
    """The first rule that matches ``text``, or None (the command runs)."""
    return next((rule for rule in RULES if rule.matches(text)), None)


# Input for the commands that read a secret or a pasted value from stdin. ``{notify_url}`` is
# the test's own notification receiver.
STDIN_RULES: tuple[tuple[str, str], ...] = (
    (r"filamentctl config set notify\.urls\b", "{notify_url}\n"),
    # A prompt asks twice (the second time to confirm).
    (r"filamentctl config set \S+(\s*#.*)?$", "docs-test-secret\ndocs-test-secret\n"),
    (r"filamentctl config set \S+ -", "docs-test-secret\n"),
    (r"printf 'Authorization: Bearer ' > ~/\.drybox-auth && cat\b", "docs-test-web-token\n"),
)


def stdin_for(text: str, inputs: Mapping[str, str]) -> str:
    """What the command gets on stdin: a test value for a secret or a paste, else nothing."""
    for pattern, value in STDIN_RULES:
        if re.match(pattern, text):
            return value.format(**inputs)
    return ""


@dataclass(frozen=True)
class Note:
    """A parsed ``<!-- docs-test: ... -->`` annotation."""

    skip: str | None = None  # skip the block, for this reason
    new_box: bool = False  # run it in a new box, prepared like the document's
    output_of: str | None = None  # a plain block: the output of this command...
    demo_box: bool = False  # ...in a new box running with the demo's settings


def parse_note(text: str | None) -> Note:
    """The annotation's meaning. ValueError for an annotation this engine does not know.

    ``skip: REASON`` · ``new box`` · ``output of `CMD` on the demo box``
    """
    if text is None:
        return Note()
    if text.startswith("skip:") and text[5:].strip():
        return Note(skip=text[5:].strip())
    if text == "new box":
        return Note(new_box=True)
    match = re.fullmatch(r"output of `(?P<cmd>[^`]+)`(?P<demo> on the demo box)?", text)
    if match:
        return Note(output_of=match["cmd"], demo_box=bool(match["demo"]))
    raise ValueError(f"unknown docs-test annotation {text!r}")


def extract_blocks(text: str, doc: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the annotation right before it (if any)."""
    blocks: list[Block] = []
    note: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            found = _NOTE.match(line)
            if found:
                note = found["text"]
            elif line.strip():
                note = None
            i += 1
            continue
        indent, mark = len(fence["indent"]), fence["fence"]
        body: list[tuple[int, str]] = []
        start = i + 1
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(mark[0] * len(mark)) and not stripped.strip(mark[0]):
                break
            raw = lines[i]
            # The fence's own indentation (a block inside a list item) is not part of the text.
            inside = raw[:indent].isspace() or indent == 0
            body.append((i + 1, raw[indent:] if inside else raw.lstrip()))
            i += 1
        else:
            raise ValueError(f"{doc}:{start}: the block opened here is never closed")
        blocks.append(Block(doc, start, fence["info"].lower(), tuple(body), note))
        note = None
        i += 1
    return blocks


def _logical_lines(lines: Sequence[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Lines with their backslash continuations joined, numbered by their first line."""
    pending: list[str] = []
    first = 0
    for number, text in lines:
        if not pending:
            first = number
        if text.rstrip().endswith("\\"):
            pending.append(text.rstrip()[:-1])
            continue
        pending.append(text)
        yield first, " ".join(part.strip() for part in pending)
        pending = []
    if pending:
        yield first, " ".join(part.strip() for part in pending)


def commands_of(block: Block) -> list[Command]:
    """The commands of a shell block (blank and comment-only lines are no commands)."""
    if block.lang == "console":
        out: list[Command] = []
        current: tuple[int, list[str]] | None = None
        output: list[str] = []
        for number, text in block.lines:
            if text.startswith("$ "):
                if current is not None:
                    out.append(_console_command(block, current, output))
                current, output = (number, [text[2:]]), []
            elif current is not None and current[1][-1].rstrip().endswith("\\") and not output:
                current[1].append(text.removeprefix("> "))
            elif current is not None:
                output.append(text)
        if current is not None:
            out.append(_console_command(block, current, output))
        return out
    return [
        Command(block.doc, number, text)
        for number, text in _logical_lines(block.lines)
        if text.strip() and not text.lstrip().startswith("#")
    ]


def _console_command(block: Block, current: tuple[int, list[str]], output: list[str]) -> Command:
    number, parts = current
    text = " ".join(p.rstrip().removesuffix("\\").strip() for p in parts)
    while output and not output[-1].strip():
        output.pop()
    return Command(block.doc, number, text, tuple(output))


def _line_pattern(line: str) -> re.Pattern[str]:
    parts = []
    for token in line.split():
        if token in ("…", "..."):
            parts.append(r".*?")
            continue
        pieces = _NUMBER.split(token)
        parts.append(r"-?\d+(?:[.,]\d+)?".join(re.escape(piece) for piece in pieces))
    return re.compile(r"\s+".join(parts))


def substance_problem(expected: Sequence[str], actual: str) -> str | None:
    """None when the output says what the document shows; else what is missing.

    In substance: every non-blank line shown must match a line of the output, in order, word
    for word, except that numbers may differ (a reading, a time, a count) and ``…`` stands for
    anything. Spacing is free (table columns), and the output may have more lines.
    """
    wanted = [line.strip() for line in expected if line.strip()]
    got = [line.strip() for line in actual.splitlines() if line.strip()]
    position = 0
    for line in wanted:
        pattern = _line_pattern(line)
        while position < len(got) and not pattern.fullmatch(got[position]):
            position += 1
        if position == len(got):
            return f"no line like {line!r} (in this order) in the output"
        position += 1
    return None


@dataclass
class Outcome:
    """What happened to one command: ``ran``, ``skipped`` (with the reason) or ``failed``."""

    where: str
    command: str
    status: str
    detail: str = ""

    def __str__(self) -> str:
        head = f"{self.where}: {self.status}: {self.command}"
        return f"{head}\n    {self.detail}" if self.detail else head


def _jq_null(output: str) -> bool:
    """Whether jq printed a null of its own (a missing field), not one inside printed JSON."""
    return any(
        line.strip() == "null" or (re.search(r"\bnull\b", line) and '":' not in line)
        for line in output.splitlines()
    )


def _shim(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "filamentctl"
    shim.write_text(
        "#!/bin/sh\n"
        "# filamentctl from this checkout, with the interpreter running the tests\n"
        f"PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f'exec {shlex.quote(sys.executable)} -m filamentctl "$@"\n'
    )
    shim.chmod(0o755)


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


@dataclass
class Box:
    """One simulated box: its FILAMENTCTL_HOME, a HOME and working directory, at most one
    service (started by a documented ``filamentctl run``), and the variables the docs set."""

    inputs: Mapping[str, str]
    extra_env: Mapping[str, str] = field(default_factory=dict)
    home: Path = field(default_factory=short_home)
    service: subprocess.Popen[bytes] | None = None
    variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="fcdocs-"))
        self.work = self.scratch / "work"
        self.work.mkdir()
        _shim(self.scratch / "bin")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
        env.pop("CONFIGURATION_DIRECTORY", None)
        env.pop("STATE_DIRECTORY", None)
        env.pop("RUNTIME_DIRECTORY", None)
        self.env = {
            **env,
            **SIMULATED_BOX_ENV,
            **self.extra_env,
            "FILAMENTCTL_HOME": str(self.home),
            "HOME": str(self.work),
            "PATH": f"{self.scratch / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        }

    @property
    def socket(self) -> Path:
        return self.home / "run" / "filamentctl.sock"

    def run(self, command: Command) -> Outcome:
        """Run one command as the document says; an Outcome saying what happened."""
        rule = rule_for(command.text)
        if rule is not None and rule.action == "skip":
            return Outcome(command.where, command.text, "skipped", rule.reason)
        if rule is not None and rule.action == "service":
            return self.start_service(command)
        text = command.text
        if rule is not None and rule.action == "without-sudo":
            text = text.removeprefix("sudo ")
        result = self.shell(text, stdin_for(command.text, self.inputs))
        problem = self._problem(command, result)
        status = "failed" if problem else "ran"
        return Outcome(command.where, command.text, status, problem or "")

    def shell(self, text: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """``text`` through bash in this box; a variable it assigns is kept for later lines."""
        assigned = _ASSIGNMENT.match(text)
        script = text
        var_file = self.scratch / "assigned"
        if assigned:
            name = assigned["name"]
            script = (
                f"{text}\n__rc=$?\n"
                f'if [ -n "${{{name}+set}}" ]; then printf %s "${name}" > {var_file}; fi\n'
                "exit $__rc"
            )
        var_file.unlink(missing_ok=True)
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", script],
            env={**self.env, **self.variables},
            cwd=self.work,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            # No controlling terminal: a prompt reads the test's stdin, never the developer's tty.
            start_new_session=True,
        )
        if assigned and var_file.exists():
            self.variables[assigned["name"]] = var_file.read_text()
        return result

    @staticmethod
    def _problem(command: Command, result: subprocess.CompletedProcess[str]) -> str | None:
        said = f"stdout: {_tail(result.stdout)!r}; stderr: {_tail(result.stderr)!r}"
        if result.returncode != 0:
            return f"exit {result.returncode}, the docs imply 0; {said}"
        if "Traceback (most recent call last)" in result.stderr:
            return f"printed a traceback; {said}"
        if command.expected is not None:
            problem = substance_problem(command.expected, result.stdout)
            if problem:
                return f"{problem}; the output was:\n{result.stdout}"
        if re.search(r"\|\s*jq\b", command.text) and _jq_null(result.stdout):
            return f"jq printed null: a field the filter names is missing; {said}"
        return None

    def start_service(self, command: Command) -> Outcome:
        """A documented ``filamentctl run``: start it in the background, wait until it answers."""
        stopped = self.stop_service()
        if stopped is not None and stopped.status == "failed":
            return stopped
        log = open(self.scratch / "service.log", "ab")  # noqa: SIM115 - handed to the child
        self.service = subprocess.Popen(
            ["bash", "-c", f"exec {command.text}"],
            env={**self.env, **self.variables},
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                code, self.service = self.service.returncode, None
                detail = f"the service exited with {code}: {_tail(self.service_log())}"
                return Outcome(command.where, command.text, "failed", detail)
            # Started as a person sees it: the next command, typed in another terminal a few
            # seconds later, finds a first reading.
            try:
                reply = raw_request(self.socket, b'{"id":1,"op":"status"}\n', timeout=1)[0]
                if reply.get("ok") and reply["result"].get("reading"):
                    return Outcome(command.where, command.text, "ran", "(in the background)")
            except (OSError, IndexError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        detail = f"no answer on {self.socket} after {SERVICE_START_TIMEOUT_S:.0f} s"
        return Outcome(command.where, command.text, "failed", detail)

    def service_log(self) -> str:
        path = self.scratch / "service.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_service(self) -> Outcome | None:
        """Ctrl+C for the running service (the docs' way to stop it): it must exit 0."""
        proc, self.service = self.service, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return Outcome("service", STOP, "failed", "still running 30 s after Ctrl+C")
        if proc.returncode != 0:
            detail = f"exit {proc.returncode} after Ctrl+C: {_tail(self.service_log())}"
            return Outcome("service", STOP, "failed", detail)
        return Outcome("service", STOP, "ran")

    def close(self) -> Outcome | None:
        """Stop the service (an Outcome saying how) and remove the box's directories."""
        try:
            return self.stop_service()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.rmtree(self.scratch, ignore_errors=True)


def _skipped(command: Command) -> bool:
    rule = rule_for(command.text)
    return rule is not None and rule.action == "skip"


class _LazyBox:
    """The document's box, made (and prepared) when the first command that runs needs it: a
    page whose commands are all skipped costs nothing."""

    def __init__(self, make: Callable[[], Box]) -> None:
        self._make = make
        self.made: Box | None = None

    def run(self, command: Command) -> Outcome:
        if _skipped(command):
            rule = rule_for(command.text)
            assert rule is not None
            return Outcome(command.where, command.text, "skipped", rule.reason)
        if self.made is None:
            self.made = self._make()
        return self.made.run(command)


@dataclass
class DocRun:
    """Runs documents, each in a box of its own, prepared by ``setup`` commands if given."""

    inputs: Mapping[str, str]
    outcomes: list[Outcome] = field(default_factory=list)

    def run_document(self, path: Path, setup: Sequence[Command] = ()) -> list[Outcome]:
        """Every shell block of ``path`` in order, in one box; the outcomes (also kept)."""
        doc = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        blocks = extract_blocks(path.read_text(encoding="utf-8"), doc)
        start = len(self.outcomes)
        box = _LazyBox(lambda: self._prepared_box(setup))
        try:
            for block in blocks:
                self._run_block(block, box, setup)
        finally:
            if box.made is not None:
                self._close(box.made)
        return self.outcomes[start:]

    def _prepared_box(self, setup: Sequence[Command], **env: str) -> Box:
        box = Box(self.inputs, env)
        for command in setup:
            outcome = box.run(command)
            if outcome.status == "failed":
                outcome.detail = f"(preparing the box) {outcome.detail}"
                self.outcomes.append(outcome)
        return box

    def _close(self, box: Box) -> None:
        outcome = box.close()
        if outcome is not None:
            self.outcomes.append(outcome)

    def _run_block(self, block: Block, box: _LazyBox, setup: Sequence[Command]) -> None:
        try:
            note = parse_note(block.note)
        except ValueError as exc:
            self.outcomes.append(
                Outcome(f"{block.doc}:{block.line}", "(annotation)", "failed", str(exc))
            )
            return
        if note.output_of is not None:
            self._check_output_block(block, note)
            return
        if block.lang not in SHELL_LANGS:
            if not block.lang and any(_UNTAGGED_COMMAND.match(t) for _, t in block.lines):
                # It would be skipped without anyone noticing: say what it is instead.
                detail = "commands in an untagged block: tag it sh or console (or annotate it)"
                self.outcomes.append(Outcome(f"{block.doc}:{block.line}", "```", "failed", detail))
            return
        commands = commands_of(block)
        if note.skip is not None:
            self.outcomes += [Outcome(c.where, c.text, "skipped", note.skip) for c in commands]
            return
        if not note.new_box:
            self.outcomes += [box.run(command) for command in commands]
            return
        if all(_skipped(command) for command in commands):
            self.outcomes += [box.run(command) for command in commands]
            return
        fresh = self._prepared_box(setup)
        try:
            self.outcomes += [fresh.run(command) for command in commands]
        finally:
            self._close(fresh)

    def _check_output_block(self, block: Block, note: Note) -> None:
        """A plain block that shows a command's output: run it in a new box until it matches."""
        from filamentctl.cli.service_cmds import DEMO_SETTINGS

        assert note.output_of is not None
        where = f"{block.doc}:{block.line}"
        expected = [text for _, text in block.lines]
        box = Box(self.inputs, DEMO_SETTINGS if note.demo_box else {})
        try:
            started = box.start_service(Command(block.doc, block.line, "filamentctl run"))
            if started.status == "failed":
                self.outcomes.append(started)
                return
            deadline = time.monotonic() + OUTPUT_WAIT_S
            while True:
                result = box.shell(note.output_of)
                problem = Box._problem(
                    Command(block.doc, block.line, note.output_of, tuple(expected)), result
                )
                if problem is None:
                    self.outcomes.append(Outcome(where, note.output_of, "ran", "(output shown)"))
                    return
                if time.monotonic() > deadline:
                    self.outcomes.append(Outcome(where, note.output_of, "failed", problem))
                    return
                time.sleep(0.5)
        finally:
            self._close(box)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def report(self) -> str:
        """Every outcome, one per line: what ran, what was skipped and why, what failed."""
        return "\n".join(str(o) for o in self.outcomes)
