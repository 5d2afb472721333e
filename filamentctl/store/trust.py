"""Whether the service's directories and files can be trusted, checked before it starts.

Another local user who can write into the home, config, key, state or runtime directory could
swap the history for a link to a file of ours (and have us truncate it), or put a socket of
their own where clients look for the service and answer ``heater off`` with a lie. So the
service refuses to start (:class:`~filamentctl.errors.PermissionDenied`, exit 4) when:

- one of those directories is writable by its group or by others, or is owned by someone other
  than the user running the service or root;
- a directory above one of them is owned by someone else, or writable by others without the
  sticky bit (``/tmp`` itself is fine: nobody can rename what is ours in it);
- the lock, history (and its ``-wal``/``-shm``), key or socket path is a symbolic link.

systemd's own directories pass: ``StateDirectory``/``RuntimeDirectory`` belong to the unit's
user (mode 0750 from the unit), ``ConfigurationDirectory`` and ``/run/credentials`` to root, and
a user's ``$XDG_RUNTIME_DIR`` (``/run/user/UID``, 0700) to that user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from filamentctl.errors import PermissionDenied
from filamentctl.paths import Paths


def check_paths(paths: Paths, home: Path | None = None) -> None:
    """Refuse (PermissionDenied, one line) unsafe directories and symlinked files; see above.

    ``home`` is ``FILAMENTCTL_HOME`` when set (checked like the directories under it).
    Directories that do not exist yet are skipped: the service creates them private.
    """
    uid = os.geteuid()
    dirs = [paths.config_dir, paths.key_dir, paths.state_dir, paths.runtime_dir]
    if home is None:
        home = home_of(paths)
    if home is not None:
        dirs.insert(0, home)
        if home.parent.name == "boxes":  # FILAMENTCTL_HOME/boxes/NAME: the home itself too
            dirs[0:0] = [home.parent.parent, home.parent]
    for directory in dirs:
        _check_dir(directory, uid)
    for path in _files(paths):
        refuse_symlink(path)


def home_of(paths: Paths) -> Path | None:
    """The FILAMENTCTL_HOME (or its box directory) the paths lie in, None for other layouts."""
    parents = {p.parent for p in (paths.config_dir, paths.state_dir, paths.runtime_dir)}
    if len(parents) == 1 and paths.key_dir.parent in parents:
        return parents.pop()
    return None


def refuse_symlink(path: Path, what: str = "") -> None:
    """PermissionDenied when ``path`` is a symbolic link (it is never followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise PermissionDenied(
            f"refusing to start: {what or path} is a symbolic link (to {os.readlink(path)}); "
            f"someone may be trying to make the service write elsewhere — remove {path} and "
            f"check who can write to {path.parent}"
        )


def _files(paths: Paths) -> Iterable[Path]:
    history = paths.history_db
    yield paths.state_dir / "service.lock"
    yield history
    yield history.with_name(history.name + "-wal")
    yield history.with_name(history.name + "-shm")
    yield paths.key_file
    yield paths.socket


def _check_dir(directory: Path, uid: int) -> None:
    try:
        link = os.lstat(directory)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (uid, 0):
        raise PermissionDenied(
            f"refusing to start: {directory} is a symbolic link owned by uid {link.st_uid}; "
            "point FILAMENTCTL_HOME (or the directory) at a place of your own"
        )
    real = Path(os.path.realpath(directory))
    st = os.stat(real)
    if st.st_uid not in (uid, 0):
        raise PermissionDenied(
            f"refusing to start: {directory} belongs to {_who(st.st_uid)}, not to the user "
            f"running the service ({_who(uid)}); use a directory of your own or chown it"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionDenied(
            f"refusing to start: {directory} is writable by "
            f"{'others' if st.st_mode & stat.S_IWOTH else 'its group'} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}), so another user could replace the service's "
            f"files; run 'chmod go-w {directory}'"
        )
    for parent in real.parents:
        pst = os.stat(parent)
        if pst.st_uid not in (uid, 0):
            raise PermissionDenied(
                f"refusing to start: {parent}, above {directory}, belongs to "
                f"{_who(pst.st_uid)}, who could move the service's files; use a directory "
                "of your own"
            )
        if pst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not pst.st_mode & stat.S_ISVTX:
            raise PermissionDenied(
                f"refusing to start: {parent}, above {directory}, is writable by others "
                f"(mode {stat.S_IMODE(pst.st_mode):04o}); run 'chmod go-w {parent}' or use "
                "another directory"
            )


def _who(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"
