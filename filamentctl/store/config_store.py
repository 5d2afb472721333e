"""The encrypted configuration database (SQLCipher through ``sqlcipher3``).

One table, ``settings(key TEXT PRIMARY KEY, value TEXT)``, values as JSON. The store knows
nothing about the schema: callers validate before ``set``. Each ``set``/``unset`` is one
transaction, so a crash leaves either the old or the new value.

Failures are always explicit, never "start on defaults": a wrong key raises
:class:`~filamentctl.errors.ConfigDecryptError` and leaves the file byte-identical; a file that is
not an SQLCipher database (plain SQLite, garbage, truncated) is a UserError saying so.
``sqlcipher3`` is imported only when a store is opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from filamentctl.errors import ConfigDecryptError, UserError
from filamentctl.store.keys import ENV_KEY, KEY_BYTES, key_material

FORMAT_VERSION = 1  # PRAGMA user_version of a filamentctl configuration
_SQLITE_MAGIC = b"SQLite format 3\x00"


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store uses of an ``sqlcipher3`` connection: the stdlib ``sqlite3`` API, which
    ``sqlcipher3`` copies (it ships no type information of its own)."""

    def execute(self, sql: str, parameters: Sequence[object] = ..., /) -> _Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[object]], /) -> _Cursor: ...

    def close(self) -> None: ...

    def __enter__(self) -> Connection: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> object: ...


def _key_pragma(key: bytes | str) -> str:
    if isinstance(key, str):
        key = key_material(key)
    if isinstance(key, bytes):
        if len(key) != KEY_BYTES:
            raise ValueError(f"a raw configuration key is {KEY_BYTES} bytes, not {len(key)}")
        # Raw key: SQLCipher uses it directly, no passphrase derivation.
        return f"PRAGMA key = \"x'{key.hex()}'\""
    if not key:
        raise ValueError("an empty passphrase is not a key")
    # PRAGMA takes no bound parameters; quote the passphrase as an SQL string literal.
    return "PRAGMA key = '" + key.replace("'", "''") + "'"


def _uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path)) + "?mode=rw"


