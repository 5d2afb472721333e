"""The streamed history reads (used by the ``history`` op) return exactly what the plain ones do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filamentctl.core.reading import Reading
from filamentctl.store.history import History
from tests.helpers import in_process_service, raw_request, settings, wait_until

S = 1_000_000_000


def _history(tmp_path: Path, committed: int, buffered: int) -> History:
    h = History(tmp_path / "h.db", max_backlog=0, retention_days=0)
    h.open()
    for i in range(1, committed + buffered + 1):
        h.add(Reading(1000 * S + i * S, h.next_seq(), 20 + i / 100, 50.0, None))
        if i == committed:
            h.commit()
    return h


@pytest.mark.parametrize(
    ("since_s", "limit"), [(0, 10_000), (0, 5), (500, 10_000), (1500, 3), (2400, 100), (0, 1)]
)
@pytest.mark.parametrize("buffered", [0, 7])
def test_iter_query_matches_query(tmp_path: Path, since_s: int, limit: int, buffered: int) -> None:
    h = _history(tmp_path, 2345, buffered)
    since_ns = 1000 * S + since_s * S
    streamed = [r for chunk in h.iter_query(since_ns, limit, chunk=100) for r in chunk]
    assert streamed == h.query(since_ns, limit=limit)
    h.close()


@pytest.mark.parametrize(
    ("step_s", "limit"), [(60, 10_000), (60, 4), (7, 50), (1000, 1), (1, 3), (1, 30), (2, 5)]
)
@pytest.mark.parametrize("buffered", [0, 7, 70])
def test_iter_downsample_matches_downsample(
    tmp_path: Path, step_s: int, limit: int, buffered: int
) -> None:
    h = _history(tmp_path, 2345, buffered)
    since_ns = 1000 * S + 10 * S
    streamed = [
        r for chunk in h.iter_downsample(since_ns, step_s * S, limit, chunk=3) for r in chunk
    ]
    plain = h.downsample(since_ns, step_s * S, limit)
    assert [(r.seq, r.time_ns) for r in streamed] == [(r.seq, r.time_ns) for r in plain]
    for a, b in zip(streamed, plain, strict=True):
        assert a.temperature_c == pytest.approx(b.temperature_c, abs=1e-9)
    h.close()


@pytest.mark.parametrize("streamed", [False, True])
def test_a_chart_includes_readings_not_yet_committed(tmp_path: Path, streamed: bool) -> None:
    """Commits come every 30 s by default: a chart of the last minute in 1 s or 7 s steps must
    not lag by that much. A 7 s bucket straddles the commit: its mean counts both parts."""
    h = _history(tmp_path, 100, 30)  # readings 1..100 committed, 101..130 buffered
    since_ns = 1000 * S + 60 * S

    def chart(step_s: int, limit: int) -> list[Reading]:
        if streamed:
            return [r for c in h.iter_downsample(since_ns, step_s * S, limit, chunk=4) for r in c]
        return h.downsample(since_ns, step_s * S, limit)

    ones = chart(1, 1000)
    assert [r.seq for r in ones] == list(range(60, 131))
    assert ones[-1].temperature_c == pytest.approx(20 + 130 / 100)
    sevens = chart(7, 1000)
    straddling = next(r for r in sevens if r.seq <= 100 < r.seq + 7)
    members = [i for i in range(60, 131) if (1000 + i) // 7 == (1000 + straddling.seq) // 7]
    assert any(i > 100 for i in members) and any(i <= 100 for i in members)
    assert straddling.temperature_c == pytest.approx(20 + sum(members) / len(members) / 100)
    assert straddling.time_ns == pytest.approx(1000 * S + sum(members) / len(members) * S, abs=1)
    assert [r.seq for r in chart(1, 5)] == [126, 127, 128, 129, 130]
    h.close()


def test_the_history_op_streams_a_well_formed_reply() -> None:
    with in_process_service(settings(sensor__read_interval=0.1)) as svc:
        wait_until(lambda: svc.readings_total >= 5, what="a few readings")
        [reply] = raw_request(svc.paths.socket, b'{"id":7,"op":"history","args":{"limit":3}}\n')
        assert reply["ok"] and reply["id"] == 7
        rows = reply["result"]
        assert len(rows) == 3 and rows[0]["seq"] < rows[1]["seq"] < rows[2]["seq"]
        assert json.dumps(rows)  # plain JSON all through
        [empty] = raw_request(svc.paths.socket, b'{"id":8,"op":"history","args":{"since_s":0}}\n')
        assert empty["ok"] and isinstance(empty["result"], list)
