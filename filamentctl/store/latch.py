"""Latched safety faults that survive a restart (``<state dir>/heater-latch.json``).

A runaway or over-temperature latch keeps the heater OFF until a person runs ``heater reset``.
If it lived only in memory, any restart (a crash and ``Restart=``, the watchdog, a power blip,
``systemctl restart``) would turn the heater straight back ON in ``auto``. So the control loop
writes the latch here in the same step that latches it, and reads it back at start before any
relay is driven.

The file is small JSON written atomically (temporary file, fsync, rename, fsync of the
directory), never through a symlink. A latch file that exists but cannot be read or parsed
counts as a latch (cause: the file is damaged): when unsure, the heater stays OFF.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("filamentctl.control")

FILE_NAME = "heater-latch.json"


@dataclass(frozen=True, slots=True)
class Latch:
    """One latched fault: what happened, the temperature then (if known), when (Unix ns)."""

    cause: str
    temperature_c: float | None
    since_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "temperature_c": self.temperature_c,
            "since_ns": self.since_ns,
        }


class LatchStore:
    """Reads and writes the heater's latch in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    def load(self) -> Latch | None:
        """The stored latch, None when there is none. Never raises: a damaged or unreadable
        file is reported as a latch so the heater stays OFF until a person looks."""
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._damaged(f"cannot check {self.path}: {exc.strerror or exc}")
        if not stat.S_ISREG(st.st_mode):
            return self._damaged(f"{self.path} is not a regular file")
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = json.loads(f.read(64 * 1024))
            cause = data["cause"]
            temp = data.get("temperature_c")
            since = data["since_ns"]
            if not isinstance(cause, str) or not cause or not isinstance(since, int):
                raise ValueError("missing cause or time")
            if temp is not None and not isinstance(temp, int | float):
                raise ValueError("bad temperature")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return self._damaged(f"{self.path} cannot be read ({exc})")
        return Latch(cause, None if temp is None else float(temp), since)

    def _damaged(self, why: str) -> Latch:
        log.error("heater latch file damaged: %s; keeping the heater latched OFF", why)
        return Latch(f"the stored latch could not be read: {why}", None, time.time_ns())

    def save(self, latch: Latch) -> None:
        """Write the latch durably. Raises OSError when it cannot (the caller logs it: the
        latch still holds in memory)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o640)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(latch.to_dict(), ensure_ascii=False).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(self.path.parent)

    def clear(self) -> None:
        """Remove the latch (after ``heater reset``). Raises OSError when it cannot."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
