"""The configuration as files: what ``config import``, ``export``, ``edit`` and ``validate`` read
and write, apart from the encrypted store itself.

- Reading: a file's text (at most 1 MiB of UTF-8, so ``/dev/zero`` is refused, not read), and its
  keys by extension: TOML (ours), JSON, or the seed's YAML.
- Writing: files that may hold secrets are created private (0600) and never overwrite one.
- Editing: the TOML that ``config edit`` opens, and the merge rules for what was saved: a secret
  left redacted keeps its stored value.
- Where the key comes from, for ``config path``.

Every user mistake (no such file, not UTF-8, unknown format, a file in the way) raises a
UsageError or ConfigError with one line saying what to do. Nothing here prompts or prints.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filamentctl import paths as _paths
from filamentctl.core import schema
from filamentctl.core.config_import import Adjustment, ImportResult
from filamentctl.errors import EXIT_USAGE, ConfigError, UsageError, UserError

#: Configuration files are a few KiB; anything larger is not one.
MAX_SOURCE_BYTES = 1 << 20

EDIT_HEADER = (
    "filamentctl configuration. Uncomment a line to set a key; delete a line to return it to",
    "its default. Redacted secrets are kept as stored; type a new value to replace one, or",
    "better, use `filamentctl config set KEY -` so the secret never sits in a file.",
)


# -- reading -------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """A file's UTF-8 text; UsageError (exit 2) when it is missing, a directory, larger than
    1 MiB or not UTF-8 text."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory; give a file") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise UsageError(f"{path} is larger than 1 MiB: not a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and try again"
        ) from None


def read_keys(path: Path) -> dict[str, Any]:
    """A configuration file as dotted keys (values as written, not yet checked): TOML (ours),
    YAML (the seed's; also a file without extension) or JSON, by extension.

    Raises UsageError for an unreadable file or an unknown extension, ConfigError for a file
    that does not parse or nests too deeply.
    """
    try:
        return _parse_keys(path, read_text(path))
    except RecursionError:  # JSON or TOML nested thousands deep
        raise ConfigError(f"{path}: nested too deeply to be a configuration file") from None


def _parse_keys(path: Path, text: str) -> dict[str, Any]:
    from filamentctl.core import config_import

    suffix = path.suffix.lower()
    if suffix == ".toml":
        from filamentctl.core.config_toml import loads

        return loads(text)
    if suffix == ".json":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return config_import.flatten(doc)
    if suffix in (".yaml", ".yml", ""):
        try:
            return config_import.flatten(config_import.parse_yaml(text))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    raise UsageError(f"{path}: unknown file type {suffix!r}; give a .yaml, .toml or .json file")


def file_problems(path: Path) -> list[str]:
    """What is wrong with a configuration file as ``config edit`` would store it: unknown keys,
    invalid values, broken cross-field rules (empty when it is valid). Raises like
    :func:`read_keys` when the file cannot be read at all."""
    from filamentctl.store.settings import check_values

    raw = read_keys(path)
    unknown = [schema.unknown_key_message(n) for n in raw if n not in schema.SCHEMA]
    _, problems = check_values({k: v for k, v in raw.items() if k in schema.SCHEMA})
    return unknown + problems


# -- importing -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    """What ``config import`` did (or, in a dry run, would do): the mapped ``result`` (its values
    as stored) and every value moved to the nearest valid one."""

    result: ImportResult
    adjusted: list[Adjustment] = field(default_factory=list)


def import_file(
    paths: _paths.Paths,
    env: Mapping[str, str],
    path: Path,
    env_file: Path | None = None,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Import a configuration file (and the seed's ``.env``, which overrides it) into the store.

    Every key is mapped to ours (:func:`config_import.map_config`); ``dry_run`` runs the same
    checks and leaves out only the write. Raises ConfigError (exit 2, nothing stored) when a
    value cannot be mapped or the result would be invalid, and like :func:`read_keys` for a
    file that cannot be read.
    """
    from filamentctl.core import config_import

    flat = read_keys(path)
    dotenv = config_import.parse_dotenv(read_text(env_file)) if env_file is not None else {}
    result = config_import.map_config(flat, dotenv)
    if result.errors:
        raise ConfigError(f"nothing imported from {path}: " + "; ".join(result.errors), EXIT_USAGE)
    adjusted = list(result.adjusted)
    if result.values:
        from filamentctl.store.settings import import_values

        outcome = import_values(paths, env, result.values, dry_run=dry_run)
        adjusted += outcome.adjusted
        result.values.update(outcome.stored)
    return ImportReport(result, adjusted)


