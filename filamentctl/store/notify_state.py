"""What the notifier remembers across restarts (``<state dir>/notify-state.json``).

Two things, so that a service restarting in a loop does not repeat itself: when each event kind
last notified (``notify.min_interval`` keeps counting across the restart) and whether the
humidity alarm has fired and not yet cleared (a box that is still wet after a restart does not
fire it again). No URL, token or message text is stored.

Small JSON written atomically (temporary file, fsync, rename), never through a symlink. A file
that is missing or cannot be read is an empty state (logged): at worst one message is repeated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("filamentctl.notify")

FILE_NAME = "notify-state.json"


@dataclass(slots=True)
class NotifyState:
    last_sent: dict[str, float] = field(default_factory=dict)  # kind -> Unix seconds
    humidity_alarmed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"last_sent": dict(self.last_sent), "humidity_alarmed": self.humidity_alarmed}


class NotifyStateStore:
    """Reads and writes the notifier's state in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    def load(self) -> NotifyState:
        """The stored state; an empty one when there is none or it is damaged (never raises)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return NotifyState()
        except OSError as exc:
            log.warning("notifications: cannot read %s (%s); starting afresh", self.path, exc)
            return NotifyState()
        try:
            with os.fdopen(fd, "rb") as f:
                data = json.loads(f.read(64 * 1024))
            sent = data.get("last_sent", {})
            last_sent = {
                str(k): float(v)
                for k, v in sent.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            }
            return NotifyState(last_sent, bool(data.get("humidity_alarmed", False)))
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("notifications: %s is damaged (%s); starting afresh", self.path, exc)
            return NotifyState()

    def save(self, state: NotifyState) -> None:
        """Write the state durably. Raises OSError when it cannot (the caller logs it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o640)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(state.to_dict()).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
