"""Reading the history never writes to it; creating a sink's cursor is an explicit step.

Each read runs against a real SQLite file, empty or holding readings, cursors and a dead letter.
"Nothing written" is checked three ways: the writer connection's ``total_changes``, the bytes of
the database file and its WAL, and ``PRAGMA data_version`` seen from a second connection (it
moves whenever another connection commits).
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from filamentctl.core.reading import Reading
from filamentctl.store.database import Database
from filamentctl.store.history import History

T0 = 1_780_000_000 * 1_000_000_000
S = 1_000_000_000

# Every public History method that may write, with why; everything else must be a pure read.
WRITES = {
    "open",
    "close",
    "add",  # buffers in memory; the next commit writes
    "next_seq",  # hands out a number (memory only)
    "commit",
    "ensure_cursor",  # the explicit step that creates a cursor
    "release_sink",  # memory only, but changes what retention may delete
    "ack",
    "reject",
    "enforce_cap",
    "take_cap_drops",  # forgets the drops it reports (memory only)
    "apply_retention",
    "deadletter_purge",
    "from_settings",  # builds a History
    "reconfigure",  # changes the backlog cap and retention (memory only)
}

# (name, call) for every read, on a sink that is attached ("vm") and one that never was ("new").
READS: list[tuple[str, Callable[[History], object]]] = [
    ("cursor", lambda h: (h.cursor("vm"), h.cursor("new"))),
    ("backlog", lambda h: (h.backlog("vm", 10), h.backlog("new", 10))),
    (
        "backlog_rows",
        lambda h: (h.backlog_rows("vm", 10, after=2, upto=5), h.backlog_rows("new", 10)),
    ),
    ("backlog_count", lambda h: (h.backlog_count("vm", upto=4), h.backlog_count("new"))),
    ("oldest_unsent_ns", lambda h: (h.oldest_unsent_ns("vm"), h.oldest_unsent_ns("new"))),
    ("latest", lambda h: h.latest()),
    ("query", lambda h: h.query(T0, T0 + 5 * S, limit=3)),
    ("downsample", lambda h: h.downsample(T0, 2 * S, 10)),
    ("iter_query", lambda h: list(h.iter_query(T0, 100, chunk=2))),
    ("iter_downsample", lambda h: list(h.iter_downsample(T0, 2 * S, 10, chunk=2))),
    ("last_committed_seq", lambda h: h.last_committed_seq()),
    ("pending_count", lambda h: h.pending_count()),
    ("counters", lambda h: h.counters()),
    ("deadletter_list", lambda h: h.deadletter_list()),
    ("deadletter_readings", lambda h: (h.deadletter_readings(), h.deadletter_readings([1]))),
    ("integrity_check", lambda h: h.integrity_check()),
]


def _public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(History)
        if not name.startswith("_") and (inspect.isfunction(member) or inspect.ismethod(member))
    }


def test_every_public_method_is_either_a_listed_read_or_a_known_write() -> None:
    # A new method must be put in one list or the other, so the test below covers it.
    reads = {name for name, _ in READS}
    assert not reads & WRITES
    assert _public_methods() == reads | WRITES


def _populate(h: History) -> None:
    """Readings, an attached sink that acknowledged some, a dead letter, buffered readings."""
    h.ensure_cursor("vm")
    for i in range(8):
        h.add(Reading(T0 + i * S, h.next_seq(), 20.0 + i, 40.0, 1000.0))
    h.commit()
    h.ack("vm", 2, 2)
    h.reject("vm", h.backlog("vm", 1), 400, "bad field")
    h.add(Reading(T0 + 9 * S, h.next_seq(), 30.0, 40.0))  # buffered, not committed


@pytest.fixture(params=["fresh", "populated"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.db", max_backlog=100, retention_days=30)
    h.open()
    if request.param == "populated":
        _populate(h)
    yield h
    h.close()


def _snapshot(h: History, observer: sqlite3.Connection) -> tuple[int, bytes, bytes, int]:
    path = h.path
    wal = path.with_name(path.name + "-wal")
    with h.database.lock:
        changes = h.database.connection().total_changes
    (data_version,) = observer.execute("PRAGMA data_version").fetchone()
    return (
        changes,
        path.read_bytes(),
        wal.read_bytes() if wal.exists() else b"",
        int(data_version),
    )


@pytest.mark.parametrize(("name", "read"), READS, ids=[name for name, _ in READS])
def test_a_read_leaves_the_database_as_it_was(
    history: History, name: str, read: Callable[[History], object]
) -> None:
    observer = sqlite3.connect(history.path)
    try:
        cursors = observer.execute("SELECT sink, last_seq FROM cursors").fetchall()
        before = _snapshot(history, observer)
        read(history)
        read(history)  # twice: a second call must not write either (e.g. a reused reader)
        after = _snapshot(history, observer)
        assert after[0] == before[0], f"{name} changed rows through the writer connection"
        assert after[1:3] == before[1:3], f"{name} changed the database file or its WAL"
        assert after[3] == before[3], f"{name} committed a transaction"
        assert observer.execute("SELECT sink, last_seq FROM cursors").fetchall() == cursors
    finally:
        observer.close()


def test_a_sink_read_before_it_is_attached_starts_where_attaching_puts_it(tmp_path: Path) -> None:
    with History(tmp_path / "history.db", max_backlog=0, retention_days=0) as h:
        assert h.cursor("first") == 0  # no sink yet: the whole history
        h.ensure_cursor("old")
        for i in range(5):
            h.add(Reading(T0 + i * S, h.next_seq(), 20.0, 40.0))
        h.commit()
        h.ack("old", 3, 3)
        # A new backend inherits what the old one never got, whether read or attached.
        assert h.cursor("new") == 3
        assert [r.seq for r in h.backlog("new", 10)] == [4, 5]
        assert h.backlog_count("new") == 2
        assert h.oldest_unsent_ns("new") == T0 + 3 * S
        h.ack("old", 5, 2)  # the old one moves on before the new one is attached
        assert h.cursor("new") == 5
        assert h.ensure_cursor("new") == 5
        stored = h.database.connection().execute("SELECT sink FROM cursors ORDER BY sink")
        assert [sink for (sink,) in stored] == ["new", "old"]


def test_a_failed_transaction_stores_nothing_and_the_next_one_works(tmp_path: Path) -> None:
    db = Database(tmp_path / "history.db")
    db.open()
    try:
        with pytest.raises(RuntimeError), db.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES ('probe', 1)")
            raise RuntimeError("something went wrong halfway")
        assert not db.connection().in_transaction
        assert "probe" not in db.meta()
        with db.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES ('probe', 2)")
        assert db.meta()["probe"] == 2
    finally:
        db.close()


def test_a_commit_that_the_disk_refuses_is_rolled_back_whole(tmp_path: Path) -> None:
    db = Database(tmp_path / "history.db")
    db.open()
    try:
        conn = db.connection()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL, as on a full disk
        rows = [(seq, seq, 20.0, 40.0) for seq in range(1, 5001)]
        with pytest.raises(sqlite3.OperationalError, match="full"), db.transaction() as tx:
            tx.execute("INSERT INTO meta(key, value) VALUES ('probe', 1)")
            tx.executemany(
                "INSERT INTO readings(seq, time_ns, temperature_c, humidity) VALUES (?,?,?,?)",
                rows,
            )
        assert not conn.in_transaction
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert "probe" not in db.meta()
        assert conn.execute("SELECT COUNT(*) FROM readings").fetchone() == (0,)
    finally:
        db.close()


def test_the_factory_builds_from_the_storage_settings(tmp_path: Path) -> None:
    settings = {"storage.max_backlog": 7, "storage.retention_days": 2.5}
    damaged = tmp_path / "history.db"
    damaged.write_bytes(b"not a database" * 100)
    h = History.from_settings(damaged, settings, recover_corrupt=True)
    assert (h.max_backlog, h.retention_days) == (7, 2.5)
    h.open()  # the damaged file is set aside rather than fatal
    try:
        assert h.recovered is not None and h.latest() is None
    finally:
        h.close()
    assert History.from_settings(damaged, settings).database.recover_corrupt is False
    with pytest.raises(ValueError, match=r"storage\.max_backlog"):
        History.from_settings(damaged, {**settings, "storage.max_backlog": "lots"})
