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


@pytest.mark.parametrize(("step_s", "limit"), [(60, 10_000), (60, 4), (7, 50), (1000, 1)])
def test_iter_downsample_matches_downsample(tmp_path: Path, step_s: int, limit: int) -> None:
    h = _history(tmp_path, 2345, 0)
    since_ns = 1000 * S + 10 * S
    streamed = [
        r for chunk in h.iter_downsample(since_ns, step_s * S, limit, chunk=3) for r in chunk
    ]
    assert streamed == h.downsample(since_ns, step_s * S, limit)
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
