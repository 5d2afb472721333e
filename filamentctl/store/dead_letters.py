"""The dead-letter table: batches a backend refused as bad data, kept for inspection and replay.

Moving a batch here takes it out of its sink's backlog in the same transaction
(:meth:`DeadLetters.add`). Reading the entries back changes nothing; only
:meth:`DeadLetters.purge` deletes them, after a successful replay or when the user says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from filamentctl.core.reading import Reading, iso_utc
from filamentctl.store.backlog import Backlog
from filamentctl.store.database import Database, meta_add
from filamentctl.store.readings import reading_from_payload, reading_to_payload


class DeadLetters:
    """Dead-letter entries of every sink. Thread-safe (``db.lock``).

    ``clock_ns`` stamps new entries (wall clock, ns since the epoch).
    """

    def __init__(
        self, db: Database, backlog: Backlog, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self._db = db
        self._backlog = backlog
        self._clock_ns = clock_ns

    def add(self, sink: str, readings: Sequence[Reading], status: int | None, error: str) -> int:
        """Move a batch the backend refused as bad data here; returns the new entry's id.

        ``sink``'s cursor moves past the batch and ``rejected`` counts its readings. Fails with
        ``ValueError`` for an empty batch and ``sqlite3.Error`` when the database cannot be
        written (then nothing changed and the batch is still in the backlog).
        """
        if not readings:
            raise ValueError("cannot dead-letter an empty batch")
        payload = json.dumps([reading_to_payload(r) for r in readings], separators=(",", ":"))
        with self._db.transaction() as conn:
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
            self._backlog.advance(conn, sink, max(r.seq for r in readings))
            meta_add(conn, "rejected", len(readings))
        return int(cur.lastrowid or 0)

    def entries(self) -> list[dict[str, Any]]:
        """Dead-letter entries, oldest first (without their readings)."""
        with self._db.lock:
            rows = (
                self._db.connection()
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

    def readings(self, ids: Iterable[int] | None = None) -> list[Reading]:
        """The readings of the given entries (all when None), oldest first. Reads only: a
        replay sends them, then calls :meth:`purge` with ``delivered=True``, so a failed replay
        loses nothing."""
        where, args = _selection(ids)
        if where is None:
            return []
        with self._db.lock:
            rows = (
                self._db.connection()
                .execute(f"SELECT payload FROM dead_letter{where} ORDER BY id", args)
                .fetchall()
            )
        readings = [
            reading_from_payload(item) for (payload,) in rows for item in json.loads(payload)
        ]
        readings.sort(key=lambda r: r.seq)
        return readings

    def purge(self, ids: Iterable[int] | None = None, *, delivered: bool = False) -> int:
        """Delete entries (all when None); returns how many went.

        ``delivered=True`` (after a successful replay) adds their readings to ``written``. Fails
        with ``sqlite3.Error`` when the database cannot be written (then nothing was deleted).
        """
        where, args = _selection(ids)
        if where is None:
            return 0
        with self._db.transaction() as conn:
            (readings,) = conn.execute(
                f"SELECT COALESCE(SUM(count), 0) FROM dead_letter{where}", args
            ).fetchone()
            n = conn.execute(f"DELETE FROM dead_letter{where}", args).rowcount
            if delivered:
                meta_add(conn, "written", int(readings))
        return n

    def totals(self) -> tuple[int, int]:
        """(entries, readings in them)."""
        with self._db.lock:
            entries, readings = (
                self._db.connection()
                .execute("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM dead_letter")
                .fetchone()
            )
        return int(entries), int(readings)


def _selection(ids: Iterable[int] | None) -> tuple[str | None, list[int]]:
    """(WHERE clause, its arguments) for ``ids`` (every entry when None); (None, []) when
    ``ids`` is empty: nothing is selected."""
    if ids is None:
        return "", []
    args = [int(i) for i in ids]
    if not args:
        return None, []
    return f" WHERE id IN ({','.join('?' * len(args))})", args
