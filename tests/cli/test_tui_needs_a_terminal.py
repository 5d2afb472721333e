"""``filamentctl tui`` refuses what it cannot draw on: no terminal on stdin or stdout, or
``TERM=dumb``. It exits 2 at once with one line instead of writing escape codes into a file and
spinning a CPU core (what it did before). The demo falls back to its plain status text."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, wait_until

# A guard against a regression hanging the suite; not a measurement.
HANG_GUARD_S = 30


def cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TERM": "xterm-256color"}
    env.update(kwargs.pop("env", {}))  # type: ignore[arg-type]
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "filamentctl", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        cwd=REPO,
        env=env,
        **kwargs,
    )


def assert_refused(result: subprocess.CompletedProcess[str], why: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # not one escape code
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("filamentctl: the dashboard needs an interactive terminal")
    assert why in result.stderr and "status --watch" in result.stderr


def test_tui_with_stdin_from_dev_null_exits_2_with_one_line(tmp_path: Path) -> None:
    with open(os.devnull) as devnull:
        result = cli("tui", stdin=devnull, env={"FILAMENTCTL_HOME": str(tmp_path)})
    assert_refused(result, "standard input is not a terminal")


def test_tui_with_stdout_not_a_terminal_exits_2(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        result = cli("tui", stdin=terminal, env={"FILAMENTCTL_HOME": str(tmp_path)})
    finally:
        os.close(terminal)
        os.close(controller)
    assert_refused(result, "standard output is not a terminal")


def test_tui_with_term_dumb_exits_2_even_on_a_terminal(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "dumb", "FILAMENTCTL_HOME": str(tmp_path)}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "tui"],
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        _, stderr = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2
    assert stderr.count("\n") == 1 and "TERM=dumb cannot draw it" in stderr


def test_the_check_happens_before_textual_loads() -> None:
    """Refusing costs no Textual import (and so no start-up time)."""
    code = (
        "import sys, filamentctl.cli.tui as t\n"
        "print(t.terminal_problem(), 'textual' in sys.modules)"
    )
    with open(os.devnull) as devnull:
        out = subprocess.run(
            [sys.executable, "-c", code], stdin=devnull, capture_output=True, text=True, check=True
        )
    assert out.stdout.strip() == "standard input is not a terminal False"


@pytest.mark.parametrize("args", [("demo",), ("demo", "--plain")])
def test_the_demo_without_a_terminal_shows_status_text_and_the_sim_hint(
    args: tuple[str, ...],
) -> None:
    """Piped, the demo does what it can: the plain status, and how to drive the simulator."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "filamentctl", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=os.environ,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first status block has arrived
        assert first.startswith("filamentctl 0.1.0")
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert "filamentctl sim set --temperature 20" in stderr
    assert "\x1b[" not in first
    # SIGTERM still stopped the demo's service and removed its directory.
    home = Path(stderr.split("FILAMENTCTL_SOCKET=", 1)[1].split()[0]).parents[1]
    wait_until(lambda: not home.exists(), timeout=HANG_GUARD_S, what=f"{home} removed")
