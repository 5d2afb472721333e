"""Line protocol encoding: escaping, field set, timestamps, batches (pure, no servers)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filamentctl.core import psychro
from filamentctl.core.lineprotocol import LineEncoder, LineProtocolError, escape, problems
from filamentctl.core.reading import Reading

T0 = 1_795_459_598_123_456_789


def reading(seq: int = 1, pressure: float | None = None, **kw: float) -> Reading:
    values = {"temperature_c": 21.5, "humidity": 40.0, **kw}
    return Reading(T0 + seq, seq, values["temperature_c"], values["humidity"], pressure)


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not backslash-escaped (as InfluxDB's parser does)."""
    parts, current, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in ", =":
            current += text[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    return parts


def unescape(text: str) -> str:
    for ch in ", =":
        text = text.replace("\\" + ch, ch)
    return text


def parse(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """A small reference parser for one line: (measurement, tags, raw fields, timestamp)."""
    assert line.endswith("\n") and line.count("\n") == 1
    head, fields, stamp = split_unescaped(line[:-1], " ")
    measurement, *tag_parts = split_unescaped(head, ",")
    tags: dict[str, str] = {}
    for part in tag_parts:
        key, value = split_unescaped(part, "=")  # exactly one unescaped "=" per tag
        tags[unescape(key)] = unescape(value)
    field_map = dict(f.split("=", 1) for f in fields.split(","))
    return unescape(measurement), tags, field_map, int(stamp)


def test_line_has_measurement_sorted_tags_fields_and_ns_timestamp() -> None:
    enc = LineEncoder("environment", {"site": "shop", "box": "dryer"})
    line = enc.line(reading(seq=7))
    assert line.startswith("environment,box=dryer,site=shop temperature_c=21.500,")
    assert line.endswith(f" {T0 + 7}\n")


def test_fields_are_exactly_the_readings_fields_written_as_floats() -> None:
    r = Reading(T0, 1, 20.0, 50.0)
    _, _, fields, stamp = parse(LineEncoder().line(r))
    assert list(fields) == list(r.fields())
    assert {k: float(v) for k, v in fields.items()} == r.fields()
    # "20.000", never "20" (which InfluxDB would take as a float too, but VictoriaMetrics
    # and humans reading the wire should see one consistent type).
    assert fields["temperature_c"] == "20.000"
    assert stamp == T0


def test_pressure_is_written_only_when_the_sensor_has_it() -> None:
    enc = LineEncoder()
    _, _, without, _ = parse(enc.line(reading(pressure=None)))
    _, _, with_pressure, _ = parse(enc.line(reading(pressure=1013.25)))
    assert "pressure_hpa" not in without
    assert with_pressure["pressure_hpa"] == "1013.250"


def test_default_measurement_is_environment_without_tags() -> None:
    enc = LineEncoder.from_settings({})
    assert enc.prefix == "environment "


def test_commas_spaces_and_equals_signs_are_escaped_everywhere() -> None:
    enc = LineEncoder("my env,x=1", {"box name": "dryer 1,a=b", "k=v": "x"})
    assert enc.prefix == r"my\ env\,x\=1,box\ name=dryer\ 1\,a\=b,k\=v=x "
    measurement, tags, _, _ = parse(enc.line(reading()))
    assert measurement == "my env,x=1"
    assert tags == {"box name": "dryer 1,a=b", "k=v": "x"}


def test_backslash_before_an_ordinary_character_is_kept_literally() -> None:
    enc = LineEncoder("environment", {"path": r"C:\box"})
    assert enc.prefix == "environment,path=C:\\box "


def test_percent_in_a_tag_is_not_a_format_directive() -> None:
    enc = LineEncoder("environment", {"fill": "100%d"})
    assert enc.line(reading()).startswith("environment,fill=100%d temperature_c=")


@pytest.mark.parametrize(
    ("measurement", "tags", "complaint"),
    [
        ("environment", {"box": "a\nb"}, "line break"),
        ("env\r", {}, "line break"),
        ("environment", {"box": "ends\\"}, "backslash"),
        ("environment", {"box": "a\\ b"}, "backslash"),
        ("environment", {"box": "a\\,b"}, "backslash"),
        ("environment", {"box": "a\\\\b"}, "backslash"),
        ("", {}, "empty"),
        ("environment", {"box": ""}, "empty"),
        ("environment", {"": "x"}, "empty"),
        ("#environment", {}, "comment"),
        ("environment", {"time": "x"}, "reserved"),
    ],
)
def test_unencodable_names_are_refused_with_a_reason(
    measurement: str, tags: dict[str, str], complaint: str
) -> None:
    with pytest.raises(LineProtocolError, match=complaint):
        LineEncoder(measurement, tags)


def test_problems_lists_every_bad_setting_and_nothing_for_good_ones() -> None:
    assert problems("environment", {"box": "dryer 1"}) == []
    found = problems("", {"a": "x\n", "time": "y"})
    assert len(found) == 3
    assert all("\n" not in p for p in found)


def test_batch_is_one_body_with_one_line_per_reading_in_order() -> None:
    enc = LineEncoder("environment", {"box": "b"})
    batch = [reading(seq=i, pressure=1000.0 + i if i % 2 else None) for i in range(5)]
    body = enc.encode(batch)
    lines = body.decode().splitlines(keepends=True)
    assert [parse(line)[3] for line in lines] == [r.time_ns for r in batch]
    assert lines == [enc.line(r) for r in batch]
    assert enc.encode([]) == b""


def test_non_finite_values_are_left_out_and_an_empty_reading_is_skipped() -> None:
    enc = LineEncoder()
    _, _, fields, _ = parse(enc.line(reading(pressure=math.nan)))
    assert "pressure_hpa" not in fields and "temperature_c" in fields
    hopeless = Reading(T0, 1, math.nan, math.inf)
    assert enc.line(hopeless) == ""
    assert enc.encode([hopeless, reading(seq=2)]).count(b"\n") == 1


safe_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\\\n\r"),
    min_size=1,
    max_size=20,
)


@given(
    measurement=safe_text.filter(lambda s: not s.startswith("#")),
    tags=st.dictionaries(safe_text.filter(lambda s: s != "time"), safe_text, max_size=4),
)
def test_any_accepted_measurement_and_tags_survive_a_parse(
    measurement: str, tags: dict[str, str]
) -> None:
    line = LineEncoder(measurement, tags).line(reading())
    parsed_measurement, parsed_tags, fields, stamp = parse(line)
    assert (parsed_measurement, parsed_tags, stamp) == (measurement, tags, T0 + 1)
    assert set(fields) == set(reading().fields())


@given(st.text(max_size=30))
def test_escape_leaves_no_unescaped_separator(text: str) -> None:
    escaped = escape(text)
    assert split_unescaped(escaped, ",") == [escaped]
    assert split_unescaped(escaped, " ") == [escaped]


def reference_body(encoder: LineEncoder, readings: list[Reading]) -> bytes:
    """What the encoder must write: each reading's finite fields() with %.3f, in order."""
    lines = []
    for r in readings:
        fields = [f"{k}={v:.3f}" for k, v in r.fields().items() if math.isfinite(v)]
        if fields:
            lines.append(f"{encoder.prefix}{','.join(fields)} {r.time_ns}\n")
    return "".join(lines).encode()


any_value = st.one_of(
    st.floats(-60.0, 120.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-243.12, 0.0, -0.0, 1e308, 0.01, -273.15]),
)


