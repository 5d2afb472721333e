"""One service per state directory: an exclusive ``flock`` on ``state_dir/service.lock``.

Direct-mode commands (``flush`` with no service) take the same lock, so they never write the
history while a service does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from filamentctl.errors import PermissionDenied, UserError


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "service.lock"
        self._fd: int | None = None

    def acquire(self, what: str = "the service") -> None:
        """Take the lock; UserError when another process holds it, PermissionDenied (exit 4)
        when the lock path is a symlink or not a regular file (never followed nor truncated)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise PermissionDenied(
                    f"refusing to use {self.path}: it is a symbolic link or not a regular file; "
                    f"remove it and check who can write to {self.path.parent}"
                ) from None
            raise UserError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PermissionDenied(
                f"refusing to use {self.path}: it is not a regular file; remove it"
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(
                f"cannot start {what}: another filamentctl process holds {self.path}; "
                "stop it first (filamentctl status shows it) or use another FILAMENTCTL_HOME"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
