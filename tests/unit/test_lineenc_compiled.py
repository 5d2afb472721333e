"""The compiled line-protocol encoder (``core/_lineenc.c``) writes the Python path's bytes.

It is optional (setup.py builds it where a C compiler is); where it was not built these tests skip
locally and fail on CI, which builds it (``.ci/run`` runs on a machine with gcc and the headers).
The property tests compare it with ``LineEncoder(compiled=False)`` — the Python path the rest of
the suite checks against each reading's ``fields()`` — on values chosen to be hard for a
formatter: exact and near ties at the third decimal, negatives that round to zero, signed zeros,
integers, huge values, NaN and infinities, and rows of the wrong shape.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from filamentctl.core import lineprotocol
from filamentctl.core.lineprotocol import LineEncoder
from tests.servers import unavailable

T0 = 1_795_459_598_000_000_000


@pytest.fixture(autouse=True)
def compiled() -> None:
    if not lineprotocol.COMPILED:
        unavailable(
            "the compiled encoder filamentctl.core._lineenc is not built or disagreed with the "
            "Python path at import (pip install -e . with gcc and the Python headers builds it)"
        )


def near_ties() -> st.SearchStrategy[float]:
    """Values at or next to a tie at the third decimal (x.xxx5), the formatter's hard case."""
    return st.builds(
        lambda k, nudge: (
            math.nextafter(k / 1000 + 0.0005, math.inf if nudge > 0 else -math.inf)
            if nudge
            else k / 1000 + 0.0005
        ),
        st.integers(-200_000, 2_000_000_000),
        st.integers(-1, 1),
    )


value = st.one_of(
    st.floats(-60.0, 120.0),
    st.floats(0.0, 100.0),
    near_ties(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-100, 200),
    st.sampled_from([0.0625, -0.0625, -0.0, 0.0, -0.0004, 1e6, -999999.9995, 1e308, -243.12]),
)
pressure = st.one_of(st.none(), value)


def pure_and_compiled(rows: list[tuple[int, int, float, float, float | None]]) -> tuple[bytes, ...]:
    tags = {"box": "dryer 1", "site": "shop%d"}
    pure = LineEncoder("environment", tags, compiled=False)
    fast = LineEncoder("environment", tags)
    assert fast._compiled is not None and pure._compiled is None
    try:
        expected = pure.encode_rows(rows)
    except (ArithmeticError, ValueError) as exc:
        with pytest.raises(type(exc)):
            fast.encode_rows(rows)
        return ()
    return expected, fast.encode_rows(rows)


@given(st.lists(st.tuples(value, value, pressure), min_size=1, max_size=30))
@example([(20.0005, 40.0625, 1013.2505)])
@example([(-0.0001, 0.0, None), (-0.0, 100, None)])
@example([(21.5, 40.0, None), (21.5, 40.0, 1000.0)])  # pressure on some rows only
def test_compiled_rows_are_the_python_paths_bytes(
    values: list[tuple[float, float, float | None]],
) -> None:
    rows = [(T0 + i, i + 1, t, rh, p) for i, (t, rh, p) in enumerate(values)]
    both = pure_and_compiled(rows)
    if both:
        assert both[0] == both[1]


@given(
    st.lists(
        st.tuples(near_ties(), st.floats(0.0, 100.0), st.one_of(st.none(), near_ties())),
        min_size=1,
        max_size=30,
    ),
    st.integers(-(2**63), 2**63 - 1),
)
def test_near_ties_and_any_64_bit_timestamp_write_the_same_bytes(
    values: list[tuple[float, float, float | None]], time_ns: int
) -> None:
    p = values[0][2]
    rows = [(time_ns, i + 1, t, rh, p) for i, (t, rh, _) in enumerate(values)]
    both = pure_and_compiled(rows)
    if both:
        assert both[0] == both[1]


def test_a_large_realistic_batch_goes_the_compiled_way_and_matches() -> None:
    rows = [
        (T0 + i * 200_000_000, i + 1, 20.0 + (i % 997) / 37.0, 30.0 + (i % 613) / 11.0, p)
        for i in range(5000)
        for p in (1000.0 + (i % 89) / 7.0,)
    ]
    enc = LineEncoder("environment", {"run": "x"})
    parts = enc._parts[1]
    body = lineprotocol._compiled_encode(parts, rows)  # type: ignore[misc]
    assert body is not None  # the compiled path took it, not the fallback
    assert body == LineEncoder("environment", {"run": "x"}, compiled=False).encode_rows(rows)
    assert body.count(b"\n") == 5000


