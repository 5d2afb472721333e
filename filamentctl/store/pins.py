"""Which GPIO pins drive this box's relays, recorded at service start (``<state>/relays.json``).

``filamentctl relays-off`` (systemd's ``ExecStopPost=``) drives the relays OFF after the service
died in a way it could not handle itself (SIGKILL, the OOM killer, a hang). It must work when
the configuration cannot be read (no key, a damaged file), so the service records what it
drives — pin and polarity of each enabled relay — before it claims the pins. Not secret.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "relays.json"
RELAYS = ("heater", "fan")


@dataclass(frozen=True, slots=True)
class PinSpec:
    name: str
    pin: int
    active_high: bool

    @property
    def off_level(self) -> int:
        """The electrical level that means OFF: 0 on active-high boards, 1 on active-low."""
        return 0 if self.active_high else 1


@dataclass(frozen=True, slots=True)
class PinRecord:
    """The enabled relays of one box."""

    relays: tuple[PinSpec, ...]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PinRecord:
        return cls(
            tuple(
                PinSpec(
                    name, int(settings[f"{name}.gpio_pin"]), bool(settings[f"{name}.active_high"])
                )
                for name in RELAYS
                if settings.get(f"{name}.enabled")
            )
        )

    def save(self, state_dir: Path) -> None:
        """Write atomically, never through a symlink. Raises OSError."""
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        path = state_dir / FILE_NAME
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        data = {r.name: {"gpio_pin": r.pin, "active_high": r.active_high} for r in self.relays}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, state_dir: Path) -> PinRecord | None:
        """The recorded pins, or None when there is no usable record."""
        try:
            fd = os.open(state_dir / FILE_NAME, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd) as f:
                data = json.load(f)
            return cls(
                tuple(
                    PinSpec(name, int(data[name]["gpio_pin"]), bool(data[name]["active_high"]))
                    for name in RELAYS
                    if isinstance(data.get(name), dict)
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
