"""Where the configuration's encryption key comes from.

Sources are tried in priority order: the ``FILAMENTCTL_CONFIG_KEY`` environment variable, then
HashiCorp Vault when ``VAULT_ADDR`` is set (through :mod:`filamentctl.store.vault`'s client; an
unreachable Vault falls back with one warning), then the key file (``paths.key_file``, mode 0600,
in a directory apart from the database). Every source is here: anything with a ``name`` and a
``find(paths, env, notes)`` method, and :data:`SOURCES` is the ordered list.

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

from filamentctl.errors import ConfigDecryptError, PermissionDenied, UsageError, UserError
from filamentctl.paths import Paths
from filamentctl.store import vault

ENV_KEY = "FILAMENTCTL_CONFIG_KEY"
KEY_BYTES = 32
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


KeyKind = Literal["env", "vault", "file"]


@dataclass(frozen=True, slots=True)
class FoundKey:
    """Key material (32 raw bytes, or a passphrase) and where it came from, for messages.

    ``kind`` is the source (env, vault, file); ``location`` where in it: the variable name, the
    key file's path, or the Vault secret (``mount/path#field``) with ``address`` the Vault's
    ``VAULT_ADDR``. None of these is secret; :meth:`describe` is what ``config path`` and
    ``status`` show.
    """

    material: bytes | str
    source: str  # e.g. "FILAMENTCTL_CONFIG_KEY" or "the key file /path/config.key"
    kind: KeyKind = "file"
    location: str = ""
    address: str | None = None

    def __repr__(self) -> str:  # never show the key itself
        return f"FoundKey(source={self.source!r})"

    def describe(self) -> dict[str, str | None]:
        """``{"key_source", "key_location", "vault_addr"}``: where the key is, never the key."""
        return {"key_source": self.kind, "key_location": self.location, "vault_addr": self.address}


class KeySource(Protocol):
    name: str

    def find(self, paths: Paths, env: Mapping[str, str], notes: list[str]) -> FoundKey | None:
        """The key, None when this source is not configured (or, for a source with a fallback,
        unreachable: then a line in ``notes``); UserError when it is configured but broken."""
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

    def find(self, paths: Paths, env: Mapping[str, str], notes: list[str]) -> FoundKey | None:
        if ENV_KEY not in env:
            return None
        text = env[ENV_KEY]
        if not text.strip():
            raise UserError(
                f"{ENV_KEY} is set but empty; set it to the configuration key or unset it "
                "to use the key file"
            )
        return FoundKey(key_material(text), ENV_KEY, kind="env", location=ENV_KEY)


class FileKeySource:
    """The key file: must be a regular file readable by its owner only (0600 or stricter)."""

    name = "key file"

    def find(self, paths: Paths, env: Mapping[str, str], notes: list[str]) -> FoundKey | None:
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
        return FoundKey(key_material(text), f"the key file {path}", kind="file", location=str(path))


class VaultKeySource:
    """The configuration key from Vault (between FILAMENTCTL_CONFIG_KEY and the key file).

    Not configured (None) when VAULT_ADDR is unset, or when the default key path holds no key
    (Vault may be used for secret references only). Unreachable: one warning and a note, then
    None so the key file is tried. Reachable but refusing, or no key at an explicit
    FILAMENTCTL_VAULT_PATH: VaultError (never a silent fall-through to a weaker source).
    """

    name = "Vault"

    def find(self, paths: Paths, env: Mapping[str, str], notes: list[str]) -> FoundKey | None:
        if not vault.configured(env):
            return None
        ref = vault.key_ref(env)
        try:
            text = vault.VaultClient.connect(env).read(ref)
        except vault.VaultUnreachable as exc:
            notes.append(str(exc))
            vault.log.warning("%s; trying the key file", exc)
            return None
        if text is None or not text.strip():
            if env.get(vault.ENV_PATH, "").strip():
                raise vault.VaultError(
                    f"no configuration key in Vault at {env[vault.ENV_ADDR]} {ref} "
                    f"({vault.ENV_PATH}); check the path, or unset it"
                )
            return None
        return _vault_found(env, key_material(text))


def _vault_found(env: Mapping[str, str], material: bytes | str) -> FoundKey:
    ref = vault.key_ref(env)
    addr = env[vault.ENV_ADDR].strip()
    return FoundKey(material, f"Vault {addr} {ref}", kind="vault", location=str(ref), address=addr)


def read_vault_key(env: Mapping[str, str]) -> str | None:
    """The configuration key text stored in Vault (at FILAMENTCTL_VAULT_PATH or the default)."""
    return vault.VaultClient.connect(env).read(vault.key_ref(env))


def store_vault_key(env: Mapping[str, str], key_text: str) -> None:
    """Write the configuration key text to Vault, where :class:`VaultKeySource` reads it."""
    vault.VaultClient.connect(env).write(vault.key_ref(env), key_text)


def vault_init_key(env: Mapping[str, str]) -> tuple[FoundKey, bool]:
    """For ``config init --vault``: the key already in Vault, or a new one written there.

    Returns (key, whether it was written). UsageError when Vault is not configured or the
    environment key would win over it.
    """
    if ENV_KEY in env:
        raise UsageError(
            f"{ENV_KEY} is set and would win over Vault; unset it to keep the key in Vault"
        )
    if not vault.configured(env):
        raise UsageError(
            f"--vault needs {vault.ENV_ADDR} (and {vault.ENV_TOKEN}, or "
            f"{vault.ENV_ROLE_ID}/{vault.ENV_SECRET_ID}) set"
        )
    existing = read_vault_key(env)
    if existing and existing.strip():
        return _vault_found(env, key_material(existing)), False
    material = generate_key()
    store_vault_key(env, material.hex())
    return _vault_found(env, material), True


# In priority order.
SOURCES: Sequence[KeySource] = (EnvKeySource(), VaultKeySource(), FileKeySource())


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """What :func:`lookup_key` found, and notes on sources that were skipped (unreachable)."""

    found: FoundKey | None
    notes: tuple[str, ...] = ()


def lookup_key(
    paths: Paths, env: Mapping[str, str] | None = None, sources: Sequence[KeySource] | None = None
) -> KeyLookup:
    """The key from the first configured source (None when no source has one), with notes.

    Raises UserError/PermissionDenied when a source is configured but unusable (empty env
    variable, key file readable by others or unreadable): never falls through to a weaker one.
    """
    env = os.environ if env is None else env
    notes: list[str] = []
    for source in SOURCES if sources is None else sources:
        found = source.find(paths, env, notes)
        if found is not None:
            return KeyLookup(found, tuple(notes))
    return KeyLookup(None, tuple(notes))


def find_key(
    paths: Paths, env: Mapping[str, str] | None = None, sources: Sequence[KeySource] | None = None
) -> FoundKey | None:
    """:func:`lookup_key` without the notes."""
    return lookup_key(paths, env, sources).found


def require_key(paths: Paths, env: Mapping[str, str] | None = None) -> FoundKey:
    """Like :func:`find_key`, but no key at all is a ConfigDecryptError saying where to put one."""
    lookup = lookup_key(paths, env)
    found = lookup.found
    if found is None:
        unreachable = lookup.notes
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
