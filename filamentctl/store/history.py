"""The local history: every reading, once, in SQLite — and the delivery backlog of each sink.

:class:`History` is what the service holds: one object composed of four parts that share one
file, one writer connection and one lock (every write is one
:meth:`~filamentctl.store.database.Database.transaction`):

- :class:`~filamentctl.store.database.Database` — the file: connections, migrations, recovery
  from a damaged file, read-only connections for long reads;
- :class:`~filamentctl.store.readings.Readings` — the buffer, the commit, queries, streaming;
- :class:`~filamentctl.store.backlog.Backlog` — per-sink cursors, backlog, cap, retention;
- :class:`~filamentctl.store.dead_letters.DeadLetters` — batches refused as bad data.

Reads never write: creating a sink's cursor is :meth:`History.ensure_cursor`, taken when a sink
is attached. Build one with :meth:`History.from_settings`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from filamentctl.core.reading import Reading, ReadingRow
from filamentctl.store.backlog import Backlog
from filamentctl.store.database import Database, log
from filamentctl.store.dead_letters import DeadLetters
from filamentctl.store.readings import READ_CHUNK, Readings


class History:
    """The SQLite history and per-sink delivery cursors. Thread-safe; call ``open()`` first.

    ``max_backlog`` (readings, ≤ 0 = unlimited) caps each sink's unsent backlog;
    ``retention_days`` (≤ 0 = keep forever) bounds how long delivered readings are kept.
    ``clock_ns`` stamps dead-letter entries and names a damaged file set aside (wall clock, ns
    since the epoch). ``max_buffer`` bounds the readings held in memory while commits fail;
    beyond it the oldest are dropped and counted. ``recover_corrupt``: see :meth:`open`.
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
        self.database = Database(path, recover_corrupt=recover_corrupt, clock_ns=clock_ns)
        self._readings = Readings(self.database, max_buffer=max_buffer)
        self._backlog = Backlog(
            self.database, self._readings, max_backlog=max_backlog, retention_days=retention_days
        )
        self._dead_letters = DeadLetters(self.database, self._backlog, clock_ns=clock_ns)

    @classmethod
    def from_settings(
        cls, path: Path, settings: Mapping[str, object], *, recover_corrupt: bool = False
    ) -> History:
        """The history at ``path`` as configured by ``storage.max_backlog`` and
        ``storage.retention_days`` (not opened yet). The one way the service, a direct flush and
        a direct history read build it. Fails with ValueError when a setting is not a number."""
        return cls(
            path,
            max_backlog=int(_number(settings, "storage.max_backlog")),
            retention_days=float(_number(settings, "storage.retention_days")),
            recover_corrupt=recover_corrupt,
        )

    # -- what the parts share ----------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.database.path

    @property
    def recovered(self) -> dict[str, str] | None:
        """Set by :meth:`open` when it set a damaged file aside: ``{"kept": path, "reason"}``."""
        return self.database.recovered

    @property
    def last_commit_error(self) -> str | None:
        """Why the last commit failed (None once one succeeds)."""
        return self._readings.last_commit_error

    @property
    def max_backlog(self) -> int:
        return self._backlog.max_backlog

    @max_backlog.setter
    def max_backlog(self, value: int) -> None:
        self._backlog.max_backlog = int(value)

    @property
    def retention_days(self) -> float:
        return self._backlog.retention_days

    @retention_days.setter
    def retention_days(self, value: float) -> None:
        self._backlog.retention_days = float(value)

    def reconfigure(self, settings: Mapping[str, object]) -> None:
        """Take ``storage.max_backlog`` and ``storage.retention_days`` from ``settings`` (a live
        reload). Fails with ValueError, changing nothing, when one is not a number."""
        max_backlog = int(_number(settings, "storage.max_backlog"))
        retention_days = float(_number(settings, "storage.retention_days"))
        self.max_backlog = max_backlog
        self.retention_days = retention_days

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
        with self.database.lock:
            if not self.database.is_open:
                self._readings.opened(self.database.open())

    def close(self) -> None:
        """Commit buffered readings and close. Safe to call twice; later calls need ``open()``."""
        with self.database.lock:
            if not self.database.is_open:
                return
            self.commit()
            if self._readings.pending_count():
                log.error(
                    "closing the history with %d readings that could not be saved (%s)",
                    self._readings.pending_count(),
                    self._readings.last_commit_error,
                )
            self.database.close()

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

    # -- readings (see Readings) -------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number for the next reading: above every seq issued or stored so far."""
        return self._readings.next_seq()

    def add(self, reading: Reading) -> None:
        """Buffer a reading until :meth:`commit`; ValueError when its seq is not new."""
        self._readings.add(reading)

    def pending_count(self) -> int:
        """Readings buffered but not yet committed."""
        return self._readings.pending_count()

    def commit(self) -> int:
        """Store the buffer in one transaction that also applies the backlog cap; returns how
        many readings were written (0 on a database error, which it records and never raises)."""
        return self._readings.commit(self._backlog.cap_active)

    def last_committed_seq(self) -> int:
        """The highest seq ever committed (0 for a new history)."""
        return self._readings.last_committed_seq()

    def latest(self) -> Reading | None:
        """The newest reading, buffered or committed; None for an empty history."""
        return self._readings.latest()

    def query(
        self, since_ns: int | None, until_ns: int | None = None, limit: int | None = None
    ) -> list[Reading]:
        """Readings sampled in ``[since_ns, until_ns)``, the newest ``limit``, oldest first."""
        return self._readings.query(since_ns, until_ns, limit)

    def downsample(self, since_ns: int, step_ns: int, limit: int) -> list[Reading]:
        """Averages over ``step_ns`` buckets since ``since_ns``, the newest ``limit``."""
        return self._readings.downsample(since_ns, step_ns, limit)

    def iter_query(
        self, since_ns: int, limit: int, chunk: int = READ_CHUNK
    ) -> Iterator[list[Reading]]:
        """:meth:`query` in chunks, from a read-only connection."""
        return self._readings.iter_query(since_ns, limit, chunk)

    def iter_downsample(
        self, since_ns: int, step_ns: int, limit: int, chunk: int = READ_CHUNK
    ) -> Iterator[list[Reading]]:
        """:meth:`downsample` in chunks, from a read-only connection."""
        return self._readings.iter_downsample(since_ns, step_ns, limit, chunk)

    # -- per-sink backlog (see Backlog) ------------------------------------------------------

    def ensure_cursor(self, sink: str) -> int:
        """Attach ``sink``: create its cursor if needed, mark it active; returns the cursor."""
        return self._backlog.ensure_cursor(sink)

    def release_sink(self, sink: str) -> None:
        """The sink was replaced: its cursor no longer holds back retention."""
        self._backlog.release_sink(sink)

    def cursor(self, sink: str) -> int:
        """The highest seq ``sink`` is done with. Reads only."""
        return self._backlog.cursor(sink)

    def backlog(self, sink: str, limit: int) -> list[Reading]:
        """Up to ``limit`` committed readings ``sink`` has not yet delivered, oldest first."""
        return self._backlog.backlog(sink, limit)

    def backlog_rows(
        self, sink: str, limit: int, *, after: int | None = None, upto: int | None = None
    ) -> list[ReadingRow]:
        """:meth:`backlog` as plain rows, optionally after/up to a seq."""
        return self._backlog.backlog_rows(sink, limit, after=after, upto=upto)

    def backlog_count(self, sink: str, *, upto: int | None = None) -> int:
        """How many committed readings ``sink`` has not yet delivered."""
        return self._backlog.backlog_count(sink, upto=upto)

    def oldest_unsent_ns(self, sink: str) -> int | None:
        """Sample time of the oldest reading ``sink`` has not delivered; None when caught up."""
        return self._backlog.oldest_unsent_ns(sink)

    def ack(self, sink: str, last_seq: int, count: int) -> None:
        """The backend stored readings up to ``last_seq``: advance and count, committed at once."""
        self._backlog.ack(sink, last_seq, count)

    def enforce_cap(self, sink: str) -> int:
        """Drop ``sink``'s oldest unsent readings beyond ``max_backlog``; returns how many."""
        return self._backlog.enforce_cap(sink)

    def take_cap_drops(self, sink: str) -> int:
        """Readings of ``sink`` the cap dropped since the last call."""
        return self._backlog.take_cap_drops(sink)

    def apply_retention(self, now_ns: int) -> int:
        """Delete old readings every active sink is done with; returns how many."""
        return self._backlog.apply_retention(now_ns)

    # -- dead letters (see DeadLetters) ------------------------------------------------------

    def reject(self, sink: str, readings: Sequence[Reading], status: int | None, error: str) -> int:
        """Move a batch refused as bad data to the dead-letter table; returns the entry's id."""
        return self._dead_letters.add(sink, readings, status, error)

    def deadletter_list(self) -> list[dict[str, Any]]:
        """Dead-letter entries, oldest first (without their readings)."""
        return self._dead_letters.entries()

    def deadletter_readings(self, ids: Iterable[int] | None = None) -> list[Reading]:
        """The readings of the given dead-letter entries (all when None), oldest first."""
        return self._dead_letters.readings(ids)

    def deadletter_purge(self, ids: Iterable[int] | None = None, *, delivered: bool = False) -> int:
        """Delete dead-letter entries (all when None); returns how many entries went."""
        return self._dead_letters.purge(ids, delivered=delivered)

    # -- health ------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Counters that survive restarts: ``written``, ``dropped``, ``rejected`` (readings),
        ``dead_letter`` (entries) and ``dead_letter_readings``."""
        with self.database.lock:
            meta = self.database.meta()
            entries, readings = self._dead_letters.totals()
            return {
                "written": meta.get("written", 0),
                "dropped": meta.get("dropped", 0) + self._readings.unsaved_dropped,
                "rejected": meta.get("rejected", 0),
                "dead_letter": entries,
                "dead_letter_readings": readings,
            }

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: ``"ok"`` or the first problems it found."""
        return self.database.integrity_check()


def _number(settings: Mapping[str, object], name: str) -> int | float:
    value = settings[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return value
