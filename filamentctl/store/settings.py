"""The effective settings: defaults < stored values < environment < explicit overrides.

:func:`load_settings` is what the service and the CLI call. When no configuration database
exists yet (never initialised) it returns defaults plus environment overrides with
``settings.source == "defaults"`` and does not import ``sqlcipher3``. When one exists it must
decrypt: a wrong or missing key is an error, never a fallback to defaults.

The write helpers (:func:`init_config`, :func:`set_value`, :func:`unset_value`) validate before
anything is stored, so the stored configuration is always consistent on its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from filamentctl import paths as _paths
from filamentctl.core import schema
from filamentctl.errors import ConfigError, PermissionDenied, UsageError, UserError
from filamentctl.store import keys

if TYPE_CHECKING:
    from filamentctl.core.config_import import Adjustment
    from filamentctl.store.config_store import ConfigStore

Origin = Literal["default", "stored", "env", "override"]
#: A validated setting's value: what the schema's key types hold (a ``json_object`` key holds a
#: JSON object, e.g. ``data.tags``).
SettingValue = bool | int | float | str | dict[str, object]
#: ``Settings.key_info`` when no configuration database (hence no key) was used.
NO_KEY: Mapping[str, str | None] = {"key_source": None, "key_location": None, "vault_addr": None}


class Settings(Mapping[str, Any]):
    """Every schema key with its typed value; immutable.

    ``sources[key]`` says where each value came from ("default", "stored", "env", "override");
    ``source`` is "store" when a configuration database was read, "defaults" when none exists;
    ``key_source`` names the key that decrypted it (None without a database) and ``key_info``
    says where that key is (:meth:`keys.FoundKey.describe`: kind and location, never the key).
    """

    __slots__ = ("_values", "sources", "source", "key_source", "config_path", "key_info")

    def __init__(
        self,
        values: Mapping[str, SettingValue],
        sources: Mapping[str, Origin],
        source: Literal["store", "defaults"],
        key_source: str | None,
        config_path: Path,
        key_info: Mapping[str, str | None] | None = None,
    ) -> None:
        self._values: Mapping[str, Any] = MappingProxyType(dict(values))
        self.sources: Mapping[str, Origin] = MappingProxyType(dict(sources))
        self.source = source
        self.key_source = key_source
        self.config_path = config_path
        self.key_info: Mapping[str, str | None] = MappingProxyType(dict(key_info or NO_KEY))

    def __getitem__(self, name: str) -> Any:
        value = self._values[name]
        # Hand out copies of mutable values so nobody can change the settings in place.
        return dict(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:  # secrets never reach logs through a repr
        shown = {
            k: ("••••" if schema.masked(k, v, reveal=False) else v) for k, v in self._values.items()
        }
        return f"Settings(source={self.source!r}, {shown!r})"


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Typed values from ``FILAMENTCTL_SECTION__KEY`` variables.

    Raises ConfigError for a variable naming no key (with a did-you-mean hint) or holding an
    invalid value. Variables without ``__`` (``FILAMENTCTL_HOME``, ...) are not keys.
    """
    out: dict[str, Any] = {}
    for var, text in env.items():
        if schema.is_key_env(var):
            name = schema.key_from_env(var)
            try:
                out[name] = schema.parse(name, text)
            except ConfigError as exc:
                raise ConfigError(f"{exc} (from the environment variable {var})") from None
    return out


def _typed_override(name: str, value: Any) -> Any:
    # CLI flags may arrive as text or already typed.
    return schema.parse(name, value) if isinstance(value, str) else schema.check(name, value)


