"""Where filamentctl keeps its files.

Priority: ``FILAMENTCTL_HOME`` (everything under one directory: tests, several boxes), then the
directories systemd hands a unit (``CONFIGURATION_DIRECTORY``, ``STATE_DIRECTORY``,
``RUNTIME_DIRECTORY``), then platformdirs' per-user directories. The key file never sits in the
configuration directory, so copying the config directory does not copy its key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = "filamentctl"
SOCKET_NAME = "filamentctl.sock"
# Where the system service's socket lives (RuntimeDirectory=filamentctl); clients look here last.
SYSTEM_SOCKET = Path("/run/filamentctl") / SOCKET_NAME


@dataclass(frozen=True, slots=True)
class Paths:
    config_dir: Path
    key_dir: Path
    state_dir: Path
    runtime_dir: Path

    @property
    def config_db(self) -> Path:
        return self.config_dir / "config.db"

    @property
    def key_file(self) -> Path:
        return self.key_dir / "config.key"

    @property
    def history_db(self) -> Path:
        return self.state_dir / "history.db"

    @property
    def socket(self) -> Path:
        return self.runtime_dir / SOCKET_NAME

    def candidate_sockets(self, env: Mapping[str, str] | None = None) -> list[Path]:
        """Sockets a client tries, in order: explicit, own, then the system service's."""
        env = os.environ if env is None else env
        out: list[Path] = []
        if env.get("FILAMENTCTL_SOCKET"):
            return [Path(env["FILAMENTCTL_SOCKET"])]
        out.append(self.socket)
        if "FILAMENTCTL_HOME" not in env and SYSTEM_SOCKET not in out:
            out.append(SYSTEM_SOCKET)
        return out


def resolve(env: Mapping[str, str] | None = None) -> Paths:
    """Work out the directories from the environment (nothing is created here)."""
    env = os.environ if env is None else env
    home = env.get("FILAMENTCTL_HOME")
    if home:
        root = Path(home).expanduser().absolute()
        return Paths(root / "config", root / "secrets", root / "state", root / "run")
    if env.get("STATE_DIRECTORY") or env.get("CONFIGURATION_DIRECTORY"):
        # Under systemd: the unit's managed directories (first entry of each list).
        state = Path(env.get("STATE_DIRECTORY", "/var/lib/filamentctl").split(":")[0])
        config = Path(env.get("CONFIGURATION_DIRECTORY", "/etc/filamentctl").split(":")[0])
        runtime = Path(env.get("RUNTIME_DIRECTORY", "/run/filamentctl").split(":")[0])
        creds = env.get("CREDENTIALS_DIRECTORY")
        return Paths(config, Path(creds) if creds else state / "secrets", state, runtime)
    runtime_env = env.get("XDG_RUNTIME_DIR")
    config, data, state = _user_dirs(env)
    runtime = Path(runtime_env) / APP if runtime_env else state / "run"
    return Paths(config, data / "secrets", state, runtime)


def _user_dirs(env: Mapping[str, str]) -> tuple[Path, Path, Path]:
    """Per-user config, data and state directories.

    On Linux these are the XDG rules (what platformdirs computes), written out here because
    every CLI command resolves them and importing platformdirs costs start-up time; elsewhere
    platformdirs decides.
    """
    if sys.platform.startswith("linux"):
        home = Path(env.get("HOME") or Path.home())

        def xdg(var: str, default: str) -> Path:
            value = env.get(var, "")
            return Path(value) if value.startswith("/") else home / default

        return (
            xdg("XDG_CONFIG_HOME", ".config") / APP,
            xdg("XDG_DATA_HOME", ".local/share") / APP,
            xdg("XDG_STATE_HOME", ".local/state") / APP,
        )
    import platformdirs

    return (
        Path(platformdirs.user_config_dir(APP)),
        Path(platformdirs.user_data_dir(APP)),
        Path(platformdirs.user_state_dir(APP)),
    )
