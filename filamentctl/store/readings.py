"""Every reading, once: the in-memory buffer, the commit that stores it, and the queries.

The sampler ``add``\\ s readings to a buffer and ``commit``\\ s it in one transaction at least every
``storage.commit_interval`` seconds (sooner when a delivery batch is due), so a ``kill -9`` loses
at most that buffer; delivery only ever sees committed readings. Queries see buffered readings
too. Long reads stream from a read-only connection (:meth:`Database.reader`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import starmap
from typing import Any

from filamentctl.core.reading import Reading
from filamentctl.store.database import Database, meta_add

READ_CHUNK = 2000  # readings per query (and in memory) when a long read is streamed
COLUMNS = "seq, time_ns, temperature_c, humidity, pressure_hpa"
# The same columns in the order of Reading's constructor: rows become Readings with no conversion.
READING_ORDER = "time_ns, seq, temperature_c, humidity, pressure_hpa"
log = logging.getLogger("filamentctl.history")

#: Runs inside a commit's transaction with the new seq high-water mark; returns what to do once
#: the transaction is stored (the backlog cap: see :meth:`Backlog.cap_active`).
CommitStep = Callable[[sqlite3.Connection, int], Callable[[], None]]


class Readings:
    """The readings table and the buffer in front of it. Thread-safe (``db.lock``).

    ``max_buffer`` bounds the readings held in memory while commits fail; beyond it the oldest
    are dropped and counted (``unsaved_dropped`` until a commit stores the count).
    """

    def __init__(self, db: Database, *, max_buffer: int = 50_000) -> None:
        self._db = db
        self._max_buffer = max(int(max_buffer), 1)
        self._buffer: list[Reading] = []
        self._last_issued = 0  # highest seq handed out by next_seq() or seen in add()
        self._last_committed = 0  # highest seq in the readings table (or ever committed)
        self.unsaved_dropped = 0  # buffer overflow drops not yet persisted in meta
        self.last_commit_error: str | None = None

    def opened(self, high_water: int) -> None:
        """The file was opened and has stored seqs up to ``high_water``."""
        with self._db.lock:
            self._last_committed = int(high_water)
            self._last_issued = max(self._last_issued, self._last_committed)

    # -- writing -----------------------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number for the next reading: above every seq issued or stored so far."""
        with self._db.lock:
            self._last_issued += 1
            return self._last_issued

    def add(self, reading: Reading) -> None:
        """Buffer a reading in memory; it reaches the database (and delivery) at ``commit()``.

        Fails with ``ValueError`` when ``reading.seq`` is not above every stored or buffered seq
        (take seqs from ``next_seq()``).
        """
        with self._db.lock:
            highest = self._buffer[-1].seq if self._buffer else self._last_committed
            if reading.seq <= highest:
                raise ValueError(f"reading seq {reading.seq} is not above {highest}")
            self._buffer.append(reading)
            self._last_issued = max(self._last_issued, reading.seq)
            # While commits fail (disk full) the buffer must not eat the Pi's memory.
            if len(self._buffer) > self._max_buffer:
                excess = len(self._buffer) - self._max_buffer
                del self._buffer[:excess]
                if not self.unsaved_dropped:
                    log.error(
                        "more than %d readings are waiting to be saved to the history (last "
                        "error: %s): dropping the oldest (counted in status)",
                        self._max_buffer,
                        self.last_commit_error or "none",
                    )
                self.unsaved_dropped += excess

    def pending_count(self) -> int:
        """Readings buffered but not yet committed."""
        with self._db.lock:
            return len(self._buffer)

    def commit(self, step: CommitStep | None = None) -> int:
        """Write all buffered readings in one transaction; returns how many were written.

        ``step`` runs in the same transaction (the backlog cap), and what it returns runs once
        the transaction is stored. On a database error (disk full, I/O error, locked) nothing is
        lost: the readings stay buffered, ``last_commit_error`` says why, the error is logged
        once per episode, and the next ``commit()`` tries again. Returns 0 then; never raises
        for database trouble.
        """
        with self._db.lock:
            if not self._buffer and not self.unsaved_dropped:
                self._db.connection()  # still fails when the history is not open
                return 0
            rows = [
                (r.seq, r.time_ns, r.temperature_c, r.humidity, r.pressure_hpa)
                for r in self._buffer
            ]
            last = self._buffer[-1].seq if self._buffer else self._last_committed
            try:
                with self._db.transaction() as conn:
                    conn.executemany(
                        "INSERT INTO readings(seq, time_ns, temperature_c, humidity,"
                        " pressure_hpa) VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                    # meta.last_seq is not touched here: MAX(seq) of the table is the high-water
                    # mark, and one page less per commit matters for the disk-write budget.
                    # Retention, which deletes rows, records it first.
                    if self.unsaved_dropped:
                        meta_add(conn, "dropped", self.unsaved_dropped)
                    then = step(conn, last) if step is not None else None
            except sqlite3.Error as exc:
                if self.last_commit_error is None:
                    log.error(
                        "cannot save readings to %s (%s); keeping %d in memory and retrying",
                        self._db.path,
                        exc,
                        len(self._buffer),
                    )
                self.last_commit_error = str(exc)
                return 0
            if self.last_commit_error is not None:
                log.warning("history writes work again: saved %d buffered readings", len(rows))
                self.last_commit_error = None
            self._buffer.clear()
            self.unsaved_dropped = 0
            self._last_committed = max(self._last_committed, last)
            if then is not None:
                then()
            return len(rows)

    def last_committed_seq(self) -> int:
        """The highest seq ever committed (0 for a new history)."""
        with self._db.lock:
            return self._last_committed

    # -- reading -----------------------------------------------------------------------------

    def latest(self) -> Reading | None:
        """The newest reading, buffered or committed; None for an empty history."""
        with self._db.lock:
            if self._buffer:
                return self._buffer[-1]
            row = (
                self._db.connection()
                .execute(f"SELECT {COLUMNS} FROM readings ORDER BY seq DESC LIMIT 1")
                .fetchone()
            )
            return None if row is None else reading_from_row(row)

    def query(
        self, since_ns: int | None, until_ns: int | None = None, limit: int | None = None
    ) -> list[Reading]:
        """Readings sampled in ``[since_ns, until_ns)`` (None: unbounded), committed and buffered.

        Oldest first. With ``limit``, only the most recent ``limit`` of them.
        """
        where: list[str] = []
        args: list[int] = []
        if since_ns is not None:
            where.append("time_ns >= ?")
            args.append(since_ns)
        if until_ns is not None:
            where.append("time_ns < ?")
            args.append(until_ns)
        sql = f"SELECT {COLUMNS} FROM readings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(int(limit), 0))
        with self._db.lock:
            rows = self._db.connection().execute(sql, args).fetchall()
            buffered = [
                r
                for r in self._buffer
                if (since_ns is None or r.time_ns >= since_ns)
                and (until_ns is None or r.time_ns < until_ns)
            ]
        out = [reading_from_row(row) for row in reversed(rows)] + buffered
        if limit is not None:
            out = out[len(out) - max(int(limit), 0) :]
        return out

    def downsample(self, since_ns: int, step_ns: int, limit: int) -> list[Reading]:
        """Averages over ``step_ns`` buckets since ``since_ns`` (charts of days of data).

        Each bucket is one Reading: mean values, mean time, the bucket's first seq; the newest
        ``limit`` buckets, oldest first. Committed readings are averaged by SQLite in one pass;
        buffered ones (up to one ``storage.commit_interval``, 30 s by default, which is several
        buckets of a short chart) are folded in here, so a chart is as fresh as ``query``.
        Fails with ValueError when ``step_ns`` is not positive.
        """
        if step_ns <= 0:
            raise ValueError("step must be positive")
        sql = (
            # AVG is a double: average offsets from since_ns, not 19-digit timestamps.
            "SELECT time_ns / ?, MIN(seq), COUNT(*), AVG(time_ns - ?), AVG(temperature_c),"
            " AVG(humidity), COUNT(pressure_hpa), AVG(pressure_hpa) FROM readings"
            " WHERE time_ns >= ? GROUP BY time_ns / ? ORDER BY MIN(seq) DESC LIMIT ?"
        )
        args = (step_ns, since_ns, since_ns, step_ns, max(limit, 0))
        with self._db.lock:
            rows = self._db.connection().execute(sql, args).fetchall()
            buffered = [r for r in self._buffer if r.time_ns >= since_ns]
        buckets: dict[int, _Bucket] = {}
        for key, seq, n, offset, temperature, humidity, n_pressure, pressure in rows:
            buckets[int(key)] = _Bucket(
                int(seq), n, offset, temperature, humidity, n_pressure, pressure or 0.0
            )
        for r in buffered:
            bucket = buckets.setdefault(r.time_ns // step_ns, _Bucket(r.seq))
            bucket.add(float(r.time_ns - since_ns), r.temperature_c, r.humidity, r.pressure_hpa)
        newest = sorted(buckets.values(), key=lambda b: b.seq)[-limit:] if limit > 0 else []
        return [b.reading(since_ns) for b in newest]

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
        with self._db.lock:
            self._db.connection()
            upto = self._last_committed
            buffered = [r for r in self._buffer if r.time_ns >= since_ns]
        if len(buffered) >= limit:
            if limit:
                yield buffered[len(buffered) - limit :]
            return
        want = limit - len(buffered)
        with self._db.reader() as conn:
            # The seq of the oldest reading wanted: the want-th newest since since_ns.
            row = conn.execute(
                "SELECT seq FROM readings WHERE time_ns >= ? AND seq <= ?"
                " ORDER BY seq DESC LIMIT 1 OFFSET ?",
                (since_ns, upto, want - 1),
            ).fetchone()
            after = int(row[0]) - 1 if row is not None else -1
            while True:
                rows = conn.execute(
                    f"SELECT {READING_ORDER} FROM readings"
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
        limit = max(int(limit), 0)
        with self._db.lock:
            self._db.connection()
            upto = self._last_committed
            buffered = [r for r in self._buffer if r.time_ns >= since_ns]
        fresh: dict[int, _Bucket] = {}  # the buffered readings' buckets, by key
        for r in buffered:
            bucket = fresh.setdefault(r.time_ns // step_ns, _Bucket(r.seq))
            bucket.add(float(r.time_ns - since_ns), r.temperature_c, r.humidity, r.pressure_hpa)
        with self._db.reader() as conn:
            # Buckets that committed readings share with buffered ones count once.
            shared = {
                key
                for key in fresh
                if conn.execute(
                    "SELECT 1 FROM readings WHERE time_ns >= ? AND time_ns >= ? AND time_ns < ?"
                    " AND seq <= ? LIMIT 1",
                    (since_ns, key * step_ns, (key + 1) * step_ns, upto),
                ).fetchone()
            }
            want = limit - (len(fresh) - len(shared))  # committed buckets still wanted
            if want > 0:
                # The newest `want` committed buckets, oldest first: find where they start.
                row = conn.execute(
                    "SELECT DISTINCT time_ns / ? AS bucket FROM readings WHERE time_ns >= ?"
                    " AND seq <= ? ORDER BY bucket DESC LIMIT 1 OFFSET ?",
                    (step_ns, since_ns, upto, want - 1),
                ).fetchone()
                start_ns = since_ns if row is None else max(since_ns, int(row[0]) * step_ns)
                cursor = conn.execute(
                    "SELECT time_ns / ?, MIN(seq), COUNT(*), AVG(time_ns - ?), AVG(temperature_c),"
                    " AVG(humidity), COUNT(pressure_hpa), AVG(pressure_hpa) FROM readings"
                    " WHERE time_ns >= ? AND seq <= ? GROUP BY time_ns / ? ORDER BY MIN(seq)",
                    (step_ns, since_ns, start_ns, upto, step_ns),
                )
                while got := cursor.fetchmany(max(int(chunk), 1)):
                    out = []
                    for key, seq, n, offset, temperature, humidity, n_pressure, pressure in got:
                        bucket = _Bucket(
                            int(seq), n, offset, temperature, humidity, n_pressure, pressure or 0.0
                        )
                        bucket.join(fresh.pop(int(key), None))
                        out.append(bucket.reading(since_ns))
                    yield out
        newest = sorted(fresh.values(), key=lambda b: b.seq)[-limit:] if limit else []
        if newest:
            yield [b.reading(since_ns) for b in newest]


class _Bucket:
    """One bucket of :meth:`Readings.downsample`: running means that more readings join."""

    def __init__(
        self,
        seq: int,
        n: float = 0.0,
        offset: float = 0.0,
        temperature_c: float = 0.0,
        humidity: float = 0.0,
        n_pressure: float = 0.0,
        pressure_hpa: float = 0.0,
    ) -> None:
        self.seq, self.n, self.offset = seq, n, offset
        self.temperature_c, self.humidity = temperature_c, humidity
        self.n_pressure, self.pressure_hpa = n_pressure, pressure_hpa

    def add(
        self, offset: float, temperature_c: float, humidity: float, pressure: float | None
    ) -> None:
        self.n += 1
        self.offset += (offset - self.offset) / self.n
        self.temperature_c += (temperature_c - self.temperature_c) / self.n
        self.humidity += (humidity - self.humidity) / self.n
        if pressure is not None:
            self.n_pressure += 1
            self.pressure_hpa += (pressure - self.pressure_hpa) / self.n_pressure

    def join(self, other: _Bucket | None) -> None:
        """Fold ``other`` (later readings of the same bucket) into this one."""
        if other is None or not other.n:
            return
        n = self.n + other.n
        self.offset = (self.offset * self.n + other.offset * other.n) / n
        self.temperature_c = (self.temperature_c * self.n + other.temperature_c * other.n) / n
        self.humidity = (self.humidity * self.n + other.humidity * other.n) / n
        if other.n_pressure:
            n_p = self.n_pressure + other.n_pressure
            self.pressure_hpa = (
                self.pressure_hpa * self.n_pressure + other.pressure_hpa * other.n_pressure
            ) / n_p
            self.n_pressure = n_p
        self.n = n
        self.seq = min(self.seq, other.seq)

    def reading(self, since_ns: int) -> Reading:
        return Reading(
            time_ns=since_ns + int(self.offset),
            seq=self.seq,
            temperature_c=self.temperature_c,
            humidity=self.humidity,
            pressure_hpa=self.pressure_hpa if self.n_pressure else None,
        )


def reading_from_row(row: Sequence[Any]) -> Reading:
    """A Reading from a row in :data:`COLUMNS` order."""
    seq, time_ns, temperature_c, humidity, pressure_hpa = row
    return Reading(
        time_ns=int(time_ns),
        seq=int(seq),
        temperature_c=float(temperature_c),
        humidity=float(humidity),
        pressure_hpa=None if pressure_hpa is None else float(pressure_hpa),
    )


def reading_to_payload(r: Reading) -> dict[str, Any]:
    """A Reading as the JSON object stored in a dead-letter entry."""
    return {
        "seq": r.seq,
        "time_ns": r.time_ns,
        "temperature_c": r.temperature_c,
        "humidity": r.humidity,
        "pressure_hpa": r.pressure_hpa,
    }


def reading_from_payload(item: Mapping[str, Any]) -> Reading:
    """The inverse of :func:`reading_to_payload`."""
    return reading_from_row(
        (
            item["seq"],
            item["time_ns"],
            item["temperature_c"],
            item["humidity"],
            item.get("pressure_hpa"),
        )
    )
