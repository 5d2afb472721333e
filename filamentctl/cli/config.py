"""``filamentctl config``: create, show and change the encrypted configuration.

A Typer sub-app; the root mounts it with ``root.add_typer(config.app, name="config")``. Each
command parses, calls one function of :mod:`filamentctl.store.settings` (the encrypted store) or
:mod:`filamentctl.store.config_files` (files to import, export and edit), and renders. Errors are
one line on stderr with the exit code of :mod:`filamentctl.errors` (2: unknown key or invalid
value, nothing changed; 1: cannot decrypt or operation failed; 4: permission denied).

Secrets are never taken from argv (it ends up in shell history and ``ps``): ``config set KEY -``
reads the value from stdin, and ``config set KEY`` prompts for it with hidden input. They are
shown as ``••••`` unless ``--reveal``.

Top-level imports stay light (typer, the schema, paths, errors): the store and ``sqlcipher3``
load inside the commands that need them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from filamentctl import paths as _paths
from filamentctl.cli.common import (
    Command,
    config_key,
    config_pairs,
    examples,
    print_error,
    quiet_option,
    say,
)
from filamentctl.core import schema
from filamentctl.errors import (
    EXIT_FAILED,
    EXIT_PERMISSION,
    EXIT_USAGE,
    ConfigError,
    UsageError,
    UserError,
)

if TYPE_CHECKING:
    from filamentctl.client import Client
    from filamentctl.store.config_files import ImportReport

MASK = "••••"

app = typer.Typer(
    help="The encrypted configuration: init, list, get, set, unset, edit, import, export, "
    "validate, path, rekey.",
    short_help="Create, show and change the encrypted configuration.",
    epilog=examples(
        "filamentctl config init",
        "filamentctl config set heater.min_temp_c 45 heater.max_temp_c 50",
        "filamentctl config get sensor.read_interval",
        "filamentctl config list",
    ),
    no_args_is_help=True,
    # Rich tracebacks print local variables, which can hold secrets.
    pretty_exceptions_enable=False,
)


class _StderrWarnings(logging.Handler):
    """Shows the store's warnings (e.g. "Vault unreachable, using the key file") on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"warning: {record.getMessage()}", err=True)


@contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """The store's warnings (e.g. "Vault unreachable, trying the key file") as ``warning:``
    lines on stderr while the block runs, instead of the log."""
    logger = logging.getLogger("filamentctl.config")
    handler = _StderrWarnings(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and the matching exit code."""
    with _warnings_on_stderr():
        try:
            yield
        except UserError as exc:
            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except PermissionError as exc:
            print_error(f"{exc.strerror}: {exc.filename}; check the file's owner")
            raise typer.Exit(EXIT_PERMISSION) from None
        except OSError as exc:
            print_error(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            raise typer.Exit(EXIT_FAILED) from None


def _context(writes: bool = False) -> tuple[_paths.Paths, Mapping[str, str]]:
    """The files a command works on: your own, ``FILAMENTCTL_HOME``'s, or with the root's
    ``--system`` the system service's, for the selected box.

    ``writes``: refuse root writing the system service's files that belong to its user: the
    new files would be root's and the service could not read them.
    """
    env = os.environ
    paths = _paths.resolve(env)
    if writes and env.get(_paths.SYSTEM_SWITCH_ENV) and os.geteuid() == 0:
        owner = _paths.owner_of(paths.state_dir)
        if owner not in (None, 0):
            raise UsageError(
                f"{paths.state_dir} belongs to the service's user (uid {owner}): run this as "
                "that user so the service can read what is written, e.g. `sudo -u filamentctl "
                "filamentctl --system config ...`"
            )
    return paths, env


@contextmanager
def _running_service(ctx: typer.Context) -> Iterator[Client | None]:
    """A connection to the service whose configuration a command changes, or None when none
    runs (the command then works on files).

    A service that runs but refuses this user (not in its group) is an error (exit 4), not a
    reason to change other files it does not read.
    """
    from filamentctl.cli.common import ctx_of
    from filamentctl.client import Client
    from filamentctl.errors import ServiceNotRunning

    try:
        client = Client.connect(ctx_of(ctx).socket, timeout=30.0)
    except ServiceNotRunning:
        yield None
        return
    with client:
        yield client


def _which(reply: Mapping[str, Any]) -> str:
    """The running service's configuration, as named in what config commands say."""
    box = reply.get("box") or _paths.DEFAULT_BOX
    where = f"box {box}, " if box != _paths.DEFAULT_BOX else ""
    pid, config = reply.get("pid"), reply.get("config")
    return f"the running service's configuration ({where}pid {pid}: {config})"


def _shown(name: str, value: Any, reveal: bool) -> str:
    return MASK if schema.masked(name, value, reveal) else schema.format_value(value)


def _visible(name: str, database_type: str, show_all: bool) -> bool:
    """Hide the keys of database backends that are not selected (unless --all)."""
    parts = name.split(".")
    if show_all or parts[0] != "database" or len(parts) < 3:
        return True
    return parts[1] == database_type


def _warn_rules(values: Mapping[str, Any]) -> None:
    for problem in schema.validate(values):
        typer.echo(f"warning: {problem}", err=True)


@app.command(
    short_help="Create the encrypted configuration and its key.",
    epilog=examples("filamentctl config init", "filamentctl config init --vault"),
)
def init(
    vault: Annotated[
        bool,
        typer.Option(
            "--vault",
            help="Keep the key in Vault (VAULT_ADDR, VAULT_TOKEN or AppRole; "
            "FILAMENTCTL_VAULT_PATH, default secret/filamentctl#config_key) instead of a key file.",
        ),
    ] = False,
) -> None:
    """Create the encrypted configuration and its key.

    A new random key goes into a 0600 key file apart from the database, unless
    FILAMENTCTL_CONFIG_KEY is set (then that key is used) or a key already exists (Vault, key
    file). With --vault the new key is stored in Vault and no key file is written.
    """
    paths, env = _context(writes=True)
    with _user_errors():
        from filamentctl.store.settings import init_config

        result = init_config(paths, env, vault=vault)
    typer.echo(f"created the encrypted configuration at {result.config_db}")
    if result.vault_key_written:
        typer.echo(f"new random key stored in {result.key_source}; no key file was written")
    elif result.key_file_written:
        typer.echo(
            f"new random key written to {paths.key_file} (mode 0600); back it up: without it "
            "the configuration cannot be read"
        )
    else:
        typer.echo(f"encrypted with the key from {result.key_source}")


@dataclass(frozen=True, slots=True)
class _View:
    """Effective values and their sources, from the running service or from files."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    service: str | None = None  # which running service's configuration, when it is one
    no_config: bool = False  # files: no configuration yet, defaults shown

    @classmethod
    def load(cls, ctx: typer.Context, reveal: bool, keys: list[str] | None = None) -> _View:
        """Ask the running service, or read the files when none runs (raises UserError)."""
        with _running_service(ctx) as client:
            if client is not None:
                reply = client.call("config.get", {"keys": keys, "reveal": reveal})
                return cls(reply["values"], reply["sources"], _which(reply))
        paths, env = _context()
        from filamentctl.store.settings import load_settings

        settings = load_settings(paths, env, check_rules=False)
        _warn_rules(settings)
        return cls(dict(settings), settings.sources, None, settings.source == "defaults")


@app.command(
    "list",
    short_help="Every key: its value, where it comes from, and help.",
    epilog=examples(
        "filamentctl config list",
        "filamentctl config list --json | jq '.\"heater.max_temp_c\".value'",
        "filamentctl config list --all",
    ),
)
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show secrets in clear.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include the keys of unselected database backends.")
    ] = False,
) -> None:
    """Every key with its effective value, where it comes from (default, stored, env, override),
    and help: the running service's values when one runs, else the stored configuration's.

    With --json: {"key": {"value", "source", "default", "type", "secret", "masked", "help"}};
    a masked secret has "value": null and "masked": true.
    """
    with _user_errors():
        view = _View.load(ctx, reveal)
    db_type = str(view.values.get("database.type", ""))
    names = [n for n in view.values if _visible(n, db_type, show_all)]
    if as_json:
        typer.echo(json.dumps(_list_document(view, names, reveal), indent=2, ensure_ascii=False))
    else:
        _list_table(view, names, reveal)
        hidden = len(view.values) - len(names)
        if hidden:
            typer.echo(f"({hidden} keys of other database backends hidden; --all shows them)")
    if view.service:
        typer.echo(f"(values of {view.service})", err=True)
    elif view.no_config:
        typer.echo(
            "(no configuration yet: showing defaults; `filamentctl config init` creates it)",
            err=True,
        )


def _list_document(view: _View, names: list[str], reveal: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in names:
        k, value = schema.SCHEMA[name], view.values[name]
        masked = schema.masked(name, value, reveal)
        doc[name] = {
            "value": None if masked else value,
            "source": view.sources[name],
            "default": None if schema.masked(name, k.default, reveal) else k.default,
            "type": k.type,
            "secret": k.secret,
            "masked": masked,
            "help": k.help,
        }
    return doc


def _list_table(view: _View, names: list[str], reveal: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", no_wrap=True)
    table.add_column("help", overflow="fold")
    for name in names:
        origin = view.sources[name]
        table.add_row(
            name,
            _shown(name, view.values[name], reveal),
            origin,
            schema.SCHEMA[name].help,
            style=None if origin == "default" else "bold",
        )
    Console(soft_wrap=False).print(table)


@app.command(
    short_help="Print one key's effective value.",
    cls=Command,
    epilog=examples(
        "filamentctl config get sensor.read_interval",
        "filamentctl config get heater.max_temp_c --json",
    ),
)
def get(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY", parser=config_key, help="The key, e.g. sensor.read_interval."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help='{"key", "value", "source", ...} on stdout.')
    ] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show a secret in clear.")] = False,
) -> None:
    """Print one key's effective value (plain text, for scripts): the running service's when
    one runs, else the stored configuration's. --reveal through the service needs root or the
    service's own user."""
    with _user_errors():
        k = schema.key(key)
        view = _View.load(ctx, reveal, [k.name])
    value = view.values[k.name]
    masked = schema.masked(k.name, value, reveal)
    if as_json:
        doc = {
            "key": k.name,
            "value": None if masked else value,
            "source": view.sources[k.name],
            "secret": k.secret,
            "masked": masked,
        }
        typer.echo(json.dumps(doc, ensure_ascii=False))
    else:
        typer.echo(_shown(k.name, value, reveal))
    if masked:
        typer.echo(f"({k.name} is secret; --reveal shows it)", err=True)


def _read_stdin() -> str:
    text = sys.stdin.read()
    # One trailing newline comes from `echo` or a heredoc, not from the value.
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


@app.command(
    "set",
    short_help="Validate and store one or more KEY VALUE pairs, all or nothing.",
    cls=Command,
    epilog=examples(
        "filamentctl config set heater.enabled true",
        "filamentctl config set heater.min_temp_c 45 heater.max_temp_c 50 heater.cutoff_temp_c 60",
        "filamentctl config set sensor.temperature_offset -1.5",
        "filamentctl config set database.influxdb_v2.token -   # a secret: from stdin",
    ),
    # A value may be negative (-1.5): unknown "options" are passed on as values, and a key
    # that looks like an option is refused below.
    context_settings={"ignore_unknown_options": True},
)
def set_(
    ctx: typer.Context,
    pairs: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY VALUE...",
            parser=config_pairs,
            help="One or more keys, each followed by its new value; - reads a value from stdin. "
            "A secret's value comes from stdin (-) or, as the last KEY without a VALUE, from a "
            "hidden prompt.",
            show_default=False,
        ),
    ],
    quiet: bool = quiet_option(),
) -> None:
    """Validate and store values, checked together: nothing changes unless all are valid.

    Related keys can change in one step, e.g. both ends of the heater band, where either change
    alone would break `heater.min_temp_c < heater.max_temp_c`.

    When a service runs, its configuration is changed through its socket and applied at once
    (root or the service's own user only: other members of its group get exit 4); otherwise
    the stored configuration (yours, or the system service's with `filamentctl --system`).
    """
    with _user_errors():
        items = _pairs(list(pairs))
        with _running_service(ctx) as client:
            if client is not None:
                reply = client.call("config.set", {"values": [list(i) for i in items]})
                _say_changed(reply, quiet)
                return
        paths, env = _context(writes=True)
        from filamentctl.store.settings import set_values

        stored = set_values(paths, env, items)
    for name, value in stored.items():
        say(quiet, f"{name} = {_shown(name, value, False)}")
        _note_env_override(name, env)
    say(quiet, f"stored in {paths.config_db} (no service is running)")