class ConfigStore:
    """An open configuration database. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, conn: Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(
        cls,
        path: Path,
        key: bytes | str,
        create: bool = False,
        key_source: str = "the given key",
    ) -> ConfigStore:
        """Open (or with ``create=True``, create) the encrypted configuration at ``path``.

        ``key`` is 32 raw bytes, 64 hex characters, or a passphrase. ``key_source`` names where
        it came from, for the error message.

        Raises UserError when ``path`` is missing (and not ``create``), already exists (with
        ``create``), or is not an SQLCipher database; ConfigDecryptError when the key does not
        match. Without ``create`` nothing is ever created; a failed open changes nothing.
        """
        pragma = _key_pragma(key)
        if create:
            cls._create(path, pragma)
        return cls._open(path, pragma, key_source)

    @classmethod
    def _open(cls, path: Path, pragma: str, key_source: str) -> ConfigStore:
        if not path.exists():
            raise UserError(
                f"no configuration at {path} yet; run `filamentctl config init` to create it"
            )
        _check_container(path)
        conn = _connect(path, pragma)
        try:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except _db_error() as exc:
                raise ConfigDecryptError(
                    f"cannot decrypt the configuration at {path}: the key from {key_source} "
                    f"does not match (or the file is damaged); {_key_hint(key_source)}"
                ) from exc
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if version != FORMAT_VERSION or "settings" not in tables:
                raise UserError(
                    f"{path} decrypts but is not a filamentctl configuration (format "
                    f"{version}); move it away and run `filamentctl config init`"
                )
            # Every page once (the file is small): damage past the first page shows now, as
            # one clear error, not as "database disk image is malformed" mid-command.
            try:
                verdict = conn.execute("PRAGMA quick_check").fetchone()
            except _db_error() as exc:
                verdict = (str(exc),)
            if verdict is None or verdict[0] != "ok":
                why = " ".join(str(verdict[0] if verdict else "?").replace("*", "").split())
                raise UserError(
                    f"the configuration at {path} is damaged ({why[:120]}); "
                    "restore it from a backup, or move it away and run `filamentctl config init`"
                )
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def _create(cls, path: Path, pragma: str) -> None:
        """Build the database in a temporary file, then link it into place (never replacing)."""
        if path.exists():
            raise UserError(f"a configuration already exists at {path}; it was left untouched")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        # Created 0600 before SQLite touches it; its journals inherit the mode.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            conn = _connect(tmp, pragma)
            try:
                with conn:
                    conn.execute(
                        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            finally:
                conn.close()
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UserError(
                    f"a configuration already exists at {path}; it was left untouched"
                ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    # -- access -------------------------------------------------------------------------------

    def get(self, name: str, default: Any = None) -> Any:
        """The stored value of ``name``, or ``default`` when it is not stored."""
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    def items(self) -> dict[str, Any]:
        """Every stored key and value."""
        rows = self._conn.execute("SELECT key, value FROM settings ORDER BY key").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set(self, name: str, value: Any) -> None:
        """Store one value (JSON-serialisable), in its own transaction."""
        self.set_many({name: value})

    def set_many(self, values: Mapping[str, Any]) -> None:
        """Store several values in one transaction: all or none."""
        encoded = [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()]
        with self._conn:
            self._conn.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                encoded,
            )

    def replace_all(self, values: Mapping[str, Any]) -> None:
        """Make ``values`` the whole stored configuration, in one transaction: all or none."""
        encoded = [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()]
        with self._conn:
            self._conn.execute("DELETE FROM settings")
            self._conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", encoded)

    def unset(self, name: str) -> bool:
        """Remove ``name``; returns whether it was stored."""
        with self._conn:
            cur = self._conn.execute("DELETE FROM settings WHERE key = ?", (name,))
        return bool(cur.rowcount)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ConfigStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _key_hint(key_source: str) -> str:
    if key_source.startswith("Vault"):
        return (
            "check the key stored in Vault (FILAMENTCTL_VAULT_PATH, default "
            "secret/filamentctl#config_key) is the one this configuration was made with"
        )
    if key_source == ENV_KEY:
        return f"check {ENV_KEY}, or unset it to use the key file"
    return f"check the key file is the one `config init` made for it, or set {ENV_KEY}"


def _db_error() -> type[Exception]:
    import sqlcipher3

    error: type[Exception] = sqlcipher3.dbapi2.DatabaseError
    return error


def _connect(path: Path, pragma: str) -> Connection:
    import sqlcipher3

    # Default isolation: reads and PRAGMAs run outside transactions; `with conn` wraps writes.
    conn: Connection = sqlcipher3.connect(_uri(path), uri=True, timeout=5.0)
    try:
        # Without this SQLCipher prints its own errors (e.g. on a wrong key) to stderr.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_container(path: Path) -> None:
    """Refuse files that cannot be an SQLCipher database, with a message saying what they are."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except PermissionError:
        from filamentctl.errors import PermissionDenied

        raise PermissionDenied(
            f"cannot read the configuration at {path}: permission denied; run as the user "
            "that owns it (e.g. the service user, or with sudo)"
        ) from None
    if size == 0:
        raise UserError(
            f"the configuration at {path} is empty (an interrupted write?); move it away and "
            "run `filamentctl config init`"
        )
    if head == _SQLITE_MAGIC:
        raise UserError(
            f"{path} is an unencrypted SQLite file, not a filamentctl configuration; move it "
            "away and run `filamentctl config init`"
        )
    # SQLCipher files are whole pages (512..65536 bytes each); anything else is damaged.
    if size < 512 or size % 512:
        raise UserError(
            f"the configuration at {path} is damaged or not a filamentctl configuration "
            f"({size} bytes); restore it from a backup or move it away and run "
            "`filamentctl config init`"
        )
