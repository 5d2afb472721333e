"""One service per state directory: an exclusive ``flock`` on ``state_dir/service.lock``.

Direct-mode commands (``flush`` with no service) take the same lock, so they never write the
history while a service does.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from filamentctl.errors import UserError


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "service.lock"
        self._fd: int | None = None

    def acquire(self, what: str = "the service") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
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
