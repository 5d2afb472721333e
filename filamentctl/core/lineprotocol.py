"""InfluxDB line protocol for readings, as accepted by InfluxDB 1.x/2.x and VictoriaMetrics.

One line per reading::

    environment,box=dryer\\ 1,site=shop temperature_c=21.5,...,humidity=40.2 1795459598000000000

The measurement comes from ``data.measurement``, the tags from ``data.tags`` (sorted by key, the
order InfluxDB stores them in), the fields are exactly :meth:`Reading.fields` written as floats,
and the timestamp is the sample time in nanoseconds.

Escaping: commas, spaces and equals signs are escaped with a backslash in the measurement, tag
keys and tag values. Backslashes are the one character the servers disagree on: InfluxDB 1.x keeps
``\\\\`` as two characters while VictoriaMetrics reads it as one. A backslash is therefore accepted
only where neither server treats it as an escape (followed by an ordinary character); a trailing
backslash, a backslash before a space, comma, equals sign or another backslash, and newlines are
refused when the encoder is built (see :func:`problems`), so a bad tag is a configuration error
and never a batch the server rejects.

Pure: no I/O. The measurement+tags prefix is built once; :meth:`LineEncoder.encode` turns a batch
into one ``bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from filamentctl.core import psychro
from filamentctl.core.reading import Reading

DEFAULT_MEASUREMENT = "environment"

# Characters escaped with a backslash in measurement names, tag keys and tag values.
_ESCAPED = (",", " ", "=")
# A backslash followed by one of these (or at the end) is read differently by the servers.
_AMBIGUOUS_AFTER_BACKSLASH = frozenset(", =\\")
# The field names of Reading.fields(), in its order (the fast path of encode() relies on it).
_FIELDS_WITHOUT_PRESSURE = (
    "temperature_c",
    "temperature_f",
    "humidity",
    "dew_point_c",
    "absolute_humidity_g_m3",
)
_FIELDS_WITH_PRESSURE = (*_FIELDS_WITHOUT_PRESSURE, "pressure_hpa")
# InfluxDB 1.x drops points whose tag key is "time" ("invalid tag key").
_RESERVED_TAG_KEYS = frozenset({"time"})


class LineProtocolError(ValueError):
    """A measurement name or tag that cannot be written as line protocol (message is one line)."""


def _name_problem(value: str, what: str) -> str | None:
    if not value:
        return f"{what} is empty"
    if "\n" in value or "\r" in value:
        return f"{what} {value!r} contains a line break"
    for i, ch in enumerate(value):
        if ch == "\\" and (i + 1 == len(value) or value[i + 1] in _AMBIGUOUS_AFTER_BACKSLASH):
            return (
                f"{what} {value!r} has a backslash at the end or before a space, comma, equals "
                "sign or backslash, which InfluxDB and VictoriaMetrics read differently"
            )
    return None


def problems(measurement: str, tags: Mapping[str, str]) -> list[str]:
    """Every reason ``measurement``/``tags`` cannot be encoded; empty when they are fine.

    Usable by the config schema to validate ``data.measurement`` and ``data.tags`` up front.
    """
    found: list[str] = []
    problem = _name_problem(measurement, "data.measurement")
    if problem:
        found.append(problem)
    elif measurement.startswith("#"):
        found.append(f"data.measurement {measurement!r} starts with '#', which marks a comment")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            found.append(f"data.tags entry {key!r}={value!r} is not text")
            continue
        for problem in (
            _name_problem(key, "data.tags key"),
            _name_problem(value, f"data.tags value of {key!r}"),
        ):
            if problem:
                found.append(problem)
        if key in _RESERVED_TAG_KEYS:
            found.append(f"data.tags key {key!r} is reserved by InfluxDB")
    return found


def escape(value: str) -> str:
    """Escape a measurement name, tag key or tag value (commas, spaces, equals signs)."""
    for ch in _ESCAPED:
        if ch in value:
            value = value.replace(ch, "\\" + ch)
    return value


class LineEncoder:
    """Encodes readings for one measurement and tag set.

    Raises :class:`LineProtocolError` at construction when the measurement or a tag cannot be
    encoded. Non-finite field values (NaN, ±inf) have no line-protocol form: they are left out of
    the line, and a reading left with no field at all is skipped.
    """

    __slots__ = ("measurement", "tags", "_prefix", "_templates")

    def __init__(
        self, measurement: str = DEFAULT_MEASUREMENT, tags: Mapping[str, str] | None = None
    ) -> None:
        tags = dict(tags or {})
        found = problems(measurement, tags)
        if found:
            raise LineProtocolError("; ".join(found))
        self.measurement = measurement
        self.tags = tags
        tag_part = "".join(f",{escape(k)}={escape(tags[k])}" for k in sorted(tags))
        # Everything before the fields, including the separating space: built once per sink.
        self._prefix = f"{escape(measurement)}{tag_part} "
        # One %-template per set of field names (with and without pressure): formatting a tuple
        # into a prepared template is the cheapest way through a backlog of a million readings.
        self._templates: dict[tuple[str, ...], str] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LineEncoder:
        """Build from ``data.measurement`` and ``data.tags`` (both optional)."""
        measurement = settings.get("data.measurement") or DEFAULT_MEASUREMENT
        tags = settings.get("data.tags") or {}
        return cls(str(measurement), tags)

    @property
    def prefix(self) -> str:
        """The escaped ``measurement,tags `` part shared by every line."""
        return self._prefix

    def line(self, reading: Reading) -> str:
        """One reading as a line, with its trailing newline; "" when no field is finite."""
        return self.encode((reading,)).decode()

    def _template(self, names: tuple[str, ...]) -> str:
        template = self._templates.get(names)
        if template is None:
            fields = ",".join(f"{name}=%.3f" for name in names)
            # "%" in a tag would be read as a conversion: double it so it stays literal.
            template = self._prefix.replace("%", "%%") + fields + " %d\n"
            self._templates[names] = template
        return template

    def encode(self, readings: Iterable[Reading]) -> bytes:
        """A batch as one UTF-8 body, one line per reading in the given order.

        Hot path (a backlog drain encodes a million readings): the derived values come from the
        same :func:`psychro.derived` as :meth:`Reading.fields`, formatted with ``%.3f`` (C-speed
        rounding to the same 3 decimals) into a prepared template. Anything unusual (a
        non-finite value, an arithmetic error) goes through :meth:`Reading.fields` itself.
        """
        isfinite = math.isfinite
        derived = psychro.derived
        with_pressure = self._template(_FIELDS_WITH_PRESSURE)
        without_pressure = self._template(_FIELDS_WITHOUT_PRESSURE)
        lines: list[str] = []
        append = lines.append
        for reading in readings:
            t = reading.temperature_c
            rh = reading.humidity
            p = reading.pressure_hpa
            try:
                dew, absolute = derived(t, rh)
                values: tuple[float, ...] = (t, t * 1.8 + 32.0, rh, dew, absolute)
                if p is not None:
                    values = (*values, p)
                fast = isfinite(sum(values))
            except (ArithmeticError, ValueError):
                fast = False
            if fast:
                template = without_pressure if p is None else with_pressure
                append(template % (*values, reading.time_ns))
                continue
            fields = {k: v for k, v in reading.fields().items() if isfinite(v)}
            if fields:
                append(self._template(tuple(fields)) % (*fields.values(), reading.time_ns))
        return "".join(lines).encode()
