"""Each sink's delivery backlog: its cursor, what it has not yet delivered, the cap, retention.

A sink's progress is a cursor (the highest seq it acknowledged or that was moved past). A reading
leaves a sink's backlog only through ``ack`` (the backend stored it), a dead-letter entry (see
:mod:`~filamentctl.store.dead_letters`) or the backlog cap (dropped from the backlog and counted;
it stays in the local history until retention removes it). The cap is applied by every commit in
the same transaction that adds the readings, so a committed backlog never exceeds
``max_backlog``.

Creating a cursor is an explicit step, :meth:`Backlog.ensure_cursor` (the delivery worker takes
it when it attaches a sink); every read is pure. A sink with no cursor yet reads as if it had one
where :meth:`~Backlog.ensure_cursor` would put it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from itertools import starmap

from filamentctl.core.reading import Reading, ReadingRow
from filamentctl.store.database import Database, meta_add
from filamentctl.store.readings import READING_ORDER, Readings

EXACT_COUNT_LIMIT = 100_000  # backlogs above this are counted from the seq span
_NS_PER_DAY = 86_400 * 1_000_000_000
_RETENTION_CHUNK = 5_000  # rows per delete, so the sampler never waits long on the lock


class Backlog:
    """Per-sink cursors over ``readings``. Thread-safe (``db.lock``).

    ``max_backlog`` (readings, ≤ 0 = unlimited) caps each sink's unsent backlog;
    ``retention_days`` (≤ 0 = keep forever) bounds how long delivered readings are kept. Both
    may be changed while running (a live reload).
    """

    def __init__(
        self, db: Database, readings: Readings, *, max_backlog: int, retention_days: float
    ) -> None:
        self._db = db
        self._readings = readings
        self.max_backlog = int(max_backlog)
        self.retention_days = float(retention_days)
        self._active_sinks: set[str] = set()
        self._cap_drops: dict[str, int] = {}  # per sink: dropped by the cap, not yet reported

    # -- cursors -----------------------------------------------------------------------------

    def ensure_cursor(self, sink: str) -> int:
        """Attach ``sink``: create its cursor if needed and mark it active; returns the cursor.

        A new sink starts where the least advanced existing sink stands (switching backend carries
        the unsent backlog over), or at the beginning of history when there is no sink yet. An
        active sink holds back retention and is capped by every commit. Fails with
        ``sqlite3.Error`` when a new cursor cannot be written.
        """
        with self._db.lock:
            self._active_sinks.add(sink)
            stored = self._stored(self._db.connection(), sink)
            if stored is not None:
                return stored
            with self._db.transaction() as conn:
                return self._create(conn, sink)

    def release_sink(self, sink: str) -> None:
        """The sink was replaced (live reload): its cursor no longer holds back retention.

        The cursor row stays, so switching back later resumes where it stopped.
        """
        with self._db.lock:
            self._active_sinks.discard(sink)

    def cursor(self, sink: str) -> int:
        """The highest seq ``sink`` is done with (for a sink with no cursor: where it would
        start, see :meth:`ensure_cursor`). Reads only."""
        with self._db.lock:
            return self._position(self._db.connection(), sink)

    # -- reading the backlog -----------------------------------------------------------------

    def backlog(self, sink: str, limit: int) -> list[Reading]:
        """Up to ``limit`` committed readings ``sink`` has not yet delivered, oldest first."""
        with self._db.lock:
            conn = self._db.connection()
            rows = conn.execute(
                f"SELECT {READING_ORDER} FROM readings WHERE seq > ? ORDER BY seq LIMIT ?",
                (self._position(conn, sink), max(int(limit), 0)),
            ).fetchall()
        # Hot path of a backlog drain: the columns come in Reading's field order and with its
        # types (INTEGER/REAL columns), so no per-row conversion is needed.
        return list(starmap(Reading, rows))

    def backlog_rows(
        self, sink: str, limit: int, *, after: int | None = None, upto: int | None = None
    ) -> list[ReadingRow]:
        """Like :meth:`backlog`, as plain :data:`ReadingRow` tuples (no object per reading).

        ``after``: start after this seq rather than at the cursor (never before the cursor, which
        the backlog cap may have moved on): the pipelined drain reads batch N+1 while batch N is
        still unacknowledged. ``upto``: leave out readings with a higher seq.
        """
        with self._db.lock:
            conn = self._db.connection()
            start = self._position(conn, sink)
            if after is not None:
                start = max(start, int(after))
            sql = f"SELECT {READING_ORDER} FROM readings WHERE seq > ?"
            args: list[int] = [start]
            if upto is not None:
                sql += " AND seq <= ?"
                args.append(int(upto))
            args.append(max(int(limit), 0))
            # The columns come in Reading's field order and with its types (INTEGER/REAL).
            rows: list[ReadingRow] = conn.execute(sql + " ORDER BY seq LIMIT ?", args).fetchall()
            return rows

    def backlog_count(self, sink: str, *, upto: int | None = None) -> int:
        """How many committed readings ``sink`` has not yet delivered (with ``upto``: only
        those with a seq up to it)."""
        with self._db.lock:
            conn = self._db.connection()
            cursor = self._position(conn, sink)
            last = self._readings.last_committed_seq()
            top = last if upto is None else min(upto, last)
            upper = max(top - cursor, 0)
            if upper > EXACT_COUNT_LIMIT:
                # Counting millions of rows holds the lock for seconds on a Pi (status is called
                # every second by --watch): the seq span is exact unless a full disk once forced
                # buffered readings to be dropped, and then it errs high.
                return upper
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM readings WHERE seq > ? AND seq <= ?", (cursor, top)
            ).fetchone()
            return int(n)

    def oldest_unsent_ns(self, sink: str) -> int | None:
        """Sample time of the oldest reading ``sink`` has not delivered; None when caught up."""
        with self._db.lock:
            conn = self._db.connection()
            row = conn.execute(
                "SELECT time_ns FROM readings WHERE seq > ? ORDER BY seq LIMIT 1",
                (self._position(conn, sink),),
            ).fetchone()
            return None if row is None else int(row[0])

    # -- moving cursors ----------------------------------------------------------------------

    def ack(self, sink: str, last_seq: int, count: int) -> None:
        """The backend stored readings up to ``last_seq`` (``count`` of them): advance, count.

        Committed at once. Fails with ``sqlite3.Error`` when the database cannot be written; the
        cursor then stays put and the batch is simply sent again later (writes are idempotent).
        """
        with self._db.transaction() as conn:
            self.advance(conn, sink, last_seq)
            meta_add(conn, "written", count)

    def advance(self, conn: sqlite3.Connection, sink: str, last_seq: int) -> None:
        """Inside a transaction: move ``sink``'s cursor up to ``last_seq`` (creating it first as
        :meth:`ensure_cursor` would, without making the sink active)."""
        if self._stored(conn, sink) is None:
            self._create(conn, sink)
        # Cursors only move forward: a late or duplicate ack must not resend delivered data.
        conn.execute(
            "UPDATE cursors SET last_seq = MAX(last_seq, ?) WHERE sink = ?", (last_seq, sink)
        )

    # -- the cap -----------------------------------------------------------------------------

    def cap_active(self, conn: sqlite3.Connection, last: int) -> Callable[[], None]:
        """Inside a commit's transaction: cap every active sink's backlog up to seq ``last``.

        Returns what to run once the transaction is stored: noting the drops for
        :meth:`take_cap_drops` (a rolled-back commit dropped nothing).
        """
        dropped = {sink: self._cap(conn, sink, last) for sink in self._active_sinks}
        return lambda: self._note_cap_drops(dropped)

    def enforce_cap(self, sink: str) -> int:
        """Drop ``sink``'s oldest unsent readings beyond ``max_backlog``; returns how many.

        Every commit already does this for every active sink; this is for a cap lowered while
        running, or a backlog left by an earlier run. Dropped readings are counted in
        ``dropped``, stay in the local history (only delivery skips them) and are added to what
        :meth:`take_cap_drops` reports. Fails with ``sqlite3.Error`` when that cannot be written.
        """
        if self.max_backlog <= 0:
            return 0
        with self._db.lock:
            last = self._readings.last_committed_seq()
            if last - self.cursor(sink) <= self.max_backlog:
                return 0  # the usual case: no transaction, nothing written
            with self._db.transaction() as conn:
                if self._stored(conn, sink) is None:
                    self._create(conn, sink)
                excess = self._cap(conn, sink, last)
            self._note_cap_drops({sink: excess})
            return excess

    def take_cap_drops(self, sink: str) -> int:
        """Readings of ``sink`` the cap dropped since the last call (for once-per-episode
        warnings; the lasting total is the ``dropped`` counter)."""
        with self._db.lock:
            return self._cap_drops.pop(sink, 0)

    def _cap(self, conn: sqlite3.Connection, sink: str, last: int) -> int:
        """Inside a transaction: move ``sink``'s cursor so that at most ``max_backlog`` readings
        up to seq ``last`` stay unsent; count the rest in ``dropped``. Returns how many."""
        if self.max_backlog <= 0:
            return 0
        cursor = self._stored(conn, sink)
        if cursor is None:
            return 0
        if last - cursor <= self.max_backlog:  # cheap: the seq span never undercounts
            return 0
        if last - cursor > EXACT_COUNT_LIMIT:
            # As backlog_count does for a huge backlog: by seq span, so status agrees.
            excess, new_cursor = last - cursor - self.max_backlog, last - self.max_backlog
        else:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM readings WHERE seq > ? AND seq <= ?", (cursor, last)
            ).fetchone()
            excess = int(count) - self.max_backlog
            if excess <= 0:
                return 0
            (new_cursor,) = conn.execute(
                "SELECT seq FROM readings WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?",
                (cursor, excess - 1),
            ).fetchone()
        self.advance(conn, sink, int(new_cursor))
        meta_add(conn, "dropped", excess)
        return excess

    def _note_cap_drops(self, dropped: Mapping[str, int]) -> None:
        with self._db.lock:
            for sink, n in dropped.items():
                if n:
                    self._cap_drops[sink] = self._cap_drops.get(sink, 0) + n

    # -- retention ---------------------------------------------------------------------------

    def apply_retention(self, now_ns: int) -> int:
        """Delete readings sampled more than ``retention_days`` before ``now_ns``; returns how many.

        Only readings every active sink is done with are deleted (active: attached with
        :meth:`ensure_cursor` since the history was opened and not released). With no active
        sink, old readings simply go. Deletes in chunks, each its own transaction, so the
        sampler never waits long; fails with ``sqlite3.Error`` when the database cannot be written.
        """
        if self.retention_days <= 0:
            return 0
        cutoff = now_ns - int(self.retention_days * _NS_PER_DAY)
        deleted = 0
        while True:
            with self._db.transaction() as conn:
                done_upto = self._delivered_upto(conn)
                sql = "SELECT seq FROM readings WHERE time_ns < ?"
                args: list[int] = [cutoff]
                if done_upto is not None:
                    sql += " AND seq <= ?"
                    args.append(done_upto)
                args.append(_RETENTION_CHUNK)
                # Keep the seq high-water mark: the newest rows may be among those deleted.
                conn.execute(
                    "UPDATE meta SET value = MAX(value, (SELECT COALESCE(MAX(seq), 0)"
                    " FROM readings)) WHERE key = 'last_seq'"
                )
                n = conn.execute(
                    f"DELETE FROM readings WHERE seq IN ({sql} LIMIT ?)", args
                ).rowcount
            deleted += max(n, 0)
            if n < _RETENTION_CHUNK:
                return deleted

    def _delivered_upto(self, conn: sqlite3.Connection) -> int | None:
        # Only the sinks in use hold retention back: with none (database.type none, or every
        # backend swapped away) old cursors would otherwise keep every reading for ever.
        rows = conn.execute("SELECT sink, last_seq FROM cursors").fetchall()
        active = [seq for sink, seq in rows if sink in self._active_sinks]
        return min(active) if active else None

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _stored(conn: sqlite3.Connection, sink: str) -> int | None:
        row = conn.execute("SELECT last_seq FROM cursors WHERE sink = ?", (sink,)).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _start(conn: sqlite3.Connection) -> int:
        """Where a new cursor starts: with the least advanced sink, else at the beginning."""
        (start,) = conn.execute("SELECT COALESCE(MIN(last_seq), 0) FROM cursors").fetchone()
        return int(start)

    def _position(self, conn: sqlite3.Connection, sink: str) -> int:
        stored = self._stored(conn, sink)
        return self._start(conn) if stored is None else stored

    def _create(self, conn: sqlite3.Connection, sink: str) -> int:
        start = self._start(conn)
        conn.execute("INSERT INTO cursors(sink, last_seq) VALUES (?, ?)", (sink, start))
        return start