@given(
    st.lists(
        st.tuples(any_value, any_value, st.one_of(st.none(), any_value)), min_size=1, max_size=20
    )
)
def test_a_batch_is_each_readings_finite_fields_whatever_the_values(
    values: list[tuple[float, float, float | None]],
) -> None:
    enc = LineEncoder("environment", {"site": "shop"})
    readings = [Reading(T0 + i, i + 1, t, rh, p) for i, (t, rh, p) in enumerate(values)]
    try:
        expected = reference_body(enc, readings)
    except (ArithmeticError, ValueError):
        # fields() itself cannot compute these (e.g. -243.12 °C divides by zero): so can't encode.
        with pytest.raises((ArithmeticError, ValueError)):
            enc.encode(readings)
        return
    assert enc.encode(readings) == expected
    rows = [(r.time_ns, r.seq, r.temperature_c, r.humidity, r.pressure_hpa) for r in readings]
    assert enc.encode_rows(rows) == expected


def test_rows_encode_to_the_same_bytes_as_readings_in_a_large_batch() -> None:
    enc = LineEncoder("environment", {"run": "x"})
    readings = [
        Reading(T0 + i * 200_000_000, i + 1, 20.0 + (i % 997) / 37.0, 30.0 + (i % 613) / 11.0, p)
        for i in range(5000)
        for p in ((1000.0 + (i % 89) / 7.0) if i < 2500 else None,)
    ]
    rows = [(r.time_ns, r.seq, r.temperature_c, r.humidity, r.pressure_hpa) for r in readings]
    for part in (readings[:2500], readings[2500:], readings):  # with, without, mixed pressure
        part_rows = rows[part[0].seq - 1 : part[-1].seq]
        assert enc.encode(part) == enc.encode_rows(part_rows) == reference_body(enc, part)
    assert enc.encode([]) == enc.encode_rows([]) == b""


@given(st.lists(st.tuples(any_value, any_value), min_size=1, max_size=20))
def test_column_derived_values_are_bit_for_bit_the_single_ones(
    pairs: list[tuple[float, float]],
) -> None:
    temperatures = [t for t, _ in pairs]
    humidities = [rh for _, rh in pairs]
    try:
        singles = [psychro.derived(t, rh) for t, rh in pairs]
    except (ArithmeticError, ValueError):
        with pytest.raises((ArithmeticError, ValueError)):
            psychro.derived_columns(temperatures, humidities)
        return
    dew, absolute = psychro.derived_columns(temperatures, humidities)
    # repr compares NaNs and signed zeros too: the same bits, not just equal values.
    assert [repr(v) for v in dew] == [repr(d) for d, _ in singles]
    assert [repr(v) for v in absolute] == [repr(a) for _, a in singles]


def test_a_tag_that_is_not_valid_utf8_is_refused_with_the_setting_named() -> None:
    bad = b"dryer\x80".decode("utf-8", "surrogateescape")  # what undecodable bytes become
    assert problems("environment", {"box": bad}) == [
        f"data.tags value of 'box' {bad!r} is not valid UTF-8 text"
    ]
    with pytest.raises(LineProtocolError, match="not valid UTF-8"):
        LineEncoder(bad)
