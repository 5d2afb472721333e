"""The local history: every reading, once, in SQLite — and the delivery backlog of each sink.

One connection (WAL, ``synchronous=NORMAL``) guarded by one lock is shared by the sampler, the
delivery thread and the socket handlers. The sampler ``add``\\ s readings to an in-memory buffer and
``commit``\\ s the buffer in one transaction at least every ``storage.commit_interval`` seconds
(sooner when a delivery batch is due), so a ``kill -9`` loses at most that buffer; delivery only
ever sees committed readings.

Each sink's progress is a cursor (the highest seq it acknowledged or that was moved past). A reading
leaves a sink's backlog only through ``ack`` (the backend stored it), ``reject`` (it went to the
dead-letter table) or the backlog cap (dropped from the backlog and counted; it stays in the local
history until retention removes it). The cap is applied by every ``commit`` in the same
transaction that adds the readings, so a committed backlog never exceeds ``max_backlog``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import starmap
from pathlib import Path
from types import TracebackType
from typing import Any

from filamentctl.core.reading import Reading, ReadingRow, iso_utc
from filamentctl.errors import UserError

PAGE_SIZE = 1024
READ_CHUNK = 2000  # readings per query (and in memory) when a long read is streamed
MAX_IDLE_READERS = 2  # read-only connections kept open for the next long read
EXACT_COUNT_LIMIT = 100_000  # backlogs above this are counted from the seq span
log = logging.getLogger("filamentctl.history")

SCHEMA_VERSION = 1

# Index i holds the statements that take the schema from version i to version i + 1.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE readings (
            seq INTEGER PRIMARY KEY,
            time_ns INTEGER NOT NULL,
            temperature_c REAL NOT NULL,
            humidity REAL NOT NULL,
            pressure_hpa REAL
        )""",
        "CREATE INDEX readings_time ON readings(time_ns)",
        """CREATE TABLE cursors (
            sink TEXT PRIMARY KEY,
            last_seq INTEGER NOT NULL
        )""",
        """CREATE TABLE dead_letter (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sink TEXT NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            count INTEGER NOT NULL,
            status INTEGER,
            error TEXT NOT NULL,
            created_ns INTEGER NOT NULL,
            payload TEXT NOT NULL
        )""",
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        )""",
        "INSERT INTO meta(key, value) VALUES"
        " ('last_seq', 0), ('written', 0), ('dropped', 0), ('rejected', 0)",
    ),
)

_NS_PER_DAY = 86_400 * 1_000_000_000
_RETENTION_CHUNK = 5_000  # rows per delete, so the sampler never waits long on the lock


class History:
    """The SQLite history and per-sink delivery cursors. Thread-safe; call ``open()`` first.

    ``max_backlog`` (readings, ≤ 0 = unlimited) caps each sink's unsent backlog;
    ``retention_days`` (≤ 0 = keep forever) bounds how long delivered readings are kept.
    ``clock_ns`` stamps dead-letter entries (wall clock, ns since the epoch). ``max_buffer`` bounds
    the readings held in memory while commits fail; beyond it the oldest are dropped and counted.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_backlog: int,
        retention_days: float,
        clock_ns: Callable[[], int] = time.time_ns,
        max_buffer: int = 50_000,
        recover_corrupt: bool = False,
    ) -> None:
        self.path = Path(path)
        self.recover_corrupt = recover_corrupt
        self.max_backlog = int(max_backlog)
        self.retention_days = float(retention_days)
        self._clock_ns = clock_ns
        self._max_buffer = max(int(max_buffer), 1)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._buffer: list[Reading] = []
        self._last_issued = 0  # highest seq handed out by next_seq() or seen in add()
        self._last_committed = 0  # highest seq in the readings table (or ever committed)
        self._unsaved_dropped = 0  # buffer overflow drops not yet persisted in meta
        self._active_sinks: set[str] = set()
        self._cap_drops: dict[str, int] = {}  # per sink: dropped by the cap, not yet reported
        # Read-only connections for long reads (history queries), kept for reuse; see _reader().
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.last_commit_error: str | None = None
        # Set by open() when it set a damaged file aside: {"kept": path, "reason": why}.
        self.recovered: dict[str, str] | None = None

    @classmethod
    def from_settings(cls, path: Path, settings: Mapping[str, Any]) -> History:
        """Build from ``storage.max_backlog`` and ``storage.retention_days``."""
        return cls(
            path,
            max_backlog=int(settings["storage.max_backlog"]),
            retention_days=float(settings["storage.retention_days"]),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating or migrating) the database. Idempotent.

        A damaged file (not SQLite, garbage, truncated, unreadable tables) fails with
        :class:`UserError` saying so — or, with ``recover_corrupt=True``, is renamed to
        ``history.db.corrupt-<UTC time>`` (its WAL alongside), logged as an error, recorded in
        ``recovered``, and a new, empty history is started in its place. A file written by a
        newer filamentctl always fails with UserError (it is not damaged; upgrade instead).
        A zero-length file is an empty database to SQLite (a crash during the very first start
        leaves one): it is used as is, with a warning.
        """
        with self._lock:
            if self._conn is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            damage = _file_damage(self.path)
            conn: sqlite3.Connection | None = None
            if damage is None:
                try:
                    conn, last_seq, max_row = self._connect()
                except _Damaged as exc:
                    damage = str(exc)
            if damage is not None:
                if not self.recover_corrupt:
                    raise UserError(
                        f"history database {self.path} is unreadable ({damage}); "
                        "move it aside and restart to begin a new history"
                    )
                self._set_aside(damage)
                try:
                    conn, last_seq, max_row = self._connect()
                except _Damaged as exc:  # a fresh file failing means the disk itself is bad
                    raise UserError(
                        f"cannot create a new history database {self.path} ({exc})"
                    ) from None
            assert conn is not None
            self._conn = conn
            self._last_committed = max(int(last_seq), int(max_row))
            self._last_issued = max(self._last_issued, self._last_committed)

    def _connect(self) -> tuple[sqlite3.Connection, int, int]:
        """Connect, migrate and read the seq high-water marks; raises _Damaged or UserError."""
        if self.path.exists() and self.path.stat().st_size == 0:
            log.warning(
                "history database %s is empty (0 bytes); starting a new history in it", self.path
            )
        try:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
        except sqlite3.Error as exc:
            raise UserError(f"cannot open history database {self.path}: {exc}") from exc
        try:
            # Small pages for a new file: each commit rewrites whole pages (to the WAL, then at
            # checkpoint to the file), so 1 KiB pages cut the bytes written per commit ~4x on an
            # SD card. Ignored for an existing file.
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
            last_seq = self._meta_get(conn, "last_seq")
            (max_row,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM readings").fetchone()
            # Touch every table the service relies on, so damage shows now, not mid-run.
            conn.execute("SELECT COUNT(*) FROM cursors").fetchone()
            conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _Damaged(str(exc)) from exc
        except BaseException:
            conn.close()
            raise
        return conn, int(last_seq), int(max_row)

    def _set_aside(self, reason: str) -> None:
        """Rename the damaged file (and its WAL) out of the way; drop its shared-memory index."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock_ns() / 1e9))
        kept = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while kept.exists():
            n += 1
            kept = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, kept)
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists():
            os.replace(wal, kept.with_name(kept.name + "-wal"))
        self.path.with_name(self.path.name + "-shm").unlink(missing_ok=True)
        log.error(
            "history database %s is damaged (%s): kept it as %s and started a new, empty "
            "history; readings in the old file are not delivered (inspect it with sqlite3, "
            "then delete it)",
            self.path,
            reason,
            kept,
        )
        self.recovered = {"kept": str(kept), "reason": reason}

    def close(self) -> None:
        """Commit buffered readings and close. Safe to call twice; later calls need ``open()``."""
        with self._lock:
            if self._conn is None:
                return
            self.commit()
            if self._buffer:
                log.error(
                    "closing the history with %d readings that could not be saved (%s)",
                    len(self._buffer),
                    self.last_commit_error,
                )
            self._conn.close()
            self._conn = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()

    def __enter__(self) -> History:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing readings --------------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number for the next reading: above every seq issued or stored so far."""
        with self._lock:
            self._last_issued += 1
            return self._last_issued

    def add(self, reading: Reading) -> None:
        """Buffer a reading in memory; it reaches the database (and delivery) at ``commit()``.

        Fails with ``ValueError`` when ``reading.seq`` is not above every stored or buffered seq
        (take seqs from ``next_seq()``).
        """
        with self._lock:
            highest = self._buffer[-1].seq if self._buffer else self._last_committed
            if reading.seq <= highest:
                raise ValueError(f"reading seq {reading.seq} is not above {highest}")
            self._buffer.append(reading)
            self._last_issued = max(self._last_issued, reading.seq)
            # While commits fail (disk full) the buffer must not eat the Pi's memory.
            if len(self._buffer) > self._max_buffer:
                excess = len(self._buffer) - self._max_buffer
                del self._buffer[:excess]
                if not self._unsaved_dropped:
                    log.error(
                        "more than %d readings are waiting to be saved to the history (last "
                        "error: %s): dropping the oldest (counted in status)",
                        self._max_buffer,
                        self.last_commit_error or "none",
                    )
                self._unsaved_dropped += excess

    def pending_count(self) -> int:
        """Readings buffered but not yet committed."""
        with self._lock:
            return len(self._buffer)

    def commit(self) -> int:
        """Write all buffered readings in one transaction; returns how many were written.

        On a database error (disk full, I/O error, locked) nothing is lost: the readings stay
        buffered, ``last_commit_error`` says why, the error is logged once per episode, and the
        next ``commit()`` tries again. Returns 0 then; never raises for database trouble.
        """
        with self._lock:
            conn = self._require()
            if not self._buffer and not self._unsaved_dropped:
                return 0
            rows = [
                (r.seq, r.time_ns, r.temperature_c, r.humidity, r.pressure_hpa)
                for r in self._buffer
            ]
            last = self._buffer[-1].seq if self._buffer else self._last_committed
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO readings(seq, time_ns, temperature_c, humidity, pressure_hpa)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                # meta.last_seq is not touched here: MAX(seq) of the table is the high-water
                # mark, and one page less per commit matters for the disk-write budget.
                # Retention, which deletes rows, records it first.
                if self._unsaved_dropped:
                    self._meta_add(conn, "dropped", self._unsaved_dropped)
                capped = {sink: self._cap(conn, sink, last) for sink in self._active_sinks}
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                if self.last_commit_error is None:
                    log.error(
                        "cannot save readings to %s (%s); keeping %d in memory and retrying",
                        self.path,
                        exc,
                        len(self._buffer),
                    )
                self.last_commit_error = str(exc)
                return 0
            if self.last_commit_error is not None:
                log.warning("history writes work again: saved %d buffered readings", len(rows))
                self.last_commit_error = None
            self._buffer.clear()
            self._unsaved_dropped = 0
            self._last_committed = max(self._last_committed, last)
            self._note_cap_drops(capped)
            return len(rows)

    # -- reading the history -----------------------------------------------------------------

    def latest(self) -> Reading | None:
        """The newest reading, buffered or committed; None for an empty history."""
        with self._lock:
            if self._buffer:
                return self._buffer[-1]
            row = (
                self._require()
                .execute(f"SELECT {_COLUMNS} FROM readings ORDER BY seq DESC LIMIT 1")
                .fetchone()
            )
            return None if row is None else _reading(row)

    def query(
        self, since_ns: int | None, until_ns: int | None = None, limit: int | None = None
    ) -> list[Reading]:
        """Readings sampled in ``[since_ns, until_ns)`` (None: unbounded), committed and buffered.

        Oldest first. With ``limit``, only the most recent ``limit`` of them.
        """
        where: list[str] = []
        args: list[Any] = []
        if since_ns is not None:
            where.append("time_ns >= ?")
            args.append(since_ns)
        if until_ns is not None:
            where.append("time_ns < ?")
            args.append(until_ns)
        sql = f"SELECT {_COLUMNS} FROM readings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(int(limit), 0))
        with self._lock:
            rows = self._require().execute(sql, args).fetchall()
            buffered = [
                r
                for r in self._buffer
                if (since_ns is None or r.time_ns >= since_ns)
                and (until_ns is None or r.time_ns < until_ns)
            ]
        out = [_reading(row) for row in reversed(rows)] + buffered
        if limit is not None:
            out = out[len(out) - max(int(limit), 0) :]
        return out

    def downsample(self, since_ns: int, step_ns: int, limit: int) -> list[Reading]:
        """Averages over ``step_ns`` buckets since ``since_ns`` (charts of days of data).

        Each bucket is one Reading: mean values, mean time, the bucket's first seq. Computed
        by SQLite in one pass; the newest ``limit`` buckets, oldest first. Buffered (not yet
        committed) readings are left out: at most one commit interval, finer than a bucket.
        """
        if step_ns <= 0:
            raise ValueError("step must be positive")
        sql = (
            # AVG is a double: average offsets from since_ns, not 19-digit timestamps.
            "SELECT MIN(seq), ? + CAST(AVG(time_ns - ?) AS INTEGER), AVG(temperature_c),"
            " AVG(humidity), AVG(pressure_hpa) FROM readings WHERE time_ns >= ?"
            " GROUP BY time_ns / ? ORDER BY MIN(seq) DESC LIMIT ?"
        )
        args = (since_ns, since_ns, since_ns, step_ns, max(limit, 0))
        with self._lock:
            rows = self._require().execute(sql, args).fetchall()
        return [_reading(row) for row in reversed(rows)]

    def iter_query(
        self, since_ns: int, limit: int, chunk: int = READ_CHUNK
    ) -> Iterator[list[Reading]]:
        """Like :meth:`query` (the newest ``limit`` readings since ``since_ns``, oldest first),
        in chunks of at most ``chunk`` readings, without the lock the sampler needs.

        Committed readings come from a read-only connection (WAL lets it read while the service
        writes), each chunk its own short query: memory stays at one chunk, and a slow reader
        delays neither a reading, a commit nor delivery. Buffered readings come last.
        """
        limit = max(int(limit), 0)
        with self._lock:
            self._require()
            upto = self._last_committed
            buffered = [r for r in self._buffer if r.time_ns >= since_ns]
        if len(buffered) >= limit:
            if limit:
                yield buffered[len(buffered) - limit :]
            return
        want = limit - len(buffered)
        with self._reading() as conn:
            # The seq of the oldest reading wanted: the want-th newest since since_ns.
            row = conn.execute(
                "SELECT seq FROM readings WHERE time_ns >= ? AND seq <= ?"
                " ORDER BY seq DESC LIMIT 1 OFFSET ?",
                (since_ns, upto, want - 1),
            ).fetchone()
            after = int(row[0]) - 1 if row is not None else -1
            while True:
                rows = conn.execute(
                    f"SELECT {_READING_ORDER} FROM readings"
                    " WHERE seq > ? AND seq <= ? AND time_ns >= ? ORDER BY seq LIMIT ?",
                    (after, upto, since_ns, max(int(chunk), 1)),
                ).fetchall()
                if not rows:
                    break
                after = int(rows[-1][1])
                yield list(starmap(Reading, rows))
        if buffered:
            yield buffered

    def iter_downsample(
        self, since_ns: int, step_ns: int, limit: int, chunk: int = READ_CHUNK
    ) -> Iterator[list[Reading]]:
        """:meth:`downsample` in chunks, from a read-only connection (see :meth:`iter_query`)."""
        if step_ns <= 0:
            raise ValueError("step must be positive")
        with self._lock:
            self._require()
        with self._reading() as conn:
            # The newest `limit` buckets, oldest first: find where they start, then stream.
            row = conn.execute(
                "SELECT DISTINCT time_ns / ? AS bucket FROM readings WHERE time_ns >= ?"
                " ORDER BY bucket DESC LIMIT 1 OFFSET ?",
                (step_ns, since_ns, max(limit, 1) - 1),
            ).fetchone()
            start_ns = since_ns if row is None else max(since_ns, int(row[0]) * step_ns)
            cursor = conn.execute(
                "SELECT MIN(seq), ? + CAST(AVG(time_ns - ?) AS INTEGER), AVG(temperature_c),"
                " AVG(humidity), AVG(pressure_hpa) FROM readings WHERE time_ns >= ?"
                " GROUP BY time_ns / ? ORDER BY MIN(seq)",
                (since_ns, since_ns, start_ns, step_ns),
            )
            while True:
                got = cursor.fetchmany(max(int(chunk), 1))
                if not got:
                    break
                yield [_reading(row) for row in got]

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own for one long read; returned for reuse after."""
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
                timeout=5.0,
            )
            conn.execute("PRAGMA query_only=1")
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        with self._readers_lock:
            if len(self._readers) < MAX_IDLE_READERS and self._conn is not None:
                self._readers.append(conn)
                return
        conn.close()

    def last_committed_seq(self) -> int:
        """The highest seq ever committed (0 for a new history)."""
        with self._lock:
            return self._last_committed

    # -- per-sink cursors --------------------------------------------------------------------

    def ensure_cursor(self, sink: str, *, activate: bool = True) -> int:
        """Create ``sink``'s cursor if needed and (by default) mark the sink active; returns it.

        A new sink starts where the least advanced existing sink stands (switching backend carries
        the unsent backlog over), or at the beginning of history when there is no sink yet.
        Read-only callers pass ``activate=False``: a replaced sink's late status call must not
        make it hold back retention again.
        """
        with self._lock:
            conn = self._require()
            if activate:
                self._active_sinks.add(sink)
            row = conn.execute("SELECT last_seq FROM cursors WHERE sink = ?", (sink,)).fetchone()
            if row is not None:
                return int(row[0])
            (start,) = conn.execute("SELECT COALESCE(MIN(last_seq), 0) FROM cursors").fetchone()
            conn.execute("INSERT INTO cursors(sink, last_seq) VALUES (?, ?)", (sink, int(start)))
            return int(start)

    def release_sink(self, sink: str) -> None:
        """The sink was replaced (live reload): its cursor no longer holds back retention.

        The cursor row stays, so switching back later resumes where it stopped.
        """
        with self._lock:
            self._active_sinks.discard(sink)

    def cursor(self, sink: str) -> int:
        """The highest seq ``sink`` is done with (created as in ``ensure_cursor``)."""
        return self.ensure_cursor(sink, activate=False)

    def backlog(self, sink: str, limit: int) -> list[Reading]:
        """Up to ``limit`` committed readings ``sink`` has not yet delivered, oldest first."""
        with self._lock:
            cursor = self.ensure_cursor(sink, activate=False)
            rows = (
                self._require()
                .execute(
                    f"SELECT {_READING_ORDER} FROM readings WHERE seq > ? ORDER BY seq LIMIT ?",
                    (cursor, max(int(limit), 0)),
                )
                .fetchall()
            )
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
        with self._lock:
            start = self.ensure_cursor(sink, activate=False)
            if after is not None:
                start = max(start, int(after))
            sql = f"SELECT {_READING_ORDER} FROM readings WHERE seq > ?"
            args: list[int] = [start]
            if upto is not None:
                sql += " AND seq <= ?"
                args.append(int(upto))
            args.append(max(int(limit), 0))
            # The columns come in Reading's field order and with its types (INTEGER/REAL).
            rows: list[ReadingRow] = (
                self._require().execute(sql + " ORDER BY seq LIMIT ?", args).fetchall()
            )
            return rows

    def backlog_count(self, sink: str, *, upto: int | None = None) -> int:
        """How many committed readings ``sink`` has not yet delivered (with ``upto``: only
        those with a seq up to it)."""
        with self._lock:
            cursor = self.ensure_cursor(sink, activate=False)
            return self._count_after(self._require(), cursor, upto)

    def _count_after(self, conn: sqlite3.Connection, cursor: int, upto: int | None = None) -> int:
        top = self._last_committed if upto is None else min(upto, self._last_committed)
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
        with self._lock:
            cursor = self.ensure_cursor(sink, activate=False)
            row = (
                self._require()
                .execute(
                    "SELECT time_ns FROM readings WHERE seq > ? ORDER BY seq LIMIT 1", (cursor,)
                )
                .fetchone()
            )
            return None if row is None else int(row[0])

    def ack(self, sink: str, last_seq: int, count: int) -> None:
        """The backend stored readings up to ``last_seq`` (``count`` of them): advance, count.

        Committed at once. Fails with ``sqlite3.Error`` when the database cannot be written; the
        cursor then stays put and the batch is simply sent again later (writes are idempotent).
        """
        with self._lock:
            conn = self._require()
            self.ensure_cursor(sink, activate=False)
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._advance(conn, sink, last_seq)
                self._meta_add(conn, "written", count)
                conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback(conn)
                raise

    def reject(self, sink: str, readings: Sequence[Reading], status: int | None, error: str) -> int:
        """Move a batch the backend refused as bad data to the dead-letter table; returns its id.

        The cursor moves past the batch and ``rejected`` counts its readings. Fails with
        ``ValueError`` for an empty batch and ``sqlite3.Error`` when the database cannot be written
        (then nothing changed and the batch is still in the backlog).
        """
        if not readings:
            raise ValueError("cannot dead-letter an empty batch")
        payload = json.dumps([_payload(r) for r in readings], separators=(",", ":"))
        with self._lock:
            conn = self._require()
            self.ensure_cursor(sink, activate=False)
            try:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "INSERT INTO dead_letter(sink, first_seq, last_seq, count, status, error,"
                    " created_ns, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sink,
                        readings[0].seq,
                        readings[-1].seq,
                        len(readings),
                        status,
                        error,
                        self._clock_ns(),
                        payload,
                    ),
                )
                self._advance(conn, sink, max(r.seq for r in readings))
                self._meta_add(conn, "rejected", len(readings))
                conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback(conn)
                raise
            return int(cur.lastrowid or 0)

    def enforce_cap(self, sink: str) -> int:
        """Drop ``sink``'s oldest unsent readings beyond ``max_backlog``; returns how many.

        ``commit`` already does this for every active sink; this is for a cap lowered while
        running, or a backlog left by an earlier run. Dropped readings are counted in
        ``dropped``, stay in the local history (only delivery skips them) and are added to what
        :meth:`take_cap_drops` reports.
        """
        if self.max_backlog <= 0:
            return 0
        with self._lock:
            conn = self._require()
            cursor = self.ensure_cursor(sink, activate=False)
            if self._last_committed - cursor <= self.max_backlog:
                return 0  # the usual case: no transaction, nothing written
            try:
                conn.execute("BEGIN IMMEDIATE")
                excess = self._cap(conn, sink, self._last_committed)
                conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback(conn)
                raise
            self._note_cap_drops({sink: excess})
            return excess

    def take_cap_drops(self, sink: str) -> int:
        """Readings of ``sink`` the cap dropped since the last call (for once-per-episode
        warnings; the lasting total is ``counters()["dropped"]``)."""
        with self._lock:
            return self._cap_drops.pop(sink, 0)

    def _cap(self, conn: sqlite3.Connection, sink: str, last: int) -> int:
        """Inside a transaction: move ``sink``'s cursor so that at most ``max_backlog`` readings
        up to seq ``last`` stay unsent; count the rest in ``dropped``. Returns how many."""
        if self.max_backlog <= 0:
            return 0
        row = conn.execute("SELECT last_seq FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            return 0
        cursor = int(row[0])
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
        self._advance(conn, sink, int(new_cursor))
        self._meta_add(conn, "dropped", excess)
        return excess

    def _note_cap_drops(self, dropped: Mapping[str, int]) -> None:
        for sink, n in dropped.items():
            if n:
                self._cap_drops[sink] = self._cap_drops.get(sink, 0) + n

    def apply_retention(self, now_ns: int) -> int:
        """Delete readings sampled more than ``retention_days`` before ``now_ns``; returns how many.

        Only readings every active sink is done with are deleted (active: passed to
        ``ensure_cursor`` since ``open()``; if none was, every stored cursor counts). With no sink
        at all, old readings simply go.
        """
        if self.retention_days <= 0:
            return 0
        cutoff = now_ns - int(self.retention_days * _NS_PER_DAY)
        deleted = 0
        while True:
            with self._lock:
                conn = self._require()
                done_upto = self._delivered_upto(conn)
                sql = "SELECT seq FROM readings WHERE time_ns < ?"
                args: list[Any] = [cutoff]
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

    # -- dead letters ------------------------------------------------------------------------

    def deadletter_list(self) -> list[dict[str, Any]]:
        """Dead-letter entries, oldest first (without their readings)."""
        with self._lock:
            rows = (
                self._require()
                .execute(
                    "SELECT id, sink, first_seq, last_seq, count, status, error, created_ns"
                    " FROM dead_letter ORDER BY id"
                )
                .fetchall()
            )
        return [
            {
                "id": row[0],
                "sink": row[1],
                "first_seq": row[2],
                "last_seq": row[3],
                "count": row[4],
                "status": row[5],
                "error": row[6],
                "created_ns": row[7],
                "created": iso_utc(row[7]),
            }
            for row in rows
        ]

    def deadletter_replay(self, ids: Iterable[int] | None = None) -> list[Reading]:
        """The readings of the given dead-letter entries (all when None), oldest first.

        Read-only: the caller sends them and then calls ``deadletter_purge(ids, delivered=True)``,
        so a failed replay loses nothing.
        """
        sql = "SELECT payload FROM dead_letter"
        args: list[int] = []
        if ids is not None:
            args = [int(i) for i in ids]
            if not args:
                return []
            sql += f" WHERE id IN ({','.join('?' * len(args))})"
        with self._lock:
            rows = self._require().execute(sql + " ORDER BY id", args).fetchall()
        readings = [_from_payload(item) for (payload,) in rows for item in json.loads(payload)]
        readings.sort(key=lambda r: r.seq)
        return readings

    def deadletter_purge(self, ids: Iterable[int] | None = None, *, delivered: bool = False) -> int:
        """Delete dead-letter entries (all when None); returns how many entries went.

        ``delivered=True`` (after a successful replay) adds their readings to ``written``.
        """
        sql = "FROM dead_letter"
        args: list[int] = []
        if ids is not None:
            args = [int(i) for i in ids]
            if not args:
                return 0
            sql += f" WHERE id IN ({','.join('?' * len(args))})"
        with self._lock:
            conn = self._require()
            try:
                conn.execute("BEGIN IMMEDIATE")
                (readings,) = conn.execute(f"SELECT COALESCE(SUM(count), 0) {sql}", args).fetchone()
                n = conn.execute(f"DELETE {sql}", args).rowcount
                if delivered:
                    self._meta_add(conn, "written", int(readings))
                conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback(conn)
                raise
            return n

    # -- health ------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Counters that survive restarts: ``written``, ``dropped``, ``rejected`` (readings),
        ``dead_letter`` (entries) and ``dead_letter_readings``."""
        with self._lock:
            conn = self._require()
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            entries, readings = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM dead_letter"
            ).fetchone()
            return {
                "written": int(meta.get("written", 0)),
                "dropped": int(meta.get("dropped", 0)) + self._unsaved_dropped,
                "rejected": int(meta.get("rejected", 0)),
                "dead_letter": int(entries),
                "dead_letter_readings": int(readings),
            }

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: ``"ok"`` or the first problems it found."""
        with self._lock:
            rows = self._require().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    # -- internals ---------------------------------------------------------------------------

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"history {self.path} is not open")
        return self._conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise UserError(
                f"history database {self.path} was written by a newer filamentctl "
                f"(schema {version}, this version knows {SCHEMA_VERSION}); upgrade filamentctl"
            )
        for target in range(int(version), SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target + 1}")
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    def _delivered_upto(self, conn: sqlite3.Connection) -> int | None:
        # Only the sinks in use hold retention back: with none (database.type none, or every
        # backend swapped away) old cursors would otherwise keep every reading for ever.
        rows = conn.execute("SELECT sink, last_seq FROM cursors").fetchall()
        active = [seq for sink, seq in rows if sink in self._active_sinks]
        return min(active) if active else None

    @staticmethod
    def _advance(conn: sqlite3.Connection, sink: str, last_seq: int) -> None:
        # Cursors only move forward: a late or duplicate ack must not resend delivered data.
        conn.execute(
            "UPDATE cursors SET last_seq = MAX(last_seq, ?) WHERE sink = ?", (last_seq, sink)
        )

    @staticmethod
    def _meta_add(conn: sqlite3.Connection, key: str, amount: int) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (key, amount),
        )

    @staticmethod
    def _meta_get(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                # SQLite may already have rolled back by itself (e.g. after SQLITE_FULL).
                pass


class _Damaged(Exception):
    """The history file exists but is not a usable SQLite database."""


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _file_damage(path: Path) -> str | None:
    """Cheap checks of the file header (no full scan): what is wrong, or None.

    Catches garbage, a foreign file and truncation without reading the whole database, so a
    large history still opens quickly on a Pi.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # an empty database to SQLite (see open())
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"invalid page size {page_size}"
    if size % page_size:
        return f"truncated: {size} bytes is not a whole number of {page_size}-byte pages"
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[92:96] == header[24:28]
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    # With a WAL pending, a checkpoint cut short by a crash may have written the new header
    # before the pages it counts; SQLite finishes that from the WAL, so it is not damage.
    if header_valid and pages and pages * page_size > size and not wal_pending:
        return f"truncated: {size} bytes but the header counts {pages} pages of {page_size}"
    return None


_COLUMNS = "seq, time_ns, temperature_c, humidity, pressure_hpa"
# The same columns in the order of Reading's constructor.
_READING_ORDER = "time_ns, seq, temperature_c, humidity, pressure_hpa"


def _reading(row: Sequence[Any]) -> Reading:
    seq, time_ns, temperature_c, humidity, pressure_hpa = row
    return Reading(
        time_ns=int(time_ns),
        seq=int(seq),
        temperature_c=float(temperature_c),
        humidity=float(humidity),
        pressure_hpa=None if pressure_hpa is None else float(pressure_hpa),
    )


def _payload(r: Reading) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "time_ns": r.time_ns,
        "temperature_c": r.temperature_c,
        "humidity": r.humidity,
        "pressure_hpa": r.pressure_hpa,
    }


def _from_payload(item: Mapping[str, Any]) -> Reading:
    return _reading(
        (
            item["seq"],
            item["time_ns"],
            item["temperature_c"],
            item["humidity"],
            item.get("pressure_hpa"),
        )
    )
