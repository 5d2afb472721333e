"""Where the configuration's encryption key comes from.

Sources are tried in priority order (product.md §6): the ``FILAMENTCTL_CONFIG_KEY`` environment
variable, then HashiCorp Vault when ``VAULT_ADDR`` is set (:mod:`filamentctl.store.vault`; an
unreachable Vault falls back with one warning), then the key file (``paths.key_file``, mode 0600,
in a directory apart from the database). A source is anything with a ``name`` and a
``find(paths, env)`` method, and :data:`SOURCES` is the ordered list.

Key text is either 64 hex characters (a raw 256-bit key, what ``config init`` generates) or any
other non-empty string, used as a passphrase (SQLCipher derives the key from it). There is no
built-in default key: with no source configured, :func:`require_key` fails with what to do.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from filamentctl.errors import ConfigDecryptError, PermissionDenied, UserError
from filamentctl.paths import Paths

ENV_KEY = "FILAMENTCTL_CONFIG_KEY"
KEY_BYTES = 32
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


KeyKind = Literal["env", "vault", "file"]


@dataclass(frozen=True, slots=True)
class FoundKey:
    """Key material (32 raw bytes, or a passphrase) and where it came from, for messages."""

    material: bytes | str
    source: str  # e.g. "FILAMENTCTL_CONFIG_KEY" or "the key file /path/config.key"
    kind: KeyKind = "file"

    def __repr__(self) -> str:  # never show the key itself
        return f"FoundKey(source={self.source!r})"


class KeySource(Protocol):
    name: str

    def find(self, paths: Paths, env: Mapping[str, str]) -> FoundKey | None:
        """The key, None when this source is not configured; UserError when it is but broken."""
        ...


def key_material(text: str) -> bytes | str:
    """64 hex characters -> 32 raw bytes; anything else is a passphrase (kept as is)."""
    stripped = text.strip()
    if _HEX_KEY.fullmatch(stripped):
        return bytes.fromhex(stripped)
    return text


class EnvKeySource:
    """``FILAMENTCTL_CONFIG_KEY``: wins over every other source."""

    name = ENV_KEY

    def find(self, paths: Paths, env: Mapping[str, str]) -> FoundKey | None:
        if ENV_KEY not in env:
            return None
        text = env[ENV_KEY]
        if not text.strip():
            raise UserError(
                f"{ENV_KEY} is set but empty; set it to the configuration key or unset it "
                "to use the key file"
            )
        return FoundKey(key_material(text), ENV_KEY, kind="env")


class FileKeySource:
    """The key file: must be a regular file readable by its owner only (0600 or stricter)."""

    name = "key file"

    def find(self, paths: Paths, env: Mapping[str, str]) -> FoundKey | None:
        path = paths.key_file
        try:
            info = path.lstat()  # a symlink is refused, never followed
        except FileNotFoundError:
            return None
        except PermissionError:
            raise PermissionDenied(
                f"cannot read the key file {path}: permission denied; run as the user that "
                "owns it (e.g. the service user, or with sudo)"
            ) from None
        if stat.S_ISLNK(info.st_mode):
            raise PermissionDenied(
                f"refusing the key file {path}: it is a symbolic link; replace it with the key "
                "file itself (mode 0600) and check who can write to its directory"
            )
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"the key file {path} is not a regular file; remove it or fix it")
        if info.st_mode & 0o077:
            raise UserError(
                f"refusing the key file {path}: mode {stat.S_IMODE(info.st_mode):04o} lets "
                f"others read it; run `chmod 600 {path}`"
            )
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, encoding="utf-8") as fh:
                text = fh.read().strip()
        except PermissionError:
            raise PermissionDenied(
                f"cannot read the key file {path}: permission denied; run as the user that "
                "owns it (e.g. the service user, or with sudo)"
            ) from None
        except UnicodeDecodeError:
            raise UserError(f"the key file {path} is not text; it is damaged") from None
        except OSError as exc:  # ELOOP: it became a symlink since the check above
            raise PermissionDenied(f"refusing the key file {path}: {exc.strerror}") from None
        if not text:
            raise UserError(f"the key file {path} is empty; restore it from your backup")
        return FoundKey(key_material(text), f"the key file {path}", kind="file")


def _vault_source() -> KeySource:
    # store/vault.py imports only the schema at module level; hvac loads when Vault is used.
    from filamentctl.store.vault import VaultKeySource

    return VaultKeySource()


# In priority order (product.md §6).
SOURCES: Sequence[KeySource] = (EnvKeySource(), _vault_source(), FileKeySource())


def find_key(
    paths: Paths, env: Mapping[str, str] | None = None, sources: Sequence[KeySource] | None = None
) -> FoundKey | None:
    """The key from the first configured source, or None when no source has one.

    Raises UserError/PermissionDenied when a source is configured but unusable (empty env
    variable, key file readable by others or unreadable): never falls through to a weaker one.
    """
    env = os.environ if env is None else env
    for source in SOURCES if sources is None else sources:
        found = source.find(paths, env)
        if found is not None:
            return found
    return None


def require_key(paths: Paths, env: Mapping[str, str] | None = None) -> FoundKey:
    """Like :func:`find_key`, but no key at all is a ConfigDecryptError saying where to put one."""
    found = find_key(paths, env)
    if found is None:
        unreachable = [
            str(getattr(s, "last_unreachable", None))
            for s in SOURCES
            if getattr(s, "last_unreachable", None)
        ]
        where = f" ({unreachable[0]}; the key file is the fallback)" if unreachable else ""
        raise ConfigDecryptError(
            f"cannot decrypt the configuration at {paths.config_db}: no key found{where}; "
            f"check that Vault is reachable (VAULT_ADDR), set {ENV_KEY}, or restore the key "
            f"file {paths.key_file} (mode 0600)"
        )
    return found


def generate_key() -> bytes:
    """A fresh random 256-bit key (``secrets``)."""
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: Path, key: bytes | None = None) -> bytes:
    """Write ``key`` (or a new one) as hex to ``path`` with mode 0600; returns the key.

    Creates missing parent directories with mode 0700. The file appears atomically and complete
    (written to a temporary file, then hard-linked into place), and an existing key file is
    never overwritten: that is a UserError, because losing a key loses the configuration.
    """
    key = generate_key() if key is None else key
    if len(key) != KEY_BYTES:
        raise ValueError(f"a configuration key is {KEY_BYTES} bytes, not {len(key)}")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if the target exists: never replaces a key
        except FileExistsError:
            raise UserError(f"a key file already exists at {path}; it was left untouched") from None
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