def _typed_stored(stored: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in stored.items():
        if name not in schema.SCHEMA:
            raise ConfigError(
                f"the stored configuration has the unknown key '{name}'; remove it with "
                f"`filamentctl config unset {name}`"
            )
        try:
            out[name] = schema.check(name, value)
        except ConfigError as exc:
            raise ConfigError(
                f"stored {exc}; fix it with `filamentctl config set {name} VALUE` or "
                f"`filamentctl config unset {name}`"
            ) from None
    return out


def rules_error(
    problems: list[str], what: str = "the configuration is inconsistent"
) -> ConfigError:
    """One ConfigError listing cross-field problems."""
    return ConfigError(f"{what}: " + "; ".join(problems))


def config_exists(path: Path) -> bool:
    """Whether a configuration database is there. Only "no such file" means no configuration:
    a directory we may not read raises PermissionDenied (exit 4) rather than silently running
    on defaults."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        raise PermissionDenied(
            f"cannot read the configuration at {path}: permission denied; run as the service's "
            "user (sudo -u filamentctl ...) or fix the directory's permissions"
        ) from None
    except NotADirectoryError:
        return False
    return True


def load_settings(
    paths: _paths.Paths | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    check_rules: bool = True,
) -> Settings:
    """Build the effective settings (see the module docstring for the layering).

    Raises ConfigError (exit 2) for unknown keys or variables, invalid values, and, unless
    ``check_rules`` is False, broken cross-field rules; ConfigDecryptError (exit 1) when the
    database exists but no key is found or it does not match; UserError for a damaged file.
    """
    env = os.environ if env is None else env
    paths = _paths.resolve(env) if paths is None else paths
    from_env = env_overrides(env)
    explicit = {name: _typed_override(name, v) for name, v in (overrides or {}).items()}

    stored: dict[str, Any] = {}
    key_source: str | None = None
    key_info: Mapping[str, str | None] = NO_KEY
    source: Literal["store", "defaults"] = "defaults"
    if config_exists(paths.config_db):
        store, found = open_store(paths, env)
        with store:
            stored = _typed_stored(store.items())
        key_source, source, key_info = found.source, "store", found.describe()

    values = schema.defaults()
    sources: dict[str, Origin] = dict.fromkeys(values, "default")
    layers: tuple[tuple[dict[str, Any], Origin], ...] = (
        (stored, "stored"),
        (from_env, "env"),
        (explicit, "override"),
    )
    for layer, origin in layers:
        for name, value in layer.items():
            values[name] = value
            sources[name] = origin
    if check_rules:
        problems = schema.validate(values)
        if problems:
            raise rules_error(problems)
    return Settings(values, sources, source, key_source, paths.config_db, key_info)


def open_store(
    paths: _paths.Paths, env: Mapping[str, str], create: bool = False
) -> tuple[ConfigStore, keys.FoundKey]:
    """Open the configuration database with the key from the first configured source."""
    from filamentctl.store.config_store import ConfigStore

    if not create and not config_exists(paths.config_db):
        # Say what is missing first: asking for a key would send the user the wrong way.
        raise UserError(
            f"no configuration at {paths.config_db} yet; run `filamentctl config init` first"
        )
    found = keys.require_key(paths, env)
    store = ConfigStore.open(paths.config_db, found.material, create, key_source=found.source)
    return store, found


@dataclass(frozen=True, slots=True)
class InitResult:
    config_db: Path
    key_source: str  # where the key is: the env variable, Vault or the key file
    key_file_written: bool  # a new key file was generated (back it up)
    vault_key_written: bool = False  # a new key was stored in Vault


def init_config(paths: _paths.Paths, env: Mapping[str, str], *, vault: bool = False) -> InitResult:
    """Create an empty encrypted configuration.

    The key comes from ``FILAMENTCTL_CONFIG_KEY`` if set, else an existing key (Vault, key file)
    is reused, else a new random key is written to ``paths.key_file`` (0600). With ``vault=True``
    the key lives in Vault instead (a key already there is reused) and no key file is written.
    Raises UserError when a configuration already exists (left untouched) or a key source is
    unusable; VaultError/VaultUnreachable when ``vault`` and Vault cannot take the key.
    """
    if config_exists(paths.config_db):
        raise UserError(
            f"a configuration already exists at {paths.config_db}; see it with "
            "`filamentctl config list` (to start over, move it away first)"
        )
    written = vault_written = False
    found: keys.FoundKey | None
    if vault:
        found, vault_written = keys.vault_init_key(env)
    else:
        found = keys.find_key(paths, env)
        if found is None:
            material = keys.write_key_file(paths.key_file)
            found = keys.FoundKey(
                material,
                f"the key file {paths.key_file}",
                kind="file",
                location=str(paths.key_file),
            )
            written = True
    from filamentctl.store.config_store import ConfigStore

    ConfigStore.open(paths.config_db, found.material, create=True, key_source=found.source).close()
    return InitResult(paths.config_db, found.source, written, vault_written)


def set_value(paths: _paths.Paths, env: Mapping[str, str], name: str, value: Any) -> Any:
    """Validate and store one value (text is parsed); returns the typed value stored.

    Raises ConfigError (nothing stored) for an unknown key, an invalid value, or when the stored
    configuration would break a cross-field rule.
    """
    return set_values(paths, env, [(name, value)])[name]


def set_values(
    paths: _paths.Paths, env: Mapping[str, str], items: Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    """Validate several values together and store them in one transaction: all or nothing.

    Values are checked one by one, then the cross-field rules on the stored configuration with
    all of them applied, so ``heater.min_temp_c 45 heater.max_temp_c 50`` works in one go where
    either change alone would break ``min < max``. Returns name → typed value stored.

    Raises ConfigError (nothing stored) for an unknown key, a key given twice, an invalid value,
    or a broken cross-field rule; the message names every problem found.
    """
    typed: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in items:
        if name in typed:
            problems.append(f"{name} is given twice")
            continue
        try:
            typed[name] = _typed_override(name, value)
        except ConfigError as exc:
            if len(items) == 1:
                raise
            problems.append(str(exc))
    what = f"not setting {items[0][0]}" if len(items) == 1 else "nothing set"
    if problems:
        raise rules_error(problems, what)
    store, _ = open_store(paths, env)
    with store:
        stored = _typed_stored(store.items())
        stored.update(typed)
        problems = schema.validate(stored)
        if problems:
            raise rules_error(problems, what)
        store.set_many(typed)
    return typed


def unset_value(paths: _paths.Paths, env: Mapping[str, str], name: str) -> bool:
    """Remove a stored value (back to the default); returns whether one was stored.

    Raises ConfigError for an unknown key that is not stored, or when the default would break
    a cross-field rule (nothing removed). A stored key unknown to this version can be removed.
    """
    store, _ = open_store(paths, env)
    with store:
        raw = store.items()
        if name not in raw:
            schema.key(name)  # unknown key: ConfigError with a hint
            return False
        rest = {k: v for k, v in raw.items() if k != name}
        problems = schema.validate(_typed_stored(rest))
        if problems:
            raise rules_error(problems, f"not unsetting {name}")
        store.unset(name)
    return True


# -- whole-configuration operations: export, import, edit, validate, rekey ----------------------


def stored_values(paths: _paths.Paths, env: Mapping[str, str]) -> dict[str, Any]:
    """The stored (typed) values: what ``config export`` and ``config edit`` show."""
    store, _ = open_store(paths, env)
    with store:
        return _typed_stored(store.items())


def check_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Type-check a whole set of values to be stored; returns (typed, problems).

    Problems are one line each: unknown keys with a did-you-mean hint, invalid values (secrets
    never repeated), then the cross-field rules. Nothing raises for bad input.
    """
    typed: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in values.items():
        try:
            typed[name] = (
                _typed_override(name, value)
                if isinstance(value, str)
                and (schema.SCHEMA.get(name) is not None and schema.SCHEMA[name].type != "str")
                else schema.check(name, value)
            )
        except ConfigError as exc:
            problems.append(str(exc))
    if not problems:
        problems.extend(schema.validate(typed, deep=True))
    return typed, problems


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import stored (or, in a dry run, would store)."""

    stored: dict[str, Any]  # the keys written: the imported ones plus any adjusted
    adjusted: list[Adjustment]  # values moved to the nearest valid one for the hardware


def import_values(
    paths: _paths.Paths,
    env: Mapping[str, str],
    values: Mapping[str, Any],
    *,
    dry_run: bool = False,
) -> ImportOutcome:
    """Store imported (already typed) values on top of the stored ones, in one transaction.

    Values out of range for the resulting hardware (e.g. a read interval below a DHT22's 2 s)
    are moved to the nearest valid one (:func:`config_import.fit_to_hardware`) and listed.
    ``dry_run`` does every step, the same checks included, except the write. Raises
    ConfigError (nothing stored) when the result would still be invalid or inconsistent.
    """
    from filamentctl.core.config_import import fit_to_hardware

    store, _ = open_store(paths, env)
    with store:
        merged, adjusted = fit_to_hardware({**_typed_stored(store.items()), **values})
        typed, problems = check_values(merged)
        if problems:
            raise rules_error(problems, "not importing")
        written = {k: typed[k] for k in [*values, *(a.key for a in adjusted)]}
        if not dry_run:
            store.set_many(written)
    return ImportOutcome(written, adjusted)


def replace_stored(
    paths: _paths.Paths, env: Mapping[str, str], values: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Make ``values`` the whole stored configuration (``config edit``); one transaction.

    Returns (changed or added keys, removed keys). Raises ConfigError (nothing changed) when the
    values are invalid or inconsistent.
    """
    typed, problems = check_values(values)
    if problems:
        raise rules_error(problems, "not saving")
    store, _ = open_store(paths, env)
    with store:
        before = store.items()
        store.replace_all(typed)
    changed = sorted(k for k, v in typed.items() if before.get(k, _MISSING) != v)
    removed = sorted(k for k in before if k not in typed)
    return changed, removed


_MISSING = object()


@dataclass(frozen=True, slots=True)
class RekeyResult:
    key_source: str
    kind: keys.KeyKind
    keys_copied: int


def rekey(paths: _paths.Paths, env: Mapping[str, str], new_key: str | None = None) -> RekeyResult:
    """Re-encrypt the configuration with a new key, where the current key came from.

    The new key is ``new_key`` (64 hex characters or a passphrase) or, when None, a fresh random
    one. Key file: the new key replaces the file. Vault: stored as a new version of the secret.
    ``FILAMENTCTL_CONFIG_KEY``: ``new_key`` is required, and the caller must set the variable to
    it afterwards.

    Steps: copy every setting into a new database under the new key, reopen and compare it; keep
    the old database (and old key file) as ``*.old`` while swapping; verify by decrypting the
    swapped-in file with the key found the normal way; only then delete the ``*.old`` copies. On
    any failure the old files are put back and a UserError says what happened.
    """
    store, found = open_store(paths, env)
    with store:
        items = store.items()
    material = _new_material(found, new_key)
    files = _RekeyFiles.beside(paths)
    files.check_no_leftovers()
    _write_copy(files.new_db, material, items)
    _swap(paths, env, found, material, items, files)
    _remove(files.old_db)
    _remove(files.old_key)
    return RekeyResult(found.source, found.kind, len(items))


def _new_material(found: keys.FoundKey, new_key: str | None) -> bytes | str:
    """The new key's material; UsageError when there is none to use or it changes nothing."""
    if found.kind == "env" and new_key is None:
        raise UsageError(
            f"the key comes from {keys.ENV_KEY}; give the new key on stdin "
            "(`filamentctl config rekey --new-key -`), then set the variable to it"
        )
    material: bytes | str = keys.generate_key() if new_key is None else keys.key_material(new_key)
    if isinstance(material, str) and not material.strip():
        raise UsageError("the new key is empty")
    if material == found.material:
        raise UsageError("the new key is the current key; nothing to do")
    return material


@dataclass(frozen=True, slots=True)
class _RekeyFiles:
    """The files a rekey creates next to the configuration and its key file."""

    new_db: Path  # the re-encrypted copy, until it is swapped in
    old_db: Path  # the old database, kept until the swap is verified
    old_key: Path  # the old key file, likewise
    new_key: Path  # the new key file, until it is swapped in

    @classmethod
    def beside(cls, paths: _paths.Paths) -> _RekeyFiles:
        db, key = paths.config_db, paths.key_file
        token = secrets.token_hex(6)
        return cls(
            new_db=db.with_name(f".{db.name}.rekey-{token}"),
            old_db=db.with_name(db.name + ".old"),
            old_key=key.with_name(key.name + ".old"),
            new_key=key.with_name(f".{key.name}.new-{token}"),
        )

    def check_no_leftovers(self) -> None:
        """UserError when an earlier rekey left its ``*.old`` copies behind."""
        for leftover in (self.old_db, self.old_key):
            if os.path.lexists(leftover):
                raise UserError(
                    f"{leftover} is left from an earlier rekey; check which key opens which "
                    "file, then move it away"
                )


def _write_copy(new_db: Path, material: bytes | str, items: Mapping[str, Any]) -> None:
    """Copy ``items`` into a new database at ``new_db`` under ``material`` and read it back;
    UserError (and no file left) when the copy differs."""
    from filamentctl.store.config_store import ConfigStore

    try:
        with ConfigStore.open(new_db, material, create=True, key_source="the new key") as fresh:
            fresh.set_many(items)
        with ConfigStore.open(new_db, material, key_source="the new key") as check:
            if check.items() != items:
                raise UserError(
                    "the re-encrypted copy differs from the configuration; kept the old"
                )
    except BaseException:
        _remove(new_db)
        raise


def _swap(
    paths: _paths.Paths,
    env: Mapping[str, str],
    found: keys.FoundKey,
    material: bytes | str,
    items: Mapping[str, Any],
    files: _RekeyFiles,
) -> None:
    """Put the re-encrypted copy and the new key where the old ones were (kept as ``*.old``),
    then decrypt the result with the key found the normal way. On any failure the old files
    (and the old Vault key) are put back; a UserError then says the rekey failed."""
    new_text = material.hex() if isinstance(material, bytes) else material
    vault_old: str | None = None
    try:
        os.link(paths.config_db, files.old_db)
        if found.kind == "file":
            if isinstance(material, bytes):
                keys.write_key_file(files.new_key, material)
            else:
                raise UsageError("a key file holds a 64-hex-character key, not a passphrase")
            os.link(paths.key_file, files.old_key)
        elif found.kind == "vault":
            vault_old = keys.read_vault_key(env)
            keys.store_vault_key(env, new_text)
        if found.kind == "file":
            os.replace(files.new_key, paths.key_file)
        os.replace(files.new_db, paths.config_db)
        check_env = {**env, keys.ENV_KEY: new_text} if found.kind == "env" else env
        again, _ = open_store(paths, check_env)
        with again:
            if again.items() != items:
                raise UserError("the re-encrypted configuration differs after the swap")
    except BaseException as exc:
        _restore(paths, found, env, files.old_db, files.old_key, vault_old)
        _remove(files.new_db)
        _remove(files.new_key)
        if isinstance(exc, UserError):
            raise UserError(
                f"rekey failed, the old key and configuration are back: {exc}"
            ) from None
        raise


def _restore(
    paths: _paths.Paths,
    found: keys.FoundKey,
    env: Mapping[str, str],
    old_db: Path,
    old_key: Path,
    vault_old: str | None,
) -> None:
    if os.path.lexists(old_db):
        os.replace(old_db, paths.config_db)
    if found.kind == "file" and os.path.lexists(old_key):
        os.replace(old_key, paths.key_file)
    if found.kind == "vault" and vault_old:
        keys.store_vault_key(env, vault_old)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
