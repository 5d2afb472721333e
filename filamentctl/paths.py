"""Where filamentctl keeps its files.

Priority: ``FILAMENTCTL_HOME`` (everything under one directory: tests, several boxes), then the
directories systemd hands a unit (``CONFIGURATION_DIRECTORY``, ``STATE_DIRECTORY``,
``RUNTIME_DIRECTORY``), then platformdirs' per-user directories. The key file never sits in the
configuration directory, so copying the config directory does not copy its key.

Several boxes on one machine: ``FILAMENTCTL_BOX=NAME`` (the CLI's ``--box``) gives a box its own
configuration, key, history and socket: ``$FILAMENTCTL_HOME/boxes/NAME/...``, or the per-user
directories' ``boxes/NAME``, or (under systemd) the directories of the ``filamentctl@NAME``
instance (``/run/filamentctl-NAME`` for its socket). Without it the box is ``default`` and every
path is as it always was.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from filamentctl.errors import UsageError

APP = "filamentctl"
SOCKET_NAME = "filamentctl.sock"
# Where the system service's socket lives (RuntimeDirectory=filamentctl); clients look here last.
# The system service's directories (its unit's ConfigurationDirectory=, StateDirectory=,
# RuntimeDirectory=): the one definition the unit, the CLI and the man pages use.
SYSTEM_CONFIG_DIR = Path("/etc/filamentctl")
SYSTEM_STATE_DIR = Path("/var/lib/filamentctl")
SYSTEM_RUNTIME_ROOT = Path("/run/filamentctl")
SYSTEM_SOCKET = SYSTEM_RUNTIME_ROOT / SOCKET_NAME
BOX_ENV = "FILAMENTCTL_BOX"
DEFAULT_BOX = "default"
_BOX_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class BadBoxName(UsageError, ValueError):
    """A malformed box name (exit 2)."""


def box_name(env: Mapping[str, str] | None = None) -> str:
    """The selected box: ``FILAMENTCTL_BOX`` or ``default``. BadBoxName for a malformed name."""
    env = os.environ if env is None else env
    name = env.get(BOX_ENV, "").strip() or DEFAULT_BOX
    check_box_name(name)
    return name


def check_box_name(name: str) -> str:
    """``name`` if it is a valid box name (lower-case letters, digits, - and _; ≤ 32), else
    BadBoxName (a ValueError and a usage error) saying what is allowed."""
    if not _BOX_NAME.fullmatch(name):
        raise BadBoxName(
            f"invalid box name {name!r}: use 1-32 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def system_runtime_dir(box: str = DEFAULT_BOX) -> Path:
    """The system service's runtime directory for ``box``: ``/run/filamentctl``, or
    ``/run/filamentctl-BOX`` for a ``filamentctl@BOX`` instance (not below the default's:
    systemd removes a unit's runtime directory, with everything in it, when the unit stops)."""
    if box == DEFAULT_BOX:
        return SYSTEM_RUNTIME_ROOT
    return SYSTEM_RUNTIME_ROOT.with_name(f"{APP}-{box}")


def system_socket(box: str = DEFAULT_BOX) -> Path:
    """The system service's socket for ``box``."""
    return system_runtime_dir(box) / SOCKET_NAME


@dataclass(frozen=True, slots=True)
class Paths:
    config_dir: Path
    key_dir: Path
    state_dir: Path
    runtime_dir: Path
    box: str = DEFAULT_BOX

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
        system = system_socket(self.box)
        if "FILAMENTCTL_HOME" not in env and system not in out:
            out.append(system)
        return out


def resolve(env: Mapping[str, str] | None = None) -> Paths:
    """Work out the directories from the environment (nothing is created here).

    Raises BadBoxName (exit 2) for a malformed ``FILAMENTCTL_BOX``.
    """
    env = os.environ if env is None else env
    box = box_name(env)
    sub = Path() if box == DEFAULT_BOX else Path("boxes") / box
    home = env.get("FILAMENTCTL_HOME")
    if home:
        root = Path(home).expanduser().absolute() / sub
        return Paths(root / "config", root / "secrets", root / "state", root / "run", box)
    if env.get("STATE_DIRECTORY") or env.get("CONFIGURATION_DIRECTORY"):
        # Under systemd: the unit's managed directories (first entry of each list); a
        # filamentctl@BOX instance gets its own from the template.
        state = Path(env.get("STATE_DIRECTORY", str(SYSTEM_STATE_DIR)).split(":")[0])
        config = Path(env.get("CONFIGURATION_DIRECTORY", str(SYSTEM_CONFIG_DIR)).split(":")[0])
        runtime_default = str(system_runtime_dir(box))
        runtime = Path(env.get("RUNTIME_DIRECTORY", runtime_default).split(":")[0])
        creds = env.get("CREDENTIALS_DIRECTORY")
        return Paths(config, Path(creds) if creds else state / "secrets", state, runtime, box)
    runtime_env = env.get("XDG_RUNTIME_DIR")
    config, data, state = _user_dirs(env)
    config, data, state = config / sub, data / sub, state / sub
    runtime = Path(runtime_env) / APP / sub if runtime_env else state / "run"
    return Paths(config, data / "secrets", state, runtime, box)


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


@dataclass(frozen=True, slots=True)
class BoxLocation:
    """A box found on this machine: its name, whose it is, and its files."""

    name: str
    scope: str  # "home" (FILAMENTCTL_HOME), "user" (your own directories) or "system"
    paths: Paths


def _named_dirs(parent: Path) -> list[str]:
    try:
        return sorted(
            p.name for p in parent.iterdir() if p.is_dir() and _BOX_NAME.fullmatch(p.name)
        )
    except OSError:
        return []


def _has_files(p: Paths) -> bool:
    return any(x.exists() for x in (p.config_db, p.history_db, p.socket))


def known_boxes(env: Mapping[str, str] | None = None) -> list[BoxLocation]:
    """Every box on this machine that has a configuration, a history or a socket.

    With ``FILAMENTCTL_HOME`` set, the boxes under it; otherwise your own boxes (the per-user
    directories) and the system service's (``/etc/filamentctl``, ``/var/lib/filamentctl``,
    ``/run/filamentctl``, one subdirectory per ``filamentctl@NAME`` instance). Nothing is
    created; unreadable directories are skipped.
    """
    env = dict(os.environ if env is None else env)
    env.pop(BOX_ENV, None)
    found: list[BoxLocation] = []

    def add(name: str, scope: str, resolved: Paths) -> None:
        if _has_files(resolved) and all((b.name, b.scope) != (name, scope) for b in found):
            found.append(BoxLocation(name, scope, resolved))

    def scan(scope: str, base: Mapping[str, str], roots: list[Path]) -> None:
        add(DEFAULT_BOX, scope, resolve(base))
        names = {n for root in roots for n in _named_dirs(root / "boxes")}
        for name in sorted(names):
            add(name, scope, resolve({**base, BOX_ENV: name}))

    if env.get("FILAMENTCTL_HOME"):
        home = Path(env["FILAMENTCTL_HOME"]).expanduser().absolute()
        scan("home", env, [home])
        return found
    user_env = {k: v for k, v in env.items() if k not in _SYSTEMD_VARS}
    user = resolve(user_env)
    scan("user", user_env, [user.config_dir, user.state_dir])
    add(DEFAULT_BOX, "system", system_paths())
    prefix = f"{APP}-"
    running = {
        n[len(prefix) :] for n in _named_dirs(SYSTEM_RUNTIME_ROOT.parent) if n.startswith(prefix)
    }
    instances = set(_named_dirs(SYSTEM_CONFIG_DIR)) | running
    for name in sorted(instances):
        if not _BOX_NAME.fullmatch(name):
            continue
        add(name, "system", system_paths(name))
    return found


#: Set (to "1") by the CLI's ``--system``, beside the systemd directory variables it sets.
SYSTEM_SWITCH_ENV = "FILAMENTCTL_SYSTEM"


def use_system_paths(env: MutableMapping[str, str], box: str = DEFAULT_BOX) -> Paths:
    """Point ``env`` at the system service's directories for ``box``, as its unit's are set
    (``--system``): what resolves from it afterwards is that service's files and socket.
    ``FILAMENTCTL_HOME`` is dropped: the switch says which files, explicitly."""
    system = system_paths(box)
    env.pop("FILAMENTCTL_HOME", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.update(
        {
            "CONFIGURATION_DIRECTORY": str(system.config_dir),
            "STATE_DIRECTORY": str(system.state_dir),
            "RUNTIME_DIRECTORY": str(system.runtime_dir),
            SYSTEM_SWITCH_ENV: "1",
        }
    )
    return system


def owner_of(path: Path) -> int | None:
    """The uid owning ``path``, or None when it does not exist (or cannot be looked at)."""
    try:
        return path.stat().st_uid
    except OSError:
        return None


def system_paths(box: str = DEFAULT_BOX) -> Paths:
    """The system service's directories for ``box`` (what its unit, ``filamentctl.service`` or
    ``filamentctl@BOX.service``, is given by systemd), wherever this process runs."""
    if box == DEFAULT_BOX:
        config, state = SYSTEM_CONFIG_DIR, SYSTEM_STATE_DIR
    else:
        config, state = SYSTEM_CONFIG_DIR / box, SYSTEM_STATE_DIR / box
    return resolve(
        {
            "CONFIGURATION_DIRECTORY": str(config),
            "STATE_DIRECTORY": str(state),
            "RUNTIME_DIRECTORY": str(system_runtime_dir(box)),
            BOX_ENV: box,
        }
    )


_SYSTEMD_VARS = ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "RUNTIME_DIRECTORY")
