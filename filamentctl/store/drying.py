"""Drying sessions on disk: the running one (``drying-session.json``) and past ones
(``drying-history.jsonl``), both in the state directory.

The running session is small JSON written atomically (temporary file, fsync, rename, fsync of
the directory), never through a symlink, so a restart resumes it. Unlike a safety latch, a
damaged session file is set aside and forgotten: without a session the heater returns to its
storage band, which is the safe direction.

Past sessions are JSON lines, appended with fsync. A torn last line (power cut while writing)
is skipped when reading. The file keeps the newest ``HISTORY_KEEP`` sessions: beyond
``HISTORY_KEEP * 2`` lines it is rewritten atomically with the newest ``HISTORY_KEEP``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("filamentctl.drying")

SESSION_FILE = "drying-session.json"
HISTORY_FILE = "drying-history.jsonl"
HISTORY_KEEP = 500
_MAX_SESSION_BYTES = 64 * 1024
_MAX_LINE_BYTES = 16 * 1024


def _regular(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a symlink); FileNotFoundError when missing."""
    return stat.S_ISREG(path.lstat().st_mode)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o640)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _read(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read(limit)


class SessionStore:
    """The running session in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SESSION_FILE

    def load(self) -> dict[str, Any] | None:
        """The stored session as a dict, None when there is none. Never raises: a file that
        cannot be read or parsed is renamed to ``*.damaged`` and reported in the log."""
        try:
            if not _regular(self.path):
                return self._damaged("not a regular file")
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._damaged(str(exc.strerror or exc))
        try:
            data = json.loads(_read(self.path, _MAX_SESSION_BYTES))
        except (OSError, ValueError) as exc:
            return self._damaged(str(exc))
        if not isinstance(data, dict):
            return self._damaged("not a JSON object")
        return data

    def _damaged(self, why: str) -> dict[str, Any] | None:
        aside = self.path.with_name(self.path.name + ".damaged")
        try:
            os.replace(self.path, aside)
            where = f"; kept as {aside}"
        except OSError:
            where = ""
        log.error(
            "drying session file %s is damaged (%s)%s; no session resumed, the heater keeps its "
            "storage band",
            self.path,
            why,
            where,
        )
        return None

    def save(self, session: Mapping[str, Any]) -> None:
        """Write the session durably. Raises OSError when it cannot (the caller logs it)."""
        data = json.dumps(dict(session), ensure_ascii=False, allow_nan=False).encode() + b"\n"
        _write_atomic(self.path, data)

    def clear(self) -> None:
        """Remove the session (it ended). Raises OSError when it cannot."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _fsync_dir(self.path.parent)


class DryingLog:
    """Past sessions (``drying-history.jsonl``), newest last."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / HISTORY_FILE

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one ended session durably; OSError when it cannot (the caller logs it)."""
        line = json.dumps(dict(record), ensure_ascii=False, allow_nan=False).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o640)
        with os.fdopen(fd, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._trim()

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The stored sessions, oldest first (the newest ``limit`` with a limit). A missing file
        is an empty history; unreadable lines are skipped. OSError when the file exists but
        cannot be opened (permissions)."""
        try:
            if not _regular(self.path):
                raise OSError(f"{self.path} is not a regular file")
        except FileNotFoundError:
            return []
        raw = _read(self.path, (HISTORY_KEEP * 2 + 1) * _MAX_LINE_BYTES)
        out: list[dict[str, Any]] = []
        for line in raw.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out[-limit:] if limit else out

    def _trim(self) -> None:
        try:
            items = self.read()
        except OSError:
            return
        if len(items) <= HISTORY_KEEP * 2:
            return
        keep = items[-HISTORY_KEEP:]
        data = b"".join(json.dumps(i, ensure_ascii=False).encode() + b"\n" for i in keep)
        with contextlib.suppress(OSError):
            _write_atomic(self.path, data)