# -- writing -------------------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 (it may hold secrets) and write ``text``; UsageError when
    the file exists already: never overwrite one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists; choose another file or remove it") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


@contextmanager
def scratch_file(text: str, suffix: str = ".toml") -> Iterator[Path]:
    """A new private (0600) temporary file holding ``text``, removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="filamentctl-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        yield path
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Export:
    """The TOML text of an export and how many keys it holds."""

    text: str
    count: int


def export_config(
    paths: _paths.Paths, env: Mapping[str, str], *, all_keys: bool, reveal: bool
) -> Export:
    """The stored values (``all_keys``: every key's effective value) as TOML, secrets redacted
    unless ``reveal``. Raises like :func:`store.settings.load_settings` when the store cannot
    be read."""
    from filamentctl.core.config_toml import REDACTED, dumps

    if all_keys:
        from filamentctl.store.settings import load_settings

        values: dict[str, Any] = dict(load_settings(paths, env, check_rules=False))
    else:
        from filamentctl.store.settings import stored_values

        values = stored_values(paths, env)
    what = "every key (effective values)" if all_keys else "stored values"
    header = [f"filamentctl configuration: {what}"]
    if not reveal:
        header.append("secrets are redacted; `config import` leaves redacted secrets as stored")
    shown = {
        name: REDACTED if schema.masked(name, value, reveal) else value
        for name, value in values.items()
        if name in schema.SCHEMA
    }
    return Export(dumps(shown, header=header), len(values))


# -- editing -------------------------------------------------------------------------------------


def edit_text(stored: Mapping[str, Any]) -> str:
    """The TOML ``config edit`` opens: the stored values (secrets redacted), then every other
    key commented out at its default, each with its help."""
    from filamentctl.core.config_toml import REDACTED, dumps

    values = {n: REDACTED if schema.masked(n, v, False) else v for n, v in stored.items()}
    defaults = {n: k.default for n, k in schema.SCHEMA.items() if n not in values}
    return dumps(values, header=list(EDIT_HEADER), commented=defaults, with_help=True)


def parse_edited(text: str, stored: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The saved text of ``config edit`` → (the typed values to store, the problems).

    A secret left redacted keeps its stored value (or stays unset); unknown keys, invalid values
    and broken cross-field rules are problems, one line each. Nothing raises for bad input.
    """
    from filamentctl.core.config_toml import REDACTED, loads
    from filamentctl.store.settings import check_values

    try:
        values = loads(text)
    except ConfigError as exc:
        return {}, [str(exc)]
    problems: list[str] = []
    for name in list(values):
        if name not in schema.SCHEMA:
            problems.append(schema.unknown_key_message(name))
            del values[name]
        elif schema.SCHEMA[name].secret and values[name] == REDACTED:
            if name in stored:
                values[name] = stored[name]
            else:
                del values[name]
    typed, more = check_values(values)
    return typed, problems + more


# -- the key -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyOrigin:
    """Where the configuration key would be taken from now (``key_source``, ``key_location``,
    ``vault_addr``: all None when there is none yet), or why no source is usable (``problem``)."""

    where: dict[str, str | None]
    problem: str | None = None


def key_origin(paths: _paths.Paths, env: Mapping[str, str]) -> KeyOrigin:
    """Where the key comes from; a configured but unusable source is reported, not raised, since
    showing the other paths still works. A source skipped on the way (Vault unreachable) is
    logged as a warning on the ``filamentctl.config`` logger. Never returns the key itself."""
    from filamentctl.store import keys
    from filamentctl.store.settings import NO_KEY

    try:
        found = keys.find_key(paths, env)
    except UserError as exc:
        return KeyOrigin(dict(NO_KEY), str(exc))
    return KeyOrigin(dict(NO_KEY) if found is None else found.describe())
