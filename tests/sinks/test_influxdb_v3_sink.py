"""The InfluxDB 3 sink: line protocol to the v2-compatible endpoint, against VictoriaMetrics.

No InfluxDB 3 server can be installed here; VictoriaMetrics serves the same ``/api/v2/write``
endpoint (docs/backends.md says why the sink uses it), so the real exchange is tested. What
VictoriaMetrics does not check (the database, the token) is checked on the wire through the fault
proxy, and InfluxDB 3's status answers are scripted there: protocol-compatibility tests, not tests
against an InfluxDB 3 server.
"""

from __future__ import annotations

from typing import Any

import pytest

from filamentctl.core.outcome import Outcome
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks import influxdb_v3
from filamentctl.sinks.base import create_sink
from tests.faultproxy import FaultProxy, respond
from tests.servers import VictoriaMetricsServer, free_port
from tests.sinks import _common as common

pytestmark = pytest.mark.servers


def readings(n: int, *, pressure: bool = True) -> list[Reading]:
    return common.readings(n, start_ns=common.minute_ago_whole_ms(), pressure=pressure)


def settings(url: str, run: str, **extra: Any) -> dict[str, Any]:
    keys = {"url": url, "token": "apiv3_s3cret", "database": "filament"}
    return common.sink_settings("influxdb_v3", keys, tags={"run": run}, timeout=3.0, **extra)


def test_points_land_with_sample_timestamps_and_fields(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    sink = create_sink(settings(victoriametrics_server.url, unique_name))
    sink.open()
    batch = readings(3, pressure=False)
    result = sink.write(batch)
    assert result.outcome is Outcome.ACK, result.message
    points = victoriametrics_server.points("environment", {"run": unique_name}, expected=3)
    assert points == [(r.time_ns, r.fields()) for r in batch]


def test_the_request_goes_to_the_v2_compatible_endpoint_with_a_bearer_token(
    unique_name: str,
) -> None:
    with FaultProxy() as proxy:  # answers 204 like the server, records the request
        sink = influxdb_v3.create(settings(proxy.url, unique_name))
        assert sink.write(readings(2)).ok
        assert sink.write(readings(2)).ok
    first, second = proxy.seen
    assert first.route == "/api/v2/write"
    assert first.query == {"bucket": ["filament"], "precision": ["ns"]}
    assert first.headers["Authorization"] == "Bearer apiv3_s3cret"
    assert first.connection == second.connection
    assert "apiv3_s3cret" not in sink.describe()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(400, Outcome.REJECT), (401, Outcome.AUTH), (413, Outcome.SPLIT), (503, Outcome.RETRY)],
)
def test_server_answers_are_classified(status: int, outcome: Outcome, unique_name: str) -> None:
    with FaultProxy() as proxy:
        proxy.script(respond(status, '{"error":"write buffer error"}', {"Retry-After": "3"}))
        result = influxdb_v3.create(settings(proxy.url, unique_name)).write(readings(1))
    assert (result.outcome, result.status) == (outcome, status)
    assert "apiv3_s3cret" not in result.message


def test_no_server_is_retry(unique_name: str) -> None:
    sink = influxdb_v3.create(settings(f"http://127.0.0.1:{free_port()}", unique_name))
    sink.open()
    assert sink.write(readings(1)).outcome is Outcome.RETRY


def test_a_missing_database_name_is_a_config_error(unique_name: str) -> None:
    with pytest.raises(ConfigError, match="database.influxdb_v3.database"):
        influxdb_v3.create(
            settings("http://127.0.0.1:1", unique_name, **{"database.influxdb_v3.database": ""})
        )
