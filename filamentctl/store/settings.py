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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from filamentctl import paths as _paths
from filamentctl.core import schema
from filamentctl.errors import ConfigError, UserError
from filamentctl.store import keys

if TYPE_CHECKING:
    from filamentctl.store.config_store import ConfigStore

Origin = Literal["default", "stored", "env", "override"]


class Settings(Mapping[str, Any]):
    """Every schema key with its typed value; immutable.

    ``sources[key]`` says where each value came from ("default", "stored", "env", "override");
    ``source`` is "store" when a configuration database was read, "defaults" when none exists;
    ``key_source`` names the key that decrypted it (None without a database).
    """

    __slots__ = ("_values", "sources", "source", "key_source", "config_path")

    def __init__(
        self,
        values: Mapping[str, Any],
        sources: Mapping[str, Origin],
        source: Literal["store", "defaults"],
        key_source: str | None,
        config_path: Path,
    ) -> None:
        self._values: Mapping[str, Any] = MappingProxyType(dict(values))
        self.sources: Mapping[str, Origin] = MappingProxyType(dict(sources))
        self.source = source
        self.key_source = key_source
        self.config_path = config_path

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
            k: ("••••" if schema.SCHEMA[k].secret and v else v) for k, v in self._values.items()
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
    source: Literal["store", "defaults"] = "defaults"
    if os.path.lexists(paths.config_db):
        store, found = open_store(paths, env)
        with store:
            stored = _typed_stored(store.items())
        key_source, source = found.source, "store"

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
    return Settings(values, sources, source, key_source, paths.config_db)


def open_store(
    paths: _paths.Paths, env: Mapping[str, str], create: bool = False
) -> tuple[ConfigStore, keys.FoundKey]:
    """Open the configuration database with the key from the first configured source."""
    from filamentctl.store.config_store import ConfigStore

    if not create and not os.path.lexists(paths.config_db):
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
    key_source: str  # where the key is: the env variable or the key file
    key_file_written: bool  # a new key file was generated (back it up)


def init_config(paths: _paths.Paths, env: Mapping[str, str]) -> InitResult:
    """Create an empty encrypted configuration.

    The key comes from ``FILAMENTCTL_CONFIG_KEY`` if set, else an existing key file is reused,
    else a new random key is written to ``paths.key_file`` (0600). Raises UserError when a
    configuration already exists (left untouched) or a key source is unusable.
    """
    if os.path.lexists(paths.config_db):
        raise UserError(
            f"a configuration already exists at {paths.config_db}; see it with "
            "`filamentctl config list` (to start over, move it away first)"
        )
    found = keys.find_key(paths, env)
    written = False
    if found is None:
        material = keys.write_key_file(paths.key_file)
        found = keys.FoundKey(material, f"the key file {paths.key_file}")
        written = True
    from filamentctl.store.config_store import ConfigStore

    ConfigStore.open(paths.config_db, found.material, create=True, key_source=found.source).close()
    return InitResult(paths.config_db, found.source, written)


def set_value(paths: _paths.Paths, env: Mapping[str, str], name: str, value: Any) -> Any:
    """Validate and store one value (text is parsed); returns the typed value stored.

    Raises ConfigError (nothing stored) for an unknown key, an invalid value, or when the stored
    configuration would break a cross-field rule.
    """
    typed = _typed_override(name, value)
    store, _ = open_store(paths, env)
    with store:
        stored = _typed_stored(store.items())
        stored[name] = typed
        problems = schema.validate(stored)
        if problems:
            raise rules_error(problems, f"not setting {name}")
        store.set(name, typed)
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
