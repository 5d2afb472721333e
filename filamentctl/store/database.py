"""The history's SQLite file: its connections, its schema, and what happens when it is damaged.

One writer connection (WAL, ``synchronous=NORMAL``) guarded by one re-entrant lock is shared by
the sampler, the delivery thread and the socket handlers; every write goes through
:meth:`Database.transaction`. Long reads (history queries) use read-only connections of their own
(:meth:`Database.reader`), so they never hold that lock while they stream. The parts of the
history (:mod:`~filamentctl.store.readings`, :mod:`~filamentctl.store.backlog`,
:mod:`~filamentctl.store.dead_letters`) share one :class:`Database`.

The file is opened through SQLite's ``unix-excl`` VFS: the process that opens it first holds it
until it closes it, and keeps the WAL index in its own memory instead of a memory-mapped
``-shm`` file. Every commit changes that index, and the kernel wrote its pages back to the SD
card again and again (~1.8 MB/h at one reading per second, most of the history's disk writes).
Connections within the process share it as before; another process gets "in use" (see
:meth:`Database.open`). A crash loses nothing more: the index is rebuilt from the WAL on the next
open, as after any crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filamentctl.errors import UserError

PAGE_SIZE = 512
# The VFS that holds the file for one process and keeps the WAL index in its memory (see above).
EXCLUSIVE_VFS = "unix-excl"
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED: another process has the file
MAX_IDLE_READERS = 2  # read-only connections kept open for the next long read
SCHEMA_VERSION = 1
log = logging.getLogger("filamentctl.history")

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


class Database:
    """The history file: open (creating, migrating or setting a damaged file aside), lock, close.

    ``recover_corrupt``: a damaged file is renamed and a new one started instead of failing.
    ``clock_ns`` (wall clock, ns since the epoch) stamps the name of a file set aside.
    """

    def __init__(
        self,
        path: Path,
        *,
        recover_corrupt: bool = False,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.recover_corrupt = recover_corrupt
        self.lock = threading.RLock()  # guards the writer connection and the parts' state
        self._clock_ns = clock_ns
        self._conn: sqlite3.Connection | None = None
        # Read-only connections for long reads, kept for reuse; see reader().
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Set by open() when it set a damaged file aside: {"kept": path, "reason": why}.
        self.recovered: dict[str, str] | None = None
        self._vfs = EXCLUSIVE_VFS  # "" once this SQLite turned out not to have it

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def open(self) -> int:
        """Open (creating or migrating) the file; returns the highest seq it ever stored.

        A damaged file (not SQLite, garbage, truncated, unreadable tables) fails with
        :class:`UserError` saying so — or, with ``recover_corrupt``, is renamed to
        ``<name>.corrupt-<UTC time>`` (its WAL alongside), logged as an error, recorded in
        ``recovered``, and a new, empty file is started in its place. A file written by a newer
        filamentctl always fails with UserError (it is not damaged; upgrade instead). A
        zero-length file is an empty database to SQLite (a crash during the very first start
        leaves one): it is used as is, with a warning. Fails with RuntimeError when already open.
        """
        with self.lock:
            if self._conn is not None:
                raise RuntimeError(f"history {self.path} is already open")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            damage = file_damage(self.path)
            if damage is None:
                try:
                    self._conn, high_water = self._connect()
                    return high_water
                except _Damaged as exc:
                    damage = str(exc)
            if not self.recover_corrupt:
                raise UserError(
                    f"history database {self.path} is unreadable ({damage}); "
                    "move it aside and restart to begin a new history"
                )
            self._set_aside(damage)
            try:
                self._conn, high_water = self._connect()
            except _Damaged as exc:  # a fresh file failing means the disk itself is bad
                raise UserError(
                    f"cannot create a new history database {self.path} ({exc})"
                ) from None
            return high_water

    def close(self) -> None:
        """Close every connection. Safe to call twice; later calls need ``open()``."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()

    def connection(self) -> sqlite3.Connection:
        """The writer connection; RuntimeError when the file is not open. Hold :attr:`lock`."""
        if self._conn is None:
            raise RuntimeError(f"history {self.path} is not open")
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on the writer connection, holding the lock.

        Anything raised inside (or by the COMMIT: a full disk, an I/O error) rolls the whole
        transaction back and propagates: either every statement is stored or none is.
        """
        with self.lock, transaction(self.connection()) as conn:
            yield conn

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own for one long read; kept for reuse after.

        WAL lets it read while the writer writes, without the writer's lock.
        """
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = sqlite3.connect(
                self._uri("mode=ro"), uri=True, check_same_thread=False, timeout=5.0
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

    def meta(self) -> dict[str, int]:
        """The persisted counters and marks (``written``, ``dropped``, ``rejected``, …)."""
        with self.lock:
            rows = self.connection().execute("SELECT key, value FROM meta").fetchall()
        return {str(key): int(value) for key, value in rows}

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: ``"ok"`` or the first problems it found."""
        with self.lock:
            rows = self.connection().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    # -- opening -----------------------------------------------------------------------------

    def _connect(self) -> tuple[sqlite3.Connection, int]:
        """Connect, migrate and read the seq high-water mark; raises _Damaged or UserError."""
        if self.path.exists() and self.path.stat().st_size == 0:
            log.warning(
                "history database %s is empty (0 bytes); starting a new history in it", self.path
            )
        try:
            conn = self._open_writer()
        except sqlite3.Error as exc:
            raise UserError(f"cannot open history database {self.path}: {exc}") from exc
        try:
            # Small pages for a new file: each commit rewrites whole pages (to the WAL, then at
            # checkpoint to the file). At one reading per second, 512-byte pages wrote ~30 %
            # fewer bytes than 1 KiB ones (and those ~4x fewer than SQLite's 4 KiB default).
            # Ignored for an existing file.
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
            last_seq = meta_get(conn, "last_seq")
            (max_row,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM readings").fetchone()
            # Touch every table the service relies on, so damage shows now, not mid-run.
            conn.execute("SELECT COUNT(*) FROM cursors").fetchone()
            conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES:
                # Held by another process (e.g. a direct `history` or `flush`): not damage.
                raise UserError(
                    f"history database {self.path} is in use by another process; "
                    "wait for it to finish (only one service or direct command can open it)"
                ) from None
            raise _Damaged(str(exc)) from exc
        except BaseException:
            conn.close()
            raise
        return conn, max(int(last_seq), int(max_row))

    def _uri(self, query: str = "") -> str:
        """The file's URI with the exclusive VFS (when this SQLite has it) and ``query``."""
        params = [p for p in (f"vfs={self._vfs}" if self._vfs else "", query) if p]
        return self.path.absolute().as_uri() + ("?" + "&".join(params) if params else "")

    def _open_writer(self) -> sqlite3.Connection:
        """The writer connection, through the exclusive VFS; the default one (with a warning)
        on an SQLite built without it."""
        try:
            return sqlite3.connect(
                self._uri(), uri=True, check_same_thread=False, isolation_level=None, timeout=5.0
            )
        except sqlite3.OperationalError as exc:
            if "no such vfs" not in str(exc) or not self._vfs:
                raise
        log.warning(
            "this SQLite has no %s VFS: %s keeps its WAL index in a -shm file (more disk writes)",
            EXCLUSIVE_VFS,
            self.path,
        )
        self._vfs = ""
        return sqlite3.connect(
            self._uri(), uri=True, check_same_thread=False, isolation_level=None, timeout=5.0
        )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise UserError(
                f"history database {self.path} was written by a newer filamentctl "
                f"(schema {version}, this version knows {SCHEMA_VERSION}); upgrade filamentctl"
            )
        for target in range(int(version), SCHEMA_VERSION):
            with transaction(conn):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target + 1}")

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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on ``conn`` (opened with ``isolation_level=None``).

    Anything raised inside, or by the COMMIT itself (a full disk, an I/O error), rolls the whole
    transaction back and propagates. The caller holds whatever lock guards ``conn``.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def meta_add(conn: sqlite3.Connection, key: str, amount: int) -> None:
    """Inside a transaction: add ``amount`` to the persisted counter ``key``."""
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
        (key, amount),
    )


def meta_get(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return 0 if row is None else int(row[0])


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


def file_damage(path: Path) -> str | None:
    """Cheap checks of the file header (no full scan): what is wrong, or None.

    Catches garbage, a foreign file and truncation without reading the whole database, so a
    large history still opens quickly on a Pi.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # an empty database to SQLite (see Database.open())
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
