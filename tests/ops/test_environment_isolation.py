"""Every test runs without the developer's FILAMENTCTL_*, VAULT_* and XDG_* variables, and what a
test leaves in the environment is gone before the next one (``tests/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PRODUCT_VARIABLES, SUITE_KNOBS, take_product_variables
from tests.helpers import REPO

LEFT_BEHIND = "FILAMENTCTL_LEFT_BEHIND_BY_A_TEST"


def product_variables() -> list[str]:
    return sorted(
        name
        for name in os.environ
        if name.startswith(PRODUCT_VARIABLES) and name not in SUITE_KNOBS
    )


def test_a_test_starts_without_product_variables() -> None:
    assert product_variables() == []


def test_a_test_may_leave_a_variable_behind() -> None:
    os.environ[LEFT_BEHIND] = "1"  # deliberately not through monkeypatch


def test_the_next_test_does_not_see_it() -> None:
    assert LEFT_BEHIND not in os.environ


def test_variables_of_the_run_reach_no_test(tmp_path: Path) -> None:
    """The three tests above in a pytest run started with a developer's variables set."""
    env = {
        **os.environ,
        "FILAMENTCTL_SENSOR__TYPE": "dht22",
        "FILAMENTCTL_SOCKET": str(tmp_path / "theirs.sock"),
        "VAULT_ADDR": "http://127.0.0.1:1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    here = Path(__file__).relative_to(REPO)
    tests = [
        f"{here}::{name}"
        for name in (
            "test_a_test_starts_without_product_variables",
            "test_a_test_may_leave_a_variable_behind",
            "test_the_next_test_does_not_see_it",
        )
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_only_product_variables_are_taken_and_suite_knobs_stay() -> None:
    environ = {
        "FILAMENTCTL_HOME": "/x",
        "VAULT_TOKEN": "t",
        "XDG_RUNTIME_DIR": "/run/user/1",
        "FILAMENTCTL_UPDATE_SNAPSHOTS": "1",
        "HOME": "/home/u",
        "CI": "true",
    }
    taken = take_product_variables(environ)
    assert taken == {"FILAMENTCTL_HOME": "/x", "VAULT_TOKEN": "t", "XDG_RUNTIME_DIR": "/run/user/1"}
    assert environ == {"FILAMENTCTL_UPDATE_SNAPSHOTS": "1", "HOME": "/home/u", "CI": "true"}
