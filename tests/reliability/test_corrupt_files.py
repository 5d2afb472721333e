"""Damaged files at startup: a clear error or a recovery that keeps the damaged file — never a
silent start on defaults.

The two files get different treatment on purpose:

- The **history** holds readings only. A damaged one can be set aside
  (``history.db.corrupt-<UTC time>``, byte for byte as found) and a new history started: the box
  goes on sampling and controlling, and the user is told loudly (log, ``status``). Without the
  service asking for that (``History(recover_corrupt=False)``) it is a one-line error instead.
- The **configuration** holds the user's choices and secrets. Starting without it would run the
  box on defaults — wrong relays, wrong database — so it is always a one-line error naming the
  file and what to do, and the file is left exactly as it was.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from filamentctl.core.reading import Reading
from filamentctl.errors import UserError
from filamentctl.store.history import History
from tests.helpers import ServiceProcess, raw_request, wait_until

pytestmark = pytest.mark.slow


def _make_history(db: Path, readings: int = 3000) -> None:
    """A real history with enough readings to span many pages."""
    history = History(db, max_backlog=0, retention_days=0)
    history.open()
    for seq in range(1, readings + 1):
        history.add(Reading(1_700_000_000_000_000_000 + seq * 10**9, seq, 20.0, 50.0, 1000.0))
    history.commit()
    history.close()


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(8192))


def _garbage_after_header(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[100:] = os.urandom(len(data) - 100)  # a valid header, everything after it noise
    db.write_bytes(bytes(data))


def _truncated_mid_page(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2 + 123])


def _truncated_at_page(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: 4096 * 2])


HISTORY_DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage": _garbage,
    "garbage_after_header": _garbage_after_header,
    "truncated_mid_page": _truncated_mid_page,
    "truncated_at_page_boundary": _truncated_at_page,
}


@pytest.fixture
def damaged(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, bytes]:
    db = tmp_path / "history.db"
    _make_history(db)
    HISTORY_DAMAGE[request.param](db)
    return db, db.read_bytes()


@pytest.mark.parametrize("damaged", sorted(HISTORY_DAMAGE), indirect=True)
def test_damaged_history_is_a_clear_error_and_left_untouched(damaged: tuple[Path, bytes]) -> None:
    db, before = damaged
    with pytest.raises(UserError, match="unreadable") as info:
        History(db, max_backlog=0, retention_days=0).open()
    assert str(db) in str(info.value) and "\n" not in str(info.value)
    assert db.read_bytes() == before


@pytest.mark.parametrize("damaged", sorted(HISTORY_DAMAGE), indirect=True)
def test_damaged_history_is_set_aside_and_a_new_one_started_when_recovering(
    damaged: tuple[Path, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    db, before = damaged
    history = History(db, max_backlog=0, retention_days=0, recover_corrupt=True)
    with caplog.at_level(logging.ERROR, logger="filamentctl.history"):
        history.open()
    try:
        assert history.recovered is not None
        kept = Path(history.recovered["kept"])
        assert kept.name.startswith("history.db.corrupt-")
        assert kept.read_bytes() == before, "the damaged file must be kept exactly as found"
        assert any(str(kept) in r.getMessage() for r in caplog.records), "must be logged"
        assert history.latest() is None  # a new, empty history ...
        history.add(Reading(1_800_000_000_000_000_000, history.next_seq(), 21.0, 40.0))
        assert history.commit() == 1  # ... that works
        assert history.integrity_check() == "ok"
    finally:
        history.close()


def test_zero_length_history_is_an_empty_history_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite itself treats 0 bytes as an empty database, and a crash during the very first start
    # leaves exactly that: nothing was in it, so nothing is set aside, but it is not silent.
    db = tmp_path / "history.db"
    db.write_bytes(b"")
    history = History(db, max_backlog=0, retention_days=0, recover_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="filamentctl.history"):
        history.open()
    try:
        assert history.recovered is None
        assert any("0 bytes" in r.getMessage() for r in caplog.records)
        assert history.latest() is None
    finally:
        history.close()


def test_a_healthy_history_after_a_crash_mid_checkpoint_is_not_called_damaged(
    tmp_path: Path,
) -> None:
    # kill -9 during a checkpoint can leave a main file shorter than its header says while the
    # WAL still holds every page; SQLite completes that from the WAL, so it is not damage.
    # Built here by checkpointing without resetting the WAL, copying both files as a crash
    # would leave them, and cutting pages off the copy's main file.
    live = tmp_path / "live" / "history.db"
    history = History(live, max_backlog=0, retention_days=0)
    history.open()
    for seq in range(1, 2001):
        history.add(Reading(1_700_000_000_000_000_000 + seq * 10**9, seq, 20.0, 50.0))
    history.commit()
    with history.database.lock:
        history.database.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    crashed = tmp_path / "crashed" / "history.db"
    crashed.parent.mkdir()
    crashed.write_bytes(live.read_bytes()[: 4096 * 3])
    crashed.with_name("history.db-wal").write_bytes(live.with_name("history.db-wal").read_bytes())
    history.close()
    header_pages = int.from_bytes(crashed.read_bytes()[28:32], "big")
    assert header_pages * 4096 > crashed.stat().st_size  # the state described above

    reopened = History(crashed, max_backlog=0, retention_days=0, recover_corrupt=True)
    reopened.open()
    try:
        assert reopened.recovered is None
        assert reopened.last_committed_seq() == 2000
        assert len(reopened.query(None)) == 2000
        assert reopened.integrity_check() == "ok"
    finally:
        reopened.close()


# -- the service as a user runs it -----------------------------------------------------------


def _run(svc: ServiceProcess, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``filamentctl run --simulate``; a start that does not stop by itself is a failure."""
    try:
        return svc.cli("run", "--simulate", timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("the service started on a damaged file instead of refusing or recovering")


def _one_line_error(done: subprocess.CompletedProcess[str], path: Path) -> str:
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("filamentctl: "), done.stderr[-2000:]
    assert str(path) in last, last
    return last


@pytest.mark.parametrize("damage", sorted(HISTORY_DAMAGE))
def test_service_with_a_damaged_history_refuses_clearly_or_recovers_visibly(damage: str) -> None:
    svc = ServiceProcess()
    db = svc.home / "state" / "history.db"
    try:
        db.parent.mkdir(parents=True)
        _make_history(db)
        HISTORY_DAMAGE[damage](db)
        before = db.read_bytes()
        svc.start(wait=False)
        assert svc.proc is not None

        def outcome() -> str | None:
            if svc.proc is not None and svc.proc.poll() is not None:
                return "exited"
            try:
                raw_request(svc.socket, b'{"id":1,"op":"ping"}\n', timeout=1)
                return "running"
            except OSError:
                return None

        result = wait_until(outcome, timeout=30, what="the service to refuse or to come up")
        if result == "exited":  # a clear error, the file as it was
            assert svc.proc.returncode != 0
            last = svc.log().strip().splitlines()[-1]
            assert last.startswith("filamentctl: ") and str(db) in last, svc.log()[-2000:]
            assert "move it aside" in last
            assert db.read_bytes() == before
        else:  # recovered: the damaged file kept, the user told in the log and in status
            kept = sorted(db.parent.glob("history.db.corrupt-*"))
            assert len(kept) == 1 and kept[0].read_bytes() == before
            assert str(kept[0]) in svc.log()
            [status] = raw_request(svc.socket, b'{"id":2,"op":"status"}\n')
            assert status["result"]["storage"].get("history_recovered"), status
    finally:
        svc.cleanup()


def _config_home(svc: ServiceProcess) -> Path:
    init = svc.cli("config", "init")
    assert init.returncode == 0, init.stderr
    for key, value in (("sensor.read_interval", "0.5"), ("data.measurement", "box")):
        assert svc.cli("config", "set", key, value).returncode == 0
    return svc.home / "config" / "config.db"


def _sqlite_plain(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.commit()
    conn.close()


CONFIG_DAMAGE: dict[str, Callable[[Path], object]] = {
    "garbage": lambda db: db.write_bytes(os.urandom(db.stat().st_size)),
    "truncated_mid_page": lambda db: db.write_bytes(db.read_bytes()[:1000]),
    "truncated_to_first_page": lambda db: db.write_bytes(db.read_bytes()[:4096]),
    "zero_length": lambda db: db.write_bytes(b""),
    "plain_sqlite": _sqlite_plain,
}


@pytest.mark.parametrize("damage", [*sorted(CONFIG_DAMAGE), "wrong_key"])
def test_service_with_a_damaged_or_undecryptable_config_refuses_with_one_line(
    damage: str,
) -> None:
    svc = ServiceProcess()
    try:
        db = _config_home(svc)
        if damage == "wrong_key":
            svc.env["FILAMENTCTL_CONFIG_KEY"] = "ab" * 32  # a well-formed key, not this one
        else:
            CONFIG_DAMAGE[damage](db)
        before = db.read_bytes()
        done = _run(svc)
        line = _one_line_error(done, db)
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        # It says what to do: fix the key, restore, or re-initialise — not just "failed".
        assert any(hint in line for hint in ("config init", "key", "backup")), line
        assert db.read_bytes() == before, "a damaged configuration must be left as it was"
        assert not (svc.home / "state" / "history.db").exists(), "it must not have started"
    finally:
        svc.cleanup()
