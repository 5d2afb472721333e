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
into one ``bytes``. A backlog drain's batches (:meth:`LineEncoder.encode_rows`) go through the
compiled ``_lineenc`` module when it was built (``setup.py``; optional): the same bytes, checked
against the Python path at import (:data:`COMPILED` says whether it is in use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat, starmap
from math import isfinite
from operator import add, attrgetter, mul
from typing import Any

from filamentctl.core import psychro
from filamentctl.core.reading import FIELDS, Reading, ReadingRow

_CompiledEncode = Callable[[tuple[bytes, ...], Sequence[ReadingRow]], bytes | None]


def _load_compiled() -> _CompiledEncode | None:
    """The compiled encoder's ``encode``, or None where setup.py could not build it (no C compiler):
    the Python path then writes the same bytes, more slowly."""
    try:
        from filamentctl.core._lineenc import encode
    except ImportError:
        return None
    return encode


_compiled_encode = _load_compiled()

DEFAULT_MEASUREMENT = "environment"

# Characters escaped with a backslash in measurement names, tag keys and tag values.
_ESCAPED = (",", " ", "=")
# A backslash followed by one of these (or at the end) is read differently by the servers.
_AMBIGUOUS_AFTER_BACKSLASH = frozenset(", =\\")
# The field names of Reading.fields(), in its order (the fast path of encode() relies on it).
_FIELDS_WITH_PRESSURE = FIELDS
_FIELDS_WITHOUT_PRESSURE = FIELDS[:-1]
_TIME_NS = attrgetter("time_ns")
_TEMPERATURE = attrgetter("temperature_c")
_HUMIDITY = attrgetter("humidity")
_PRESSURE = attrgetter("pressure_hpa")
_ROW_LENGTH = 5  # a ReadingRow: (time_ns, seq, temperature_c, humidity, pressure_hpa)
# InfluxDB 1.x drops points whose tag key is "time" ("invalid tag key").
_RESERVED_TAG_KEYS = frozenset({"time"})


class LineProtocolError(ValueError):
    """A measurement name or tag that cannot be written as line protocol (message is one line)."""


def _name_problem(value: str, what: str) -> str | None:
    if not value:
        return f"{what} is empty"
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate (e.g. from undecodable bytes)
        return f"{what} {value!r} is not valid UTF-8 text"
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

    The config schema validates ``data.measurement`` and ``data.tags`` with the same two
    checks (:func:`measurement_problems`, :func:`tag_problems`), so a value ``config set``
    accepts is one the service can start with.
    """
    return measurement_problems(measurement) + tag_problems(tags)


def measurement_problems(measurement: str) -> list[str]:
    """Why ``measurement`` cannot be a line-protocol measurement name (empty: it can)."""
    problem = _name_problem(measurement, "data.measurement")
    if problem:
        return [problem]
    if measurement.startswith("#"):
        return [f"data.measurement {measurement!r} starts with '#', which marks a comment"]
    return []


def tag_problems(tags: Mapping[str, Any]) -> list[str]:
    """Why ``tags`` cannot be written as line-protocol tags (empty: they can)."""
    found: list[str] = []
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

    __slots__ = ("measurement", "tags", "_prefix", "_templates", "_compiled", "_parts")

    def __init__(
        self,
        measurement: str = DEFAULT_MEASUREMENT,
        tags: Mapping[str, str] | None = None,
        *,
        compiled: bool = True,
    ) -> None:
        """``compiled=False`` keeps :meth:`encode_rows` on the Python path (tests, benchmarks)."""
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
        self._compiled = _compiled_encode if compiled and COMPILED else None
        # What the compiled encoder writes around the values: without and with pressure.
        self._parts = tuple(
            (
                (self._prefix + names[0] + "=").encode(),
                *(f",{name}=".encode() for name in names[1:]),
                b" ",
            )
            for names in (_FIELDS_WITHOUT_PRESSURE, _FIELDS_WITH_PRESSURE)
        )

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

        Hot path (a backlog drain encodes a million readings): see :meth:`encode_rows`, which
        this shares.
        """
        batch = readings if isinstance(readings, Sequence) else list(readings)
        if not batch:
            return b""
        body = self._encode_columns(
            list(map(_TIME_NS, batch)),
            list(map(_TEMPERATURE, batch)),
            list(map(_HUMIDITY, batch)),
            list(map(_PRESSURE, batch)),
        )
        return self._encode_each(batch) if body is None else body

    def encode_rows(self, rows: Sequence[ReadingRow]) -> bytes:
        """:meth:`encode` for readings given as :data:`ReadingRow` tuples; the same bytes.

        The backlog drain's path: it skips building a :class:`Reading` per row, and takes the
        compiled encoder when there is one; a batch it calls unusual (see ``_lineenc.c``: a
        non-finite value, pressure on only some rows...) comes back None and goes the Python way.
        """
        if not rows:
            return b""
        if self._compiled is not None and len(rows[0]) == _ROW_LENGTH:
            body = self._compiled(self._parts[rows[0][4] is not None], rows)
            if body is not None:
                return body
        times, _seqs, temperatures, humidities, pressures = zip(*rows, strict=True)
        body = self._encode_columns(times, temperatures, humidities, pressures)
        return self._encode_each(starmap(Reading, rows)) if body is None else body

    def _encode_columns(
        self,
        times: Sequence[int],
        temperatures: Sequence[float],
        humidities: Sequence[float],
        pressures: Sequence[float | None],
    ) -> bytes | None:
        """The batch (given column by column) when every field of every reading is finite.

        None when anything is unusual (a non-finite or impossible value, pressure on only some
        readings): :meth:`_encode_each` then handles the batch reading by reading. The derived
        values come from :func:`psychro.derived_columns` (the same numbers as
        :func:`psychro.derived`), formatted with ``%.3f`` (C-speed rounding to the same 3
        decimals as :meth:`Reading.fields`) into a prepared template, one ``%`` per line.
        """
        n = len(temperatures)
        with_pressure = pressures[0] is not None
        if (None in pressures) if with_pressure else (pressures.count(None) != n):
            return None
        try:
            fahrenheit = list(map(add, map(mul, temperatures, repeat(1.8)), repeat(32.0)))
            dew, absolute = psychro.derived_columns(temperatures, humidities)
            columns: list[Sequence[Any]] = [temperatures, fahrenheit, humidities, dew, absolute]
            if with_pressure:
                columns.append(pressures)
            # A sum is finite only if every term is (inf/NaN propagate); a sum that overflows
            # merely sends the batch down the slow path, which writes the same lines.
            if not all(isfinite(sum(column)) for column in columns):
                return None
        except (ArithmeticError, ValueError, TypeError):
            return None
        template = self._template(
            _FIELDS_WITH_PRESSURE if with_pressure else _FIELDS_WITHOUT_PRESSURE
        )
        return "".join(map(template.__mod__, zip(*columns, times, strict=True))).encode()

    def _encode_each(self, readings: Iterable[Reading]) -> bytes:
        """Reading by reading, leaving out non-finite fields and skipping readings with none."""
        lines: list[str] = []
        for reading in readings:
            fields = {k: v for k, v in reading.fields().items() if isfinite(v)}
            if fields:
                lines.append(self._template(tuple(fields)) % (*fields.values(), reading.time_ns))
        return "".join(lines).encode()


# Values that exercise every branch of the compiled "%.3f": ties at the third decimal (exact and
# nearly), negatives rounding to zero, signed zero, integers, and values too large for its fast
# path; with typical readings around them, with and without pressure.
# The last six are temperatures whose Fahrenheit value a fused multiply-add (t * 1.8 + 32.0 in one
# rounding) writes differently: the one contraction the derived values' formulas allow.
_PROBE_VALUES = (
    21.3456,
    0.0625,
    2.0625,
    1.0005,
    20.0005,
    -0.0001,
    -0.0005,
    -0.0,
    0.0,
    40,
    -40.0,
    85.0,
    999999.9995,
    1e6,
    123456789.0125,
    0.01,
    99.9994999,
    35.12345678901234,
    1e-9,
    -17.5,
    -32.6575,
    -14.500277777777777,
    68.81916666666666,
    65.60305555555556,
    34.4375,
    -37.0325,
)


def _compiled_agrees() -> bool:
    """Whether the compiled encoder writes, for the probe values, the Python path's bytes.

    It must (the same operations, the same C library); a build that fused multiply-adds or a C
    library that rounds otherwise would not, and is then left unused rather than trusted.
    """
    if _compiled_encode is None:
        return False
    try:
        return _probe(_compiled_encode)
    except Exception:  # e.g. a stale build with another calling convention: not trusted either
        return False


def _probe(compiled: _CompiledEncode) -> bool:
    encoder = LineEncoder("probe", {"k": "v %"}, compiled=False)
    values = _PROBE_VALUES
    rows: list[ReadingRow] = [
        (1_700_000_000_000_000_000 + i, i + 1, t, abs(h) % 100.0, None)
        for i, (t, h) in enumerate(zip(values, values[3:] + values[:3], strict=True))
    ]
    for batch in (rows, [(*row[:4], 1000.0 + row[2] % 50.0) for row in rows]):
        for row in batch:  # one at a time too: a row the Python path writes alone must agree
            expected = encoder.encode_rows([row])
            if expected and compiled(encoder._parts[row[4] is not None], [row]) not in (
                None,
                expected,
            ):
                return False
        expected = encoder.encode_rows(batch)
        if compiled(encoder._parts[batch[0][4] is not None], batch) != expected:
            return False
    return True


#: True when :meth:`LineEncoder.encode_rows` uses the compiled encoder (built and agreeing).
COMPILED = _compiled_agrees()
