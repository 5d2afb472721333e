"""The local SQLite history: readings kept once, per-sink backlogs, cap, retention, dead letters."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from filamentctl.core.reading import Reading
from filamentctl.errors import UserError
from filamentctl.store.history import History

DAY_NS = 86_400 * 1_000_000_000
T0 = 1_780_000_000 * 1_000_000_000  # some moment in 2026, ns


def make_history(path: Path, *, max_backlog: int = 0, retention_days: float = 0) -> History:
    history = History(
        path, max_backlog=max_backlog, retention_days=retention_days, clock_ns=lambda: T0
    )
    history.open()
    return history


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "history.db"


@pytest.fixture
def history(db: Path) -> Iterator[History]:
    h = make_history(db)
    yield h
    h.close()


def add(history: History, n: int, *, start_ns: int = T0, step_ns: int = 1_000_000_000) -> None:
    """Sample ``n`` readings the way the sampler does: take a seq, stamp, buffer."""
    for i in range(n):
        seq = history.next_seq()
        history.add(Reading(start_ns + i * step_ns, seq, 20.0 + i / 100, 40.0, 1013.25))


def seqs(readings: list[Reading]) -> list[int]:
    return [r.seq for r in readings]


def test_seq_numbers_continue_after_reopening(db: Path) -> None:
    h = make_history(db)
    add(h, 3)
    h.close()
    h = make_history(db)
    assert h.next_seq() == 4
    h.close()


def test_seq_numbers_continue_after_retention_removed_every_reading(db: Path) -> None:
    h = make_history(db, retention_days=1)
    add(h, 5)
    h.commit()
    assert h.apply_retention(T0 + 2 * DAY_NS) == 5
    assert h.query(None) == []
    h.close()
    h = make_history(db, retention_days=1)
    assert h.next_seq() == 6
    h.close()


def test_buffered_readings_are_visible_to_queries_but_not_to_delivery(history: History) -> None:
    add(history, 4)
    assert history.pending_count() == 4
    assert seqs(history.query(None)) == [1, 2, 3, 4]
    latest = history.latest()
    assert latest is not None and latest.seq == 4
    assert history.backlog("influxdb_v2", 100) == []
    assert history.commit() == 4
    assert history.pending_count() == 0
    assert seqs(history.backlog("influxdb_v2", 100)) == [1, 2, 3, 4]


def test_readings_round_trip_with_and_without_pressure(history: History) -> None:
    history.add(Reading(T0, history.next_seq(), 21.5, 38.25, 1001.5))
    history.add(Reading(T0 + 1, history.next_seq(), 22.0, 39.0, None))
    history.commit()
    assert history.query(None) == [
        Reading(T0, 1, 21.5, 38.25, 1001.5),
        Reading(T0 + 1, 2, 22.0, 39.0, None),
    ]


def test_query_filters_by_time_and_limit_keeps_the_newest(history: History) -> None:
    add(history, 6)  # one per second from T0
    history.commit()
    add(history, 2, start_ns=T0 + 6_000_000_000)  # still buffered
    s = 1_000_000_000
    assert seqs(history.query(T0 + 2 * s, T0 + 5 * s)) == [3, 4, 5]
    assert seqs(history.query(T0 + 5 * s)) == [6, 7, 8]
    assert seqs(history.query(None, limit=3)) == [6, 7, 8]
    assert seqs(history.query(None, limit=5)) == [4, 5, 6, 7, 8]


def test_a_reading_out_of_sequence_is_refused(history: History) -> None:
    add(history, 2)
    with pytest.raises(ValueError):
        history.add(Reading(T0, 2, 20.0, 40.0))


def test_a_failed_commit_writes_nothing_and_keeps_the_readings_for_the_next_one(
    history: History, db: Path
) -> None:
    add(history, 10)
    history.commit()
    add(history, 2000)
    # Real SQLite, made to report "database or disk is full": the page limit is a per-connection
    # pragma, so it has to be set on the history's own connection.
    conn = history.database.connection()
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")

    assert history.commit() == 0
    assert history.last_commit_error is not None
    assert history.pending_count() == 2000
    assert len(history.query(None)) == 2010  # nothing lost from view either
    other = sqlite3.connect(db)
    assert other.execute("SELECT COUNT(*) FROM readings").fetchone() == (10,)  # all or nothing
    other.close()

    conn.execute("PRAGMA max_page_count = 1073741823")
    assert history.commit() == 2000
    assert history.last_commit_error is None
    assert seqs(history.backlog("victoriametrics", 5000)) == list(range(1, 2011))


def test_while_the_disk_stays_full_memory_holds_a_bounded_number_of_readings(db: Path) -> None:
    h = History(db, max_backlog=0, retention_days=0, max_buffer=1000)
    h.open()
    conn = h.database.connection()  # see above: the only way to make real SQLite report a full disk
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    add(h, 1000)
    assert h.commit() == 0
    add(h, 300)
    assert h.pending_count() == 1000
    assert h.counters()["dropped"] == 300
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert h.commit() == 1000
    h.close()
    h = make_history(db)
    assert seqs(h.query(None)) == list(range(301, 1301))
    assert h.counters()["dropped"] == 300
    h.close()


def test_abandoned_history_loses_only_uncommitted_readings(db: Path) -> None:
    crashed = make_history(db)
    add(crashed, 5)
    crashed.commit()
    add(crashed, 3)  # never committed, never closed: as if the process died here

    h = make_history(db)
    assert seqs(h.query(None)) == [1, 2, 3, 4, 5]
    assert h.integrity_check() == "ok"
    h.close()
    del crashed


def test_kill_9_loses_at_most_the_uncommitted_readings(db: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from filamentctl.core.reading import Reading
        from filamentctl.store.history import History

        h = History(Path(sys.argv[1]), max_backlog=0, retention_days=0)
        h.open()
        for batch in range(3):
            for i in range(20):
                h.add(Reading(1_000 + i, h.next_seq(), 20.0, 40.0))
            h.commit()
        for i in range(7):
            h.add(Reading(2_000 + i, h.next_seq(), 20.0, 40.0))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, str(db)], timeout=60, check=False)
    assert proc.returncode == -9

    h = make_history(db)
    assert seqs(h.query(None)) == list(range(1, 61))
    assert h.integrity_check() == "ok"
    assert h.next_seq() == 61
    h.close()


def test_each_sink_has_its_own_cursor(history: History) -> None:
    history.ensure_cursor("influxdb_v2")
    history.ensure_cursor("victoriametrics")
    add(history, 5)
    history.commit()
    history.ack("influxdb_v2", 3, 3)
    assert seqs(history.backlog("influxdb_v2", 10)) == [4, 5]
    assert seqs(history.backlog("victoriametrics", 10)) == [1, 2, 3, 4, 5]
    assert history.backlog_count("influxdb_v2") == 2
    assert history.oldest_unsent_ns("influxdb_v2") == T0 + 3_000_000_000
    assert history.counters()["written"] == 3


def test_cursors_and_counters_survive_a_restart(db: Path) -> None:
    h = make_history(db)
    add(h, 4)
    h.commit()
    h.ack("influxdb_v1", 2, 2)
    h.close()
    h = make_history(db)
    assert seqs(h.backlog("influxdb_v1", 10)) == [3, 4]
    assert h.counters()["written"] == 2
    h.close()


def test_an_ack_never_moves_the_cursor_backwards(history: History) -> None:
    add(history, 4)
    history.commit()
    history.ack("influxdb_v1", 4, 4)
    history.ack("influxdb_v1", 2, 2)  # a late duplicate
    assert history.backlog("influxdb_v1", 10) == []


def test_a_new_backend_inherits_the_unsent_backlog_of_the_old_one(history: History) -> None:
    history.ensure_cursor("influxdb_v1")
    add(history, 5)
    history.commit()
    history.ack("influxdb_v1", 2, 2)
    # The user switches database.type: what influxdb_v1 never got goes to the new backend.
    assert seqs(history.backlog("timescaledb", 10)) == [3, 4, 5]


def test_the_first_backend_gets_the_whole_history(history: History) -> None:
    add(history, 3)
    history.commit()
    assert history.ensure_cursor("victoriametrics") == 0
    assert seqs(history.backlog("victoriametrics", 10)) == [1, 2, 3]


def test_a_commit_past_the_cap_drops_the_oldest_and_counts_them(db: Path) -> None:
    h = make_history(db, max_backlog=5)
    h.ensure_cursor("influxdb_v2")
    add(h, 8)
    h.commit()  # the cap is part of the commit: the backlog never exceeds it
    assert seqs(h.backlog("influxdb_v2", 100)) == [4, 5, 6, 7, 8]
    assert h.backlog_count("influxdb_v2") == 5
    assert h.take_cap_drops("influxdb_v2") == 3
    assert h.take_cap_drops("influxdb_v2") == 0  # reported once
    assert h.enforce_cap("influxdb_v2") == 0
    assert h.counters()["dropped"] == 3
    add(h, 2, start_ns=T0 + 8 * 1_000_000_000)
    h.commit()
    assert seqs(h.backlog("influxdb_v2", 100)) == [6, 7, 8, 9, 10]
    assert h.counters()["dropped"] == 5
    assert len(h.query(None)) == 10  # dropped from delivery only; local history keeps them
    h.close()
    h = make_history(db, max_backlog=5)
    assert h.counters()["dropped"] == 5
    h.close()


def test_a_lowered_cap_is_applied_by_enforce_cap(db: Path) -> None:
    h = make_history(db, max_backlog=10)
    h.ensure_cursor("influxdb_v2")
    add(h, 8)
    h.commit()
    assert h.take_cap_drops("influxdb_v2") == 0
    h.max_backlog = 5  # a live reload
    assert h.enforce_cap("influxdb_v2") == 3
    assert seqs(h.backlog("influxdb_v2", 100)) == [4, 5, 6, 7, 8]
    assert h.enforce_cap("influxdb_v2") == 0
    assert h.take_cap_drops("influxdb_v2") == 3
    assert h.counters()["dropped"] == 3
    assert len(h.query(None)) == 8  # dropped from delivery only; local history keeps them
    h.close()
    h = make_history(db, max_backlog=5)
    assert h.counters()["dropped"] == 3
    h.close()


def test_retention_deletes_only_old_readings_that_were_delivered(db: Path) -> None:
    h = make_history(db, retention_days=1)
    h.ensure_cursor("influxdb_v2")
    add(h, 4, start_ns=T0, step_ns=DAY_NS)  # T0, T0+1d, T0+2d, T0+3d
    h.commit()
    h.ack("influxdb_v2", 1, 1)
    now = T0 + 3 * DAY_NS + 1
    assert h.apply_retention(now) == 1  # seq 2 is old too, but not delivered yet
    assert seqs(h.query(None)) == [2, 3, 4]
    h.ack("influxdb_v2", 4, 3)
    assert h.apply_retention(now) == 2
    assert seqs(h.query(None)) == [4]
    h.close()


def test_retention_without_any_backend_deletes_old_readings(db: Path) -> None:
    h = make_history(db, retention_days=2)
    add(h, 4, start_ns=T0, step_ns=DAY_NS)
    h.commit()
    assert h.apply_retention(T0 + 3 * DAY_NS) == 1
    assert seqs(h.query(None)) == [2, 3, 4]
    h.close()


def test_a_backend_no_longer_configured_does_not_pin_old_readings(db: Path) -> None:
    h = make_history(db, retention_days=1)
    h.ensure_cursor("influxdb_v1")
    add(h, 3, start_ns=T0, step_ns=DAY_NS)
    h.commit()
    h.close()
    # Restarted with a different backend that has delivered everything.
    h = make_history(db, retention_days=1)
    h.ack("victoriametrics", 3, 3)
    assert h.apply_retention(T0 + 3 * DAY_NS) == 2
    h.close()


def test_rejected_batch_goes_to_dead_letter_and_can_be_replayed_or_purged(
    history: History,
) -> None:
    add(history, 6)
    history.commit()
    batch = history.backlog("influxdb_v2", 3)
    entry = history.reject("influxdb_v2", batch, 400, "field type conflict")

    assert seqs(history.backlog("influxdb_v2", 10)) == [4, 5, 6]  # delivery goes on
    [listed] = history.deadletter_list()
    assert listed["id"] == entry
    assert (listed["sink"], listed["first_seq"], listed["last_seq"]) == ("influxdb_v2", 1, 3)
    assert (listed["count"], listed["status"], listed["error"]) == (3, 400, "field type conflict")
    counters = history.counters()
    assert (counters["rejected"], counters["dead_letter"]) == (3, 1)

    assert history.deadletter_readings([entry]) == batch
    assert history.deadletter_readings() == batch
    assert len(history.deadletter_list()) == 1  # reading them back removes nothing

    assert history.deadletter_purge([entry], delivered=True) == 1
    assert history.deadletter_list() == []
    assert history.counters()["written"] == 3


def test_purge_without_ids_empties_the_dead_letter_table(history: History) -> None:
    add(history, 4)
    history.commit()
    history.reject("influxdb_v1", history.backlog("influxdb_v1", 2), 422, "bad")
    history.reject("influxdb_v1", history.backlog("influxdb_v1", 2), 400, "bad")
    assert history.deadletter_purge() == 2
    assert history.counters()["dead_letter"] == 0
    assert history.counters()["rejected"] == 4


def test_a_history_from_a_newer_version_is_refused(db: Path) -> None:
    make_history(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(UserError, match="newer filamentctl"):
        make_history(db)


def test_a_file_that_is_not_a_database_gives_a_clear_error(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="unreadable"):
        make_history(db)


def test_the_database_uses_wal_and_passes_integrity_check(history: History, db: Path) -> None:
    add(history, 3)
    history.commit()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()
    assert history.integrity_check() == "ok"


def test_released_sink_no_longer_holds_back_retention(tmp_path: Path) -> None:
    """After a live backend swap the old cursor must not keep old readings forever."""
    now_ns = 1_800_000_000_000_000_000
    day = 86_400_000_000_000
    h = History(tmp_path / "h.db", max_backlog=1000, retention_days=1)
    h.open()
    try:
        for i in range(1, 4):
            h.add(Reading(now_ns - 3 * day + i, h.next_seq(), 20.0, 40.0))
        h.commit()
        h.ensure_cursor("old")  # never acknowledged anything
        h.ensure_cursor("new")
        h.ack("new", 3, 3)
        assert h.apply_retention(now_ns) == 0  # "old" still needs them
        h.release_sink("old")
        assert h.apply_retention(now_ns) == 3
    finally:
        h.close()


def test_downsample_averages_buckets_oldest_first(tmp_path: Path) -> None:
    h = History(tmp_path / "h.db", max_backlog=1000, retention_days=0)
    h.open()
    try:
        base = 1_800_000_000_000_000_000
        for i in range(60):  # one reading a second for a minute; T rises 0.1 °C a second
            h.add(Reading(base + i * 1_000_000_000, h.next_seq(), 20.0 + i * 0.1, 40.0))
        h.commit()
        buckets = h.downsample(base, 10 * 1_000_000_000, limit=100)
        assert len(buckets) == 6
        assert [b.seq for b in buckets] == [1, 11, 21, 31, 41, 51]
        assert buckets[0].temperature_c == pytest.approx(20.45)  # mean of 20.0 .. 20.9
        assert buckets[-1].time_ns == base + 55 * 1_000_000_000 - 500_000_000
        assert [b.seq for b in h.downsample(base, 10 * 1_000_000_000, limit=2)] == [41, 51]
    finally:
        h.close()


def test_without_a_database_old_cursors_do_not_keep_readings_forever(tmp_path: Path) -> None:
    """database.type none after a backend was used: retention must still apply."""
    now_ns = 1_800_000_000_000_000_000
    day = 86_400_000_000_000
    path = tmp_path / "h.db"
    with History(path, max_backlog=1000, retention_days=1) as h:
        h.ensure_cursor("victoriametrics")  # used once, never acknowledged anything
        for i in range(1, 11):
            h.add(Reading(now_ns - 10 * day + i, h.next_seq(), 20.0, 40.0))
        h.commit()
    with History(path, max_backlog=1000, retention_days=1) as h:  # reopened with no sink
        assert h.apply_retention(now_ns) == 10


def test_a_late_status_call_does_not_reactivate_a_released_sink(tmp_path: Path) -> None:
    now_ns = 1_800_000_000_000_000_000
    day = 86_400_000_000_000
    with History(tmp_path / "h.db", max_backlog=1000, retention_days=1) as h:
        h.add(Reading(now_ns - 3 * day, h.next_seq(), 20.0, 40.0))
        h.commit()
        h.ensure_cursor("old")
        h.release_sink("old")
        assert h.backlog_count("old") == 1  # e.g. the old worker's last status()
        assert h.apply_retention(now_ns) == 1
