"""The InfluxDB 2.x sink: influxdb-client used synchronously, against VictoriaMetrics.

No InfluxDB 2.x server can be installed here (Debian 12 has none); VictoriaMetrics accepts the same
``/api/v2/write`` request the client sends (org and bucket are ignored), so the real client and
the real HTTP exchange are tested. What VictoriaMetrics does not check (the org, the bucket, the
token, the precision) is checked on the wire through the fault proxy, and InfluxDB's error answers
are scripted there: these are protocol-compatibility tests, not tests against an InfluxDB 2.x.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.outcome import Outcome
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks import influxdb_v2
from filamentctl.sinks.base import create_sink
from tests.faultproxy import Certificates, FaultProxy, forward, make_certificates, respond
from tests.servers import VictoriaMetricsServer, free_port
from tests.sinks import _common as common

pytestmark = pytest.mark.servers


def readings(n: int) -> list[Reading]:
    return common.readings(n, start_ns=common.minute_ago_whole_ms())


def settings(url: str, run: str, **extra: Any) -> dict[str, Any]:
    keys = {"url": url, "token": "s3cret-token", "org": "shop", "bucket": "filament"}
    tags = {"run": run, "box": "dryer 1"}
    return common.sink_settings("influxdb_v2", keys, tags=tags, timeout=3.0, **extra)


def test_points_land_with_sample_timestamps_fields_and_tags(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    sink = create_sink(settings(victoriametrics_server.url, unique_name))
    sink.open()
    batch = readings(3)
    result = sink.write(batch)
    assert result.outcome is Outcome.ACK, result.message
    points = victoriametrics_server.points("environment", {"run": unique_name}, expected=3)
    assert points == [(r.time_ns, r.fields()) for r in batch]
    series = victoriametrics_server.export(f'{{run="{unique_name}"}}')
    assert {s["metric"]["box"] for s in series} == {"dryer 1"}
    sink.close()


def test_the_request_is_a_v2_write_with_ns_precision_org_bucket_and_token(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    with FaultProxy(victoriametrics_server.url) as proxy:
        sink = influxdb_v2.create(settings(proxy.url, unique_name))
        batch = readings(2)
        assert sink.write(batch).ok
        assert sink.write(batch).ok
    first, second = proxy.seen
    assert first.route == "/api/v2/write"
    assert first.query["precision"] == ["ns"]
    assert first.query["org"] == ["shop"] and first.query["bucket"] == ["filament"]
    assert first.headers["Authorization"] == "Token s3cret-token"
    assert first.body.decode().splitlines()[0].endswith(str(batch[0].time_ns))
    assert first.connection == second.connection  # one kept-alive connection


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, Outcome.REJECT),
        (422, Outcome.REJECT),
        (401, Outcome.AUTH),
        (403, Outcome.AUTH),
        (413, Outcome.SPLIT),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_server_answers_are_classified_and_the_client_does_not_retry_by_itself(
    status: int, outcome: Outcome, unique_name: str
) -> None:
    with FaultProxy() as proxy:
        proxy.script(respond(status, '{"code":"invalid","message":"partial write: bad line"}'))
        result = influxdb_v2.create(settings(proxy.url, unique_name)).write(readings(2))
    assert result.outcome is outcome
    assert result.status == status
    assert "s3cret-token" not in result.message
    assert len(proxy.seen) == 1  # retries belong to the delivery engine, not the client


def test_retry_after_is_passed_on(unique_name: str) -> None:
    with FaultProxy() as proxy:
        proxy.script(respond(429, "slow down", {"Retry-After": "7"}))
        result = influxdb_v2.create(settings(proxy.url, unique_name)).write(readings(1))
    assert (result.outcome, result.retry_after_s) == (Outcome.RETRY, 7.0)
    assert len(proxy.seen) == 1


def test_an_error_message_says_what_the_server_said_in_one_line(unique_name: str) -> None:
    with FaultProxy() as proxy:
        proxy.script(respond(400, '{"code":"invalid","message":"unable to parse\\nline 1"}'))
        result = influxdb_v2.create(settings(proxy.url, unique_name)).write(readings(1))
    assert "unable to parse" in result.message and "\n" not in result.message


def test_no_server_is_retry_without_the_token_in_the_message(unique_name: str) -> None:
    sink = influxdb_v2.create(settings(f"http://127.0.0.1:{free_port()}", unique_name))
    sink.open()  # best effort: logs, never raises
    result = sink.write(readings(1))
    assert result.outcome is Outcome.RETRY and result.status is None
    assert "refused" in result.message.lower() and "s3cret-token" not in result.message


def test_missing_org_or_bucket_is_a_config_error(unique_name: str) -> None:
    with pytest.raises(ConfigError, match="org"):
        influxdb_v2.create(
            settings("http://127.0.0.1:1", unique_name, **{"database.influxdb_v2.org": ""})
        )
    with pytest.raises(ConfigError, match="bucket"):
        influxdb_v2.create(
            settings("http://127.0.0.1:1", unique_name, **{"database.influxdb_v2.bucket": ""})
        )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_tls_is_verified_and_a_ca_file_makes_the_certificate_trusted(
    certificates: Certificates, victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    with FaultProxy(victoriametrics_server.url, tls=certificates, default=forward()) as proxy:
        untrusted = influxdb_v2.create(settings(proxy.url, unique_name)).write(readings(1))
        trusted = influxdb_v2.create(
            settings(proxy.url, unique_name, **{"database.tls_ca_file": str(certificates.ca_file)})
        ).write(readings(1))
    assert untrusted.outcome is Outcome.RETRY and "certificate" in untrusted.message.lower()
    assert trusted.outcome is Outcome.ACK, trusted.message


def test_an_unreadable_ca_file_is_a_config_error(tmp_path: Path, unique_name: str) -> None:
    with pytest.raises(ConfigError, match="database.tls_ca_file"):
        influxdb_v2.create(
            settings(
                "https://127.0.0.1:1",
                unique_name,
                **{"database.tls_ca_file": str(tmp_path / "missing.pem")},
            )
        )
