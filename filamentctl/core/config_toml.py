"""TOML for the configuration: a small emitter for our flat value types, and a reader.

``config export`` and ``config edit`` write the settings as TOML, one table per key prefix
(``[sensor]``, ``[database.influxdb_v1]``), so a file reads like the dotted key names. Values are
the schema's types only: bool, int, float, str and the JSON-object tags (an inline table of
strings). Reading uses the standard library's ``tomllib`` and flattens tables back to dotted keys,
stopping at keys whose schema type is ``json_object`` (their inline table *is* the value).

Pure: text in, text out. :func:`loads` raises :class:`~filamentctl.errors.ConfigError` with the
line and column of a syntax error; it does not check key names or values (the caller does).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from filamentctl.core import schema
from filamentctl.errors import ConfigError

# What a redacted secret looks like in an exported or edited file. Reading it back means
# "keep the stored secret as it is", never "set the secret to this text".
REDACTED = "<secret: redacted>"

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def quote(text: str) -> str:
    """A TOML basic string for ``text`` (control characters escaped, Unicode kept)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(part: str) -> str:
    return part if _BARE_KEY.fullmatch(part) else quote(part)


def value_text(value: Any) -> str:
    """One value as TOML. Raises ValueError for types the configuration never holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("configuration values are finite numbers")
        text = repr(value)
        # repr gives "5.0", "1e-05", "1e+16": TOML accepts these forms of a float.
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(str(k))} = {value_text(v)}" for k, v in sorted(value.items()))
        return "{ " + items + " }" if items else "{}"
    raise ValueError(f"cannot write a {type(value).__name__} as a configuration value")


def dumps(
    values: Mapping[str, Any],
    *,
    header: Iterable[str] = (),
    commented: Mapping[str, Any] | None = None,
    with_help: bool = False,
) -> str:
    """The dotted ``values`` as TOML text, grouped in one table per key prefix.

    ``commented`` keys are written as comment lines (``# key = value``), e.g. defaults shown in
    ``config edit`` for the user to uncomment. ``with_help`` adds each schema key's help line
    above it. ``header`` lines become leading comments.
    """
    commented = commented or {}
    rows: dict[str, list[str]] = {}
    names = sorted(set(values) | set(commented), key=_order)
    for name in names:
        table, _, leaf = name.rpartition(".")
        lines = rows.setdefault(table, [])
        k = schema.SCHEMA.get(name)
        if with_help and k is not None and k.help:
            lines.append(f"# {k.help}")
        if name in values:
            lines.append(f"{_key(leaf)} = {value_text(values[name])}")
        else:
            lines.append(f"# {_key(leaf)} = {value_text(commented[name])}")
    out = [f"# {line}" if line else "#" for line in header]
    for table, lines in rows.items():
        if out:
            out.append("")
        if table:
            out.append("[" + ".".join(_key(p) for p in table.split(".")) + "]")
        out.extend(lines)
    return "\n".join(out) + "\n"


_POSITION = {name: i for i, name in enumerate(schema.SCHEMA)}


def _order(name: str) -> tuple[bool, int, str]:
    """Top-level keys first (TOML needs them before any table), then schema order, unknown last."""
    return ("." in name, _POSITION.get(name, len(_POSITION)), name)


def loads(text: str) -> dict[str, Any]:
    """Parse TOML text into ``{dotted key: value}``.

    Tables nest into dotted names; a table under a ``json_object`` key stays a dict. Arrays and
    dates are returned as they are (the schema check refuses them later with the key's name).
    Raises ConfigError on a TOML syntax error (the message names the line and column).
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    out: dict[str, Any] = {}
    _flatten(doc, "", out)
    return out


def _flatten(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in node.items():
        name = f"{prefix}{k}"
        known = schema.SCHEMA.get(name)
        if isinstance(v, dict) and not (known is not None and known.type == "json_object"):
            _flatten(v, name + ".", out)
        else:
            out[name] = v
