"""Errors that reach the CLI's last-resort handlers stay one line with the documented exit code:
a reader that goes away (``filamentctl config list | head -1``) and a prompt that meets the end
of its input. Typer >= 0.26 ships Click without ``Abort``; naming it in an ``except`` clause
turned every exception that got that far into an AttributeError traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers import REPO, short_home


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    home = short_home()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
    environ["FILAMENTCTL_HOME"] = str(home)
    subprocess.run(
        [sys.executable, "-m", "filamentctl", "config", "init"],
        env=environ,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    yield environ
    shutil.rmtree(home, ignore_errors=True)


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback(
    env: dict[str, str],
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "filamentctl", "config", "list", "--all"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 1
    assert "Traceback" not in err and "Error" not in err, err


def test_a_prompt_at_the_end_of_its_input_aborts_in_one_line(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "filamentctl", "config", "set", "database.influxdb_v2.token"],
        env=env,
        cwd=REPO,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,  # no terminal: the prompt reads stdin, which is empty
    )
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "filamentctl: aborted; nothing changed"
    got = subprocess.run(
        [sys.executable, "-m", "filamentctl", "config", "get", "database.influxdb_v2.token"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert got.returncode == 0 and got.stdout.strip() == "", got  # nothing was stored