def _note_env_override(name: str, env: Mapping[str, str]) -> None:
    if schema.SCHEMA[name].env in env:
        typer.echo(
            f"note: the environment variable {schema.SCHEMA[name].env} overrides this stored value",
            err=True,
        )


def _say_changed(reply: Mapping[str, Any], quiet: bool) -> None:
    """What ``config.set`` changed in the running service's configuration, and what it applied."""
    for name, value in (reply.get("values") or {}).items():
        say(quiet, f"{name} = {_shown(name, value, False)}")
    for name in reply.get("unset") or []:
        if name in schema.SCHEMA:
            default = _shown(name, schema.SCHEMA[name].default, False)
            say(quiet, f"{name} unset (default: {default})")
        else:
            say(quiet, f"removed the unknown key {name}")
    say(quiet, f"changed {_which(reply)}")
    for name in reply.get("env_overrides") or []:
        typer.echo(
            f"note: the service's environment variable {schema.SCHEMA[name].env} overrides {name}",
            err=True,
        )
    _say_reloaded(reply.get("reload"), quiet)


def _pairs(words: list[str]) -> list[tuple[str, str]]:
    """``KEY VALUE [KEY VALUE]...`` → (key, text) pairs; secrets never from argv.

    Raises UsageError for an option-looking or missing key, a missing value, a secret on the
    command line, or more than one value from stdin; ConfigError for an unknown key.
    """
    if not words:
        raise UsageError("give KEY VALUE, e.g. `filamentctl config set sensor.read_interval 5`")
    items: list[tuple[str, str]] = []
    from_stdin = False
    for i in range(0, len(words), 2):
        word = words[i]
        if word.startswith("-") and word != "-":
            raise UsageError(f"no such option: {word} (see 'filamentctl config set --help')")
        k = schema.key(word)
        if i + 1 == len(words):
            if not k.secret:
                raise UsageError(f"missing VALUE for {k.name}; give it, or - to read it from stdin")
            value = typer.prompt(k.name, hide_input=True, confirmation_prompt=True, err=True)
        elif words[i + 1] == "-":
            if from_stdin:
                raise UsageError("only one value can come from stdin (-) per command")
            from_stdin = True
            value = _read_stdin()
            if not value:
                raise UsageError(
                    f"nothing on stdin for {k.name}; pipe the value in, or use `filamentctl "
                    f"config unset {k.name}` to remove a stored one"
                )
        elif k.secret:
            raise UsageError(
                f"{k.name} is a secret and is not accepted on the command line (shell history, "
                f"ps); use `filamentctl config set {k.name} -` with the value on stdin, or "
                "leave VALUE out to be prompted"
            )
        else:
            value = words[i + 1]
        items.append((k.name, value))
    return items


