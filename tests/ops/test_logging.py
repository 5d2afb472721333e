"""Service logs as journald and log shippers read them: a real ``filamentctl run --simulate``.

systemd tells a service its stderr is the journal through ``JOURNAL_STREAM=dev:inode``; here
stderr is a real file and JOURNAL_STREAM names that file's device and inode, which is exactly
the check the service makes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServiceProcess, short_home, wait_until

PRIORITY_PREFIX = re.compile(r"^<[0-7]>")
# Short intervals so a few seconds give sampling, storage and delivery lines.
FAST = {
    "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
    "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "0.2",
}


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_and_stop(home: Path, env: dict[str, str], *args: str) -> list[str]:
    """Start the service, let it log, SIGTERM it; the lines it wrote to stderr."""
    service = ServiceProcess(home=home, env={**FAST, **env}, args=("--simulate", *args))
    try:
        service.start()
        # The start-up banner is logged once the service runs; stopping adds more lines.
        wait_until(lambda: " running: " in service.log(), what="the start-up banner")
        assert service.signal(signal.SIGTERM) == 0, service.log()
    finally:
        service.stop()
    return [line for line in service.log().splitlines() if line.strip()]


def journal_stream_for(path: Path) -> str:
    path.touch()
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def test_every_line_has_a_syslog_priority_prefix_when_stderr_is_the_journal(home: Path) -> None:
    env = {"JOURNAL_STREAM": journal_stream_for(home / "service.log")}
    lines = run_and_stop(home, env, "--debug")
    assert len(lines) >= 3
    unprefixed = [line for line in lines if not PRIORITY_PREFIX.match(line)]
    assert unprefixed == []
    # Debug lines are priority 7, so the prefix really follows the level.
    assert any(line.startswith("<7>") for line in lines)
    assert any(line.startswith("<6>") for line in lines)


def test_no_priority_prefix_when_journal_stream_names_another_file(home: Path) -> None:
    other = home / "not-stderr"
    env = {"JOURNAL_STREAM": journal_stream_for(other)}
    (home / "service.log").touch()
    lines = run_and_stop(home, env)
    assert lines
    assert not any(PRIORITY_PREFIX.match(line) for line in lines)


def test_log_format_json_writes_one_json_object_per_line(home: Path) -> None:
    # JSON wins even under journald: a log shipper reading the journal gets parseable messages.
    env = {"JOURNAL_STREAM": journal_stream_for(home / "service.log")}
    lines = run_and_stop(home, env, "--log-format", "json", "--debug")
    assert len(lines) >= 3
    docs = [json.loads(line) for line in lines]
    assert all(isinstance(doc, dict) for doc in docs)
    assert all({"time", "level", "logger", "message"} <= doc.keys() for doc in docs)
    assert {doc["level"] for doc in docs} >= {"info", "debug"}
