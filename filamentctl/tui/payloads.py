"""What the service sent, made safe to show: the screen never crashes on odd data.

The wire payloads are plain JSON objects; a field that should be a number but is not (a string,
a list) becomes None here, which every formatter in :mod:`filamentctl.display` shows as "—".
"""

from __future__ import annotations

from typing import Any

_SECTIONS = ("reading", "sensor", "storage", "heater", "fan", "drying")
_TEXT_KEYS = frozenset({"time", "reason", "mode", "health", "last_error", "backend", "type"})
_NUMBER_SUFFIXES = ("_s", "_c", "_f", "_ns", "_hpa", "_g_m3", "humidity", "seq")


def clean_section(section: Any) -> dict[str, Any]:
    """One part of what the service sent: a dict whose numeric fields are numbers (a string or a
    wrong type becomes None); anything but a dict becomes ``{}``."""
    if not isinstance(section, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key in _TEXT_KEYS or isinstance(value, (dict, list, bool)) or value is None:
            out[key] = value
        elif isinstance(value, (int, float)):
            out[key] = value
        elif key.endswith(_NUMBER_SUFFIXES):
            out[key] = None  # a number field that is not a number
        else:
            out[key] = value
    return out


def clean_status(status: dict[str, Any]) -> dict[str, Any]:
    """A whole ``status`` document with each of its sections cleaned."""
    out = dict(status)
    for name in _SECTIONS:
        if name in out and out[name] is not None:
            out[name] = clean_section(out[name])
    return out