class Celsius(float):
    """A float subclass may change the arithmetic the Python path would run: not the C path's."""

    def __mul__(self, other: object) -> float:
        return 0.0


class Nanos(int):
    pass


class Row(tuple):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize(
    "rows",
    [
        [(T0, 1, float("nan"), 40.0, None)],
        [(T0, 1, 21.0, 40.0, float("inf"))],
        [(T0, 1, 21.0, 40.0, None), (T0 + 1, 2, 21.0, 40.0, 1000.0)],
        [(2**64, 1, 21.0, 40.0, None)],
        [(T0, 1, "21.0", 40.0, None)],
        [(T0, 1, 21.0, 40.0)],
        [[T0, 1, 21.0, 40.0, None]],
        [(float(T0), 1, 21.0, 40.0, None)],
        [(T0, 1, -243.12, 40.0, None)],
        [(T0, 1, Celsius(21.0), 40.0, None)],
        [(T0, 1, 21.0, True, None)],
        [(Nanos(T0), 1, 21.0, 40.0, None)],
        [Row((T0, 1, 21.0, 40.0, None))],
    ],
    ids=[
        "nan",
        "inf-pressure",
        "mixed-pressure",
        "time-beyond-64-bits",
        "text",
        "short-row",
        "list-row",
        "float-time",
        "zero-divisor",
        "float-subclass",
        "bool",
        "int-subclass-time",
        "tuple-subclass",
    ],
)
def test_an_unusual_batch_is_handed_back_to_the_python_path(rows: list[object]) -> None:
    enc = LineEncoder("environment", {})
    assert lineprotocol._compiled_encode(enc._parts[0], rows) is None  # type: ignore[arg-type, misc]
    assert lineprotocol._compiled_encode(enc._parts[1], rows) is None  # type: ignore[arg-type, misc]


def test_bad_parts_are_a_type_error_not_a_crash() -> None:
    encode = lineprotocol._compiled_encode
    assert encode is not None
    rows = [(T0, 1, 21.0, 40.0, None)]
    for parts in ((b"a",) * 5, (b"a",) * 8, ("a",) * 6):
        with pytest.raises(TypeError):
            encode(parts, rows)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode([b"a"] * 6, rows)  # type: ignore[arg-type]
    assert encode((b"a",) * 6, []) == b""
    assert encode((b"a",) * 6, iter(rows)) is None  # type: ignore[arg-type]


def test_an_encoder_that_disagrees_with_the_python_path_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = lineprotocol._compiled_encode
    assert real is not None and lineprotocol._compiled_agrees()

    def off_by_one_digit(parts: tuple[bytes, ...], rows: object) -> bytes | None:
        body = real(parts, rows)  # type: ignore[arg-type]
        return None if body is None else body.replace(b"0.062", b"0.063")

    monkeypatch.setattr(lineprotocol, "_compiled_encode", off_by_one_digit)
    assert not lineprotocol._compiled_agrees()  # 0.0625 is a probe value: an exact tie
    monkeypatch.setattr(lineprotocol, "_compiled_encode", None)
    assert not lineprotocol._compiled_agrees()


def test_a_probe_that_raises_leaves_the_compiled_encoder_unused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stale build with another calling convention must not break the import of lineprotocol."""

    def stale(parts: tuple[bytes, ...], rows: object) -> bytes | None:
        raise TypeError("encode() takes exactly 3 arguments (2 given)")

    monkeypatch.setattr(lineprotocol, "_compiled_encode", stale)
    assert lineprotocol._compiled_agrees() is False


def test_a_short_row_fails_as_it_does_on_the_python_path() -> None:
    rows = [(T0, 1, 21.0, 40.0)]
    for enc in (LineEncoder(), LineEncoder(compiled=False)):
        with pytest.raises(ValueError):
            enc.encode_rows(rows)  # type: ignore[list-item]
