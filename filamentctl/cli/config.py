"""``filamentctl config``: create, show and change the encrypted configuration.

A Typer sub-app; the root mounts it with ``root.add_typer(config.app, name="config")``. Each
command parses, calls one function of :mod:`filamentctl.store.settings`, and renders. Errors are
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
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from filamentctl import paths as _paths
from filamentctl.core import schema
from filamentctl.errors import EXIT_FAILED, EXIT_PERMISSION, UsageError, UserError

MASK = "••••"

app = typer.Typer(
    help="The encrypted configuration: init, list, get, set, unset, path.",
    no_args_is_help=True,
)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and the matching exit code."""
    try:
        yield
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except PermissionError as exc:
        typer.echo(f"error: {exc.strerror}: {exc.filename}; check the file's owner", err=True)
        raise typer.Exit(EXIT_PERMISSION) from None
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _context() -> tuple[_paths.Paths, Mapping[str, str]]:
    env = os.environ
    return _paths.resolve(env), env


def _shown(name: str, value: Any, reveal: bool) -> str:
    if schema.SCHEMA[name].secret and value and not reveal:
        return MASK
    return schema.format_value(name, value)


def _visible(name: str, database_type: str, show_all: bool) -> bool:
    """Hide the keys of database backends that are not selected (unless --all)."""
    parts = name.split(".")
    if show_all or parts[0] != "database" or len(parts) < 3:
        return True
    return parts[1] == database_type


def _warn_rules(values: Mapping[str, Any]) -> None:
    for problem in schema.validate(values):
        typer.echo(f"warning: {problem}", err=True)


@app.command()
def init() -> None:
    """Create the encrypted configuration and its key.

    A new random key goes into a 0600 key file apart from the database, unless
    FILAMENTCTL_CONFIG_KEY is set (then that key is used) or a key file already exists.
    """
    paths, env = _context()
    with _user_errors():
        from filamentctl.store.settings import init_config

        result = init_config(paths, env)
    typer.echo(f"created the encrypted configuration at {result.config_db}")
    if result.key_file_written:
        typer.echo(
            f"new random key written to {paths.key_file} (mode 0600); back it up: without it "
            "the configuration cannot be read"
        )
    else:
        typer.echo(f"encrypted with the key from {result.key_source}")


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show secrets in clear.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include the keys of unselected database backends.")
    ] = False,
) -> None:
    """Every key with its effective value, where it comes from (default, stored, env), and help.

    With --json: {"key": {"value", "source", "default", "type", "secret", "masked", "help"}};
    a masked secret has "value": null and "masked": true.
    """
    paths, env = _context()
    with _user_errors():
        from filamentctl.store.settings import load_settings

        settings = load_settings(paths, env, check_rules=False)
    names = [n for n in settings if _visible(n, settings["database.type"], show_all)]
    if as_json:
        doc: dict[str, Any] = {}
        for name in names:
            k, value = schema.SCHEMA[name], settings[name]
            masked = k.secret and bool(value) and not reveal
            doc[name] = {
                "value": None if masked else value,
                "source": settings.sources[name],
                "default": None if k.secret and k.default and not reveal else k.default,
                "type": k.type,
                "secret": k.secret,
                "masked": masked,
                "help": k.help,
            }
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("key", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_column("source", no_wrap=True)
        table.add_column("help", overflow="fold")
        for name in names:
            origin = settings.sources[name]
            table.add_row(
                name,
                _shown(name, settings[name], reveal),
                origin,
                schema.SCHEMA[name].help,
                style=None if origin == "default" else "bold",
            )
        Console(soft_wrap=False).print(table)
        hidden = len(settings) - len(names)
        if hidden:
            typer.echo(f"({hidden} keys of other database backends hidden; --all shows them)")
        if settings.source == "defaults":
            typer.echo(
                "(no configuration yet: showing defaults; `filamentctl config init` creates it)",
                err=True,
            )
    _warn_rules(settings)


@app.command()
def get(
    key: Annotated[str, typer.Argument(help="The key, e.g. sensor.read_interval.")],
    as_json: Annotated[
        bool, typer.Option("--json", help='{"key", "value", "source", ...} on stdout.')
    ] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show a secret in clear.")] = False,
) -> None:
    """Print one key's effective value (plain text, for scripts)."""
    paths, env = _context()
    with _user_errors():
        k = schema.key(key)
        from filamentctl.store.settings import load_settings

        settings = load_settings(paths, env, check_rules=False)
    value = settings[k.name]
    masked = k.secret and bool(value) and not reveal
    if as_json:
        doc = {
            "key": k.name,
            "value": None if masked else value,
            "source": settings.sources[k.name],
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


@app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="The key, e.g. sensor.read_interval.")],
    value: Annotated[
        str | None,
        typer.Argument(
            help="The new value; - reads it from stdin. Secrets: - or omit it to be prompted."
        ),
    ] = None,
) -> None:
    """Validate and store one value (nothing changes when it is invalid)."""
    paths, env = _context()
    with _user_errors():
        k = schema.key(key)
        if value is None:
            if not k.secret:
                raise UsageError(f"missing VALUE for {k.name}; give it, or - to read it from stdin")
            value = typer.prompt(k.name, hide_input=True, confirmation_prompt=True)
        elif value == "-":
            value = _read_stdin()
        elif k.secret:
            raise UsageError(
                f"{k.name} is a secret and is not accepted on the command line (shell history, "
                f"ps); use `filamentctl config set {k.name} -` with the value on stdin, or "
                "leave VALUE out to be prompted"
            )
        from filamentctl.store.settings import set_value

        stored = set_value(paths, env, k.name, value)
    typer.echo(f"{k.name} = {_shown(k.name, stored, False)}")
    if k.env in env:
        typer.echo(f"note: the environment variable {k.env} overrides this stored value", err=True)


@app.command()
def unset(
    key: Annotated[str, typer.Argument(help="The key to return to its default.")],
) -> None:
    """Remove a stored value, so the key takes its default again."""
    paths, env = _context()
    with _user_errors():
        from filamentctl.store.settings import unset_value

        removed = unset_value(paths, env, key)
    if key not in schema.SCHEMA:
        typer.echo(f"removed the unknown key {key}")
        return
    default = _shown(key, schema.SCHEMA[key].default, False)
    if removed:
        typer.echo(f"{key} unset (default: {default})")
    else:
        typer.echo(f"{key} was not set (default: {default})")


@app.command()
def path(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Where the configuration database, key file, state and socket are."""
    paths, _ = _context()
    places = {
        "config_db": str(paths.config_db),
        "key_file": str(paths.key_file),
        "state_dir": str(paths.state_dir),
        "socket": str(paths.socket),
    }
    if as_json:
        typer.echo(json.dumps(places))
    else:
        for name, where in places.items():
            typer.echo(f"{name.replace('_', ' ')}: {where}")