@app.command(
    short_help="Remove a stored value: the key takes its default again.",
    cls=Command,
    epilog=examples("filamentctl config unset sensor.read_interval"),
)
def unset(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(metavar="KEY", parser=config_key, help="The key to return to its default."),
    ],
    quiet: bool = quiet_option(),
) -> None:
    """Remove a stored value, so the key takes its default again: in the running service's
    configuration when one runs (applied at once), else in the stored one."""
    with _user_errors():
        with _running_service(ctx) as client:
            if client is not None:
                reply = client.call("config.set", {"unset": [key]})
                if reply.get("unset"):
                    _say_changed(reply, quiet)
                else:
                    say(quiet, f"{key} was not set in {_which(reply)}")
                return
        paths, env = _context(writes=True)
        from filamentctl.store.settings import unset_value

        removed = unset_value(paths, env, key)
    if key not in schema.SCHEMA:
        say(quiet, f"removed the unknown key {key}")
        return
    default = _shown(key, schema.SCHEMA[key].default, False)
    if removed:
        say(quiet, f"{key} unset (default: {default}) in {paths.config_db}")
    else:
        say(quiet, f"{key} was not set (default: {default})")


@app.command(
    short_help="Where the configuration, key file, state and socket are.",
    epilog=examples("filamentctl config path", "filamentctl config path --json | jq -r .key_file"),
)
def path(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Where the configuration database, key file, state and socket are, and which key is used.

    The key source is env (FILAMENTCTL_CONFIG_KEY), vault (with the secret's path and VAULT_ADDR)
    or file (the key file), in that order of priority; never the key itself. --json adds
    "key_source", "key_location", "vault_addr" (null when none) and "key_error".
    """
    paths, env = _context()
    places: dict[str, Any] = {
        "config_db": str(paths.config_db),
        "key_file": str(paths.key_file),
        "state_dir": str(paths.state_dir),
        "socket": str(paths.socket),
    }
    from filamentctl.store.config_files import key_origin

    with _warnings_on_stderr():
        origin = key_origin(paths, env)
    key, problem = origin.where, origin.problem
    places.update(key)
    places["key_error"] = problem
    if as_json:
        typer.echo(json.dumps(places))
        return
    for name in ("config_db", "key_file", "state_dir", "socket"):
        typer.echo(f"{name.replace('_', ' ')}: {places[name]}")
    if problem is not None:
        typer.echo(f"key source: unusable ({problem})")
    elif key["key_source"] is None:
        typer.echo("key source: none yet (`filamentctl config init` creates a key file)")
    elif key["key_source"] == "vault":
        typer.echo(f"key source: vault ({key['key_location']} at {key['vault_addr']})")
    else:
        typer.echo(f"key source: {key['key_source']} ({key['key_location']})")


# -- live reload ---------------------------------------------------------------------------------


def _reload_service(ctx: typer.Context, quiet: bool = False) -> None:
    """Ask a running service to apply the stored configuration now (nothing to do if none runs).

    The service reads the store itself: no value, let alone a secret, crosses the socket.
    """
    from filamentctl import protocol
    from filamentctl.cli.common import ctx_of
    from filamentctl.client import Client, ServiceError
    from filamentctl.errors import ServiceNotRunning

    try:
        with Client.connect(ctx_of(ctx).socket, timeout=10.0) as client:
            result = client.call("config.reload")
    except ServiceNotRunning:
        return
    except ServiceError as exc:
        if exc.code == protocol.UNKNOWN_OP:
            typer.echo("note: the running service cannot reload; restart it to apply", err=True)
        else:
            typer.echo(f"warning: the running service did not apply it: {exc}", err=True)
        return
    except UserError as exc:
        typer.echo(f"warning: could not reach the running service to apply it: {exc}", err=True)
        return
    _say_reloaded(result, quiet)


def _say_reloaded(result: object, quiet: bool) -> None:
    """What a running service did with a reload: applied, waiting for a restart, refused."""
    if not isinstance(result, dict):
        return
    if result.get("applied"):
        say(quiet, "applied by the running service")
    restart = result.get("restart_required") or []
    if restart:
        typer.echo(
            f"note: restart the service to apply {', '.join(restart)} "
            "(systemctl restart filamentctl)",
            err=True,
        )
    for problem in result.get("errors") or []:
        typer.echo(f"warning: the running service could not apply {problem}", err=True)


# -- export / import / edit / validate / rekey ---------------------------------------------------


@app.command(
    short_help="Write the configuration as TOML (secrets redacted).",
    epilog=examples(
        "filamentctl config export",
        "filamentctl config export --all -o box.toml",
    ),
)
def export(
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Write secrets in clear (default: redacted).")
    ] = False,
    all_keys: Annotated[
        bool, typer.Option("--all", help="Every key with its effective value, not just stored.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file (created 0600) instead of stdout.",
        ),
    ] = None,
) -> None:
    """Write the stored configuration as TOML (secrets redacted unless --reveal).

    The file can be read back with `config import`; redacted secrets are then left as stored.
    """
    paths, env = _context()
    with _user_errors():
        from filamentctl.store.config_files import export_config, write_private

        exported = export_config(paths, env, all_keys=all_keys, reveal=reveal)
        if output is None:
            sys.stdout.write(exported.text)
        else:
            write_private(output, exported.text)
    if output is not None:
        typer.echo(f"wrote {exported.count} keys to {output}", err=True)


@app.command(
    "import",
    short_help="Import the seed's config.yaml (+ .env), or a TOML/JSON file of keys.",
    cls=Command,
    epilog=examples(
        "filamentctl config import config.yaml --env .env --dry-run",
        "filamentctl config import box.toml",
    ),
)
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="config.yaml of filamentbox v1/v2, or a TOML/JSON file of keys."
        ),
    ],
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env",
            metavar="FILE",
            help="The seed's .env (INFLUXDB_HOST=..., ...); overrides FILE.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be imported; change nothing.")
    ] = False,
) -> None:
    """Import settings: the seed's config.yaml (+ .env), v2-style dotted keys, or an export.

    Every key is mapped to ours and the report lists what could not be mapped. An invalid value
    exits 2 and nothing is stored.
    """
    paths, env = _context(writes=True)
    with _user_errors():
        from filamentctl.store.config_files import import_file

        report = import_file(paths, env, file, env_file, dry_run=dry_run)
    _show_import(report, file, dry_run)
    if not dry_run and report.result.values:
        _reload_service(ctx)


def _show_import(report: ImportReport, file: Path, dry_run: bool) -> None:
    from filamentctl.core import config_import

    result = report.result
    verb = "would import" if dry_run else "imported"
    typer.echo(f"{verb} {len(result.values)} keys from {file}:")
    for line in config_import.describe(result):
        typer.echo(line)
    if report.adjusted:
        typer.echo(f"adjusted to the nearest valid value ({len(report.adjusted)}):")
        for change in report.adjusted:
            typer.echo(f"  {change}")
    for name in result.kept_secrets:
        typer.echo(f"  {name}: redacted in the file, left as stored")
    if result.dropped:
        typer.echo(f"not imported ({len(result.dropped)}):")
        for item in result.dropped:
            typer.echo(f"  {item.source}: {item.reason}")


def _run_editor(path: Path) -> None:
    import shlex
    import subprocess

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        code = subprocess.call([*shlex.split(editor), str(path)])
    except FileNotFoundError:
        raise UsageError(f"editor {editor!r} not found; set EDITOR") from None
    if code != 0:
        raise UserError(f"the editor exited with status {code}; nothing changed")


def _edit_until_valid(stored: Mapping[str, Any]) -> dict[str, Any] | None:
    """Open the configuration in the editor until what is saved is valid: the values to store,
    or None when the file was saved unchanged. ConfigError when the user gives up."""
    from filamentctl.store.config_files import edit_text, parse_edited, scratch_file

    original = edit_text(stored)
    with scratch_file(original) as tmp:
        while True:
            _run_editor(tmp)
            text = tmp.read_text(encoding="utf-8")
            if text == original:
                return None
            values, problems = parse_edited(text, stored)
            if not problems:
                return values
            typer.echo("the configuration has problems:", err=True)
            for problem in problems:
                typer.echo(f"  {problem}", err=True)
            if not typer.confirm("edit again?", default=True, err=True):
                raise ConfigError("not saved; nothing changed")


@app.command(
    short_help="Edit the configuration as TOML in $EDITOR, validated on save.",
    epilog=examples("filamentctl config edit", "EDITOR=nano filamentctl config edit"),
)
def edit(ctx: typer.Context) -> None:
    """Edit the configuration as TOML in $EDITOR; it is validated when you save.

    Invalid files show the problems and offer to edit again; nothing changes until the file is
    valid. The temporary file is private (0600) and removed afterwards.
    """
    paths, env = _context(writes=True)
    with _user_errors():
        from filamentctl.store.settings import replace_stored, stored_values

        values = _edit_until_valid(stored_values(paths, env))
        if values is None:
            typer.echo("no changes")
            return
        changed, removed = replace_stored(paths, env, values)
    if not changed and not removed:
        typer.echo("no changes")
        return
    for name in changed:
        typer.echo(f"{name} = {_shown(name, values[name], False)}")
    for name in removed:
        typer.echo(f"{name} unset")
    _reload_service(ctx)


@app.command(
    short_help="Check the configuration or a TOML file; exit 2 if invalid.",
    epilog=examples("filamentctl config validate", "filamentctl config validate box.toml"),
)
def validate(
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="FILE",
            help="A TOML file to check (as `config edit` would); default: the store.",
        ),
    ] = None,
) -> None:
    """Check the configuration (or a TOML file): values, cross-field rules. Exit 2 if invalid."""
    paths, env = _context()
    with _user_errors():
        if file is None:
            from filamentctl.store.settings import load_settings

            settings = load_settings(paths, env, check_rules=False)
            problems = schema.validate(settings, deep=True)
            where = str(paths.config_db) if settings.source == "store" else "the defaults"
        else:
            from filamentctl.store.config_files import file_problems

            problems, where = file_problems(file), str(file)
    if problems:
        for problem in problems:
            print_error(f"{where}: {problem}")
        raise typer.Exit(EXIT_USAGE)
    typer.echo(f"{where}: valid")


@app.command(
    short_help="Re-encrypt the configuration with a new key.",
    epilog=examples(
        "filamentctl config rekey",
        "openssl rand -hex 32 | filamentctl config rekey --new-key -",
    ),
)
def rekey(
    new_key: Annotated[
        str | None,
        typer.Option(
            "--new-key",
            metavar="-",
            help="- reads the new key from stdin (needed when FILAMENTCTL_CONFIG_KEY holds it); "
            "default: a new random key.",
        ),
    ] = None,
) -> None:
    """Re-encrypt the configuration with a new key (kept where the current one is).

    The old file is kept until the new one has been decrypted and compared; on any failure the
    old key and file are put back.
    """
    paths, env = _context(writes=True)
    with _user_errors():
        text: str | None = None
        if new_key is not None:
            if new_key != "-":
                raise UsageError(
                    "keys are not accepted on the command line; use --new-key - and give "
                    "it on stdin"
                )
            text = _read_stdin()
        from filamentctl.store.settings import rekey as do_rekey

        result = do_rekey(paths, env, text)
    typer.echo(f"re-encrypted {result.keys_copied} keys with a new key")
    if result.kind == "file":
        typer.echo(f"the new key is in {paths.key_file}; replace your backup of the old one")
    elif result.kind == "vault":
        typer.echo(f"the new key is stored in {result.key_source} (a new version)")
    else:
        typer.echo("now set FILAMENTCTL_CONFIG_KEY to the new key wherever the service runs")
