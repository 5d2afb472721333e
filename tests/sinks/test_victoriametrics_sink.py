"""The VictoriaMetrics sink against a real single-node VictoriaMetrics (and the fault proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.outcome import Outcome
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks import victoriametrics
from filamentctl.sinks.base import Sink, create_sink
from tests.faultproxy import (
    Certificates,
    FaultProxy,
    drop,
    forward,
    make_certificates,
    respond,
    stall,
)
from tests.servers import VictoriaMetricsServer, count_by_time, free_port
from tests.sinks import _common as common

pytestmark = pytest.mark.servers


def readings(n: int, *, pressure: bool = True) -> list[Reading]:
    # Whole milliseconds: VictoriaMetrics stores ms, so these come back exactly.
    return common.readings(n, start_ns=common.minute_ago_whole_ms(), pressure=pressure)


def settings(url: str, run: str, **extra: Any) -> dict[str, Any]:
    tags = {"run": run, "box": "dryer 1"}
    return common.sink_settings("victoriametrics", {"url": url}, tags=tags, timeout=5.0, **extra)


def test_points_land_with_sample_timestamps_all_fields_and_tags(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    sink: Sink = create_sink(settings(victoriametrics_server.url, unique_name))
    batch = readings(3)
    sink.open()
    result = sink.write(batch)
    assert result.outcome is Outcome.ACK, result.message
    points = victoriametrics_server.points("environment", {"run": unique_name}, expected=3)
    assert points == [(r.time_ns, r.fields()) for r in batch]
    series = victoriametrics_server.export(f'{{run="{unique_name}"}}')
    assert {s["metric"]["box"] for s in series} == {"dryer 1"}


def test_readings_without_pressure_have_no_pressure_series(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    sink = victoriametrics.create(settings(victoriametrics_server.url, unique_name))
    batch = readings(2, pressure=False)
    assert sink.write(batch).ok
    points = victoriametrics_server.points("environment", {"run": unique_name}, expected=2)
    assert [fields for _, fields in points] == [r.fields() for r in batch]
    assert all("pressure_hpa" not in fields for _, fields in points)


def test_resending_a_batch_stores_a_second_copy_because_single_node_vm_does_not_dedup(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    # What is true, not what we would like: without -dedup.minScrapeInterval VictoriaMetrics
    # keeps both copies. Graphs and per-bucket aggregates are unaffected; raw exports show two.
    sink = victoriametrics.create(settings(victoriametrics_server.url, unique_name))
    batch = readings(2)
    assert sink.write(batch).ok
    assert sink.write(batch).ok
    points = victoriametrics_server.points("environment", {"run": unique_name}, expected=4)
    assert count_by_time(points) == {r.time_ns: 2 for r in batch}


def test_tenant_writes_go_to_the_cluster_insert_path(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    # Single-node VM has no tenants: the proxy records the cluster path, then hands the
    # request to the single node's /write so we also see the data arrive.
    with FaultProxy(
        victoriametrics_server.url, rewrite=lambda p: "/write" if "/influx/write" in p else p
    ) as proxy:
        sink = victoriametrics.create(
            settings(proxy.url, unique_name, **{"database.victoriametrics.tenant": "42:7"})
        )
        batch = readings(1)
        assert sink.write(batch).ok
        assert [s.route for s in proxy.seen] == ["/insert/42:7/influx/write"]
        assert "tenant=42:7" in sink.describe()
    points = victoriametrics_server.points("environment", {"run": unique_name}, expected=1)
    assert [t for t, _ in points] == [batch[0].time_ns]


def test_without_tenant_writes_go_to_write(unique_name: str) -> None:
    with FaultProxy() as proxy:  # no upstream: answers 204 and records
        sink = victoriametrics.create(settings(proxy.url, unique_name))
        assert sink.write(readings(1)).ok
        assert proxy.seen[0].route == "/write"
        assert proxy.seen[0].headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("tenant", ["abc", "1/../x", "1:2:3"])
def test_an_invalid_tenant_is_a_config_error(tenant: str) -> None:
    with pytest.raises(ConfigError, match="tenant"):
        victoriametrics.create(
            settings("http://127.0.0.1:8428", "x", **{"database.victoriametrics.tenant": tenant})
        )


def test_a_missing_url_or_bad_tag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="database.victoriametrics.url"):
        victoriametrics.create({"database.type": "victoriametrics"})
    with pytest.raises(ConfigError, match="line break"):
        victoriametrics.create(settings("http://127.0.0.1:8428", "a\nb"))


def test_wrong_port_is_retry_with_a_one_line_message(unique_name: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sink = victoriametrics.create(settings(url, unique_name))
    sink.open()  # best effort: must not raise with the server away
    result = sink.write(readings(1))
    assert result.outcome is Outcome.RETRY
    assert result.status is None
    assert "\n" not in result.message
    assert "cannot reach" in result.message and "connection refused" in result.message


def test_unresolvable_host_is_retry(unique_name: str) -> None:
    sink = victoriametrics.create(settings("http://no-such-host.invalid:8428", unique_name))
    result = sink.write(readings(1))
    assert result.outcome is Outcome.RETRY
    assert "no-such-host.invalid" in result.message


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (400, {}, Outcome.REJECT, None),
        (422, {}, Outcome.REJECT, None),
        (401, {}, Outcome.AUTH, None),
        (403, {}, Outcome.AUTH, None),
        (413, {}, Outcome.SPLIT, None),
        (429, {"Retry-After": "7"}, Outcome.RETRY, 7.0),
        (503, {}, Outcome.RETRY, None),
        (503, {"Retry-After": "2"}, Outcome.RETRY, 2.0),
    ],
)
def test_server_answers_are_classified(
    victoriametrics_server: VictoriaMetricsServer,
    unique_name: str,
    status: int,
    headers: dict[str, str],
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    with FaultProxy(victoriametrics_server.url) as proxy:
        proxy.script(respond(status, '{"error":"scripted\\nfailure"}', headers))
        sink = victoriametrics.create(settings(proxy.url, unique_name))
        result = sink.write(readings(1))
        assert (result.outcome, result.status, result.retry_after_s) == (
            outcome,
            status,
            retry_after,
        )
        assert f"HTTP {status}" in result.message and "scripted failure" in result.message
        # The same sink keeps working once the server behaves again.
        assert sink.write(readings(1)).ok


def test_credentials_travel_in_a_header_and_never_in_messages(unique_name: str) -> None:
    with FaultProxy() as proxy:
        proxy.script(respond(401, "bad credentials for s3cret-pw"))
        sink = victoriametrics.create(
            settings(
                proxy.url,
                unique_name,
                **{
                    "database.victoriametrics.username": "writer",
                    "database.victoriametrics.password": "s3cret-pw",
                },
            )
        )
        result = sink.write(readings(1))
        assert result.outcome is Outcome.AUTH
        assert "s3cret-pw" not in result.message and "s3cret-pw" not in sink.describe()
        assert proxy.seen[0].headers["Authorization"].startswith("Basic ")
        assert "s3cret-pw" not in proxy.seen[0].path


def test_bearer_token_is_sent_when_configured(unique_name: str) -> None:
    with FaultProxy() as proxy:
        sink = victoriametrics.create(
            settings(proxy.url, unique_name, **{"database.victoriametrics.token": "tok-123"})
        )
        assert sink.write(readings(1)).ok
        assert proxy.seen[0].headers["Authorization"] == "Bearer tok-123"
        assert "tok-123" not in sink.describe()


def test_credentials_in_the_url_are_used_but_not_shown(unique_name: str) -> None:
    with FaultProxy() as proxy:
        url = proxy.url.replace("http://", "http://writer:pw%40x@")
        sink = victoriametrics.create(settings(url, unique_name))
        assert sink.write(readings(1)).ok
        assert proxy.seen[0].headers["Authorization"].startswith("Basic ")
        assert "pw" not in sink.describe() and "writer" not in sink.describe()


def test_one_connection_is_reused_and_reopened_after_the_server_drops_it(
    victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    with FaultProxy(victoriametrics_server.url) as proxy:
        proxy.script(forward(), forward(close_after=True))
        sink = victoriametrics.create(settings(proxy.url, unique_name))
        for batch in (readings(1), readings(1), readings(1)):
            assert sink.write(batch).ok
        first, second, third = (s.connection for s in proxy.seen)
        assert first == second  # kept alive
        assert third != second  # the silently closed connection was replaced, no error surfaced


def test_a_dropped_request_is_retry(unique_name: str) -> None:
    with FaultProxy() as proxy:
        proxy.script(drop())
        sink = victoriametrics.create(settings(proxy.url, unique_name))
        result = sink.write(readings(1))
        assert result.outcome is Outcome.RETRY
        assert "closed the connection" in result.message


def test_a_server_that_does_not_answer_in_time_is_retry(unique_name: str) -> None:
    with FaultProxy() as proxy:
        proxy.script(stall(30))
        sink = victoriametrics.create(settings(proxy.url, unique_name, **{"database.timeout": 0.3}))
        result = sink.write(readings(1))
        assert result.outcome is Outcome.RETRY
        assert "no answer within 0.3 s" in result.message


def test_writes_fail_during_an_outage_and_succeed_after_it_keeping_earlier_data(
    victoriametrics_outage: VictoriaMetricsServer, unique_name: str
) -> None:
    vm = victoriametrics_outage
    sink = victoriametrics.create(settings(vm.url, unique_name))
    before, during = readings(2)
    assert sink.write([before]).ok
    vm.stop()
    assert sink.write([during]).outcome is Outcome.RETRY
    vm.start()
    assert sink.write([during]).ok
    points = vm.points("environment", {"run": unique_name}, expected=2)
    assert count_by_time(points) == {before.time_ns: 1, during.time_ns: 1}


def test_none_backend_acknowledges_and_describes_itself() -> None:
    sink = create_sink({"database.type": "none"})
    sink.open()
    assert sink.write(readings(3)).ok
    assert "none" in sink.describe()
    sink.close()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_an_untrusted_certificate_is_retry_with_advice(
    certificates: Certificates, unique_name: str
) -> None:
    with FaultProxy(tls=certificates) as proxy:
        sink = victoriametrics.create(settings(proxy.url, unique_name))
        result = sink.write(readings(1))
        assert result.outcome is Outcome.RETRY
        assert "TLS certificate not trusted" in result.message
        assert "database.tls_ca_file" in result.message
        assert proxy.seen == []  # nothing was sent over the unverified connection


def test_a_configured_ca_file_makes_the_certificate_trusted(
    victoriametrics_server: VictoriaMetricsServer, certificates: Certificates, unique_name: str
) -> None:
    with FaultProxy(victoriametrics_server.url, tls=certificates) as proxy:
        sink = victoriametrics.create(
            settings(proxy.url, unique_name, **{"database.tls_ca_file": str(certificates.ca_file)})
        )
        assert sink.write(readings(1)).ok
    assert len(victoriametrics_server.points("environment", {"run": unique_name}, expected=1)) == 1


def test_verification_can_be_turned_off(certificates: Certificates, unique_name: str) -> None:
    with FaultProxy(tls=certificates) as proxy:
        sink = victoriametrics.create(
            settings(proxy.url, unique_name, **{"database.tls_verify": False})
        )
        assert sink.write(readings(1)).ok


def test_an_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database.tls_ca_file"):
        victoriametrics.create(
            settings(
                "https://127.0.0.1:8428",
                "x",
                **{"database.tls_ca_file": str(tmp_path / "missing.pem")},
            )
        )


def test_a_token_with_a_line_break_is_refused_without_echoing_it() -> None:
    """E.g. a Vault secret stored with its trailing newline inside: never in logs or status."""
    from filamentctl.errors import ConfigError
    from filamentctl.sinks import victoriametrics

    settings = {
        "database.victoriametrics.url": "http://127.0.0.1:1",
        "database.victoriametrics.token": "s3cr3t\ninjected",
    }
    with pytest.raises(ConfigError) as info:
        victoriametrics.create(settings)
    assert "s3cr3t" not in str(info.value) and "line break" in str(info.value)
    # A trailing newline alone is just stripped.
    sink = victoriametrics.create({**settings, "database.victoriametrics.token": "s3cr3t\n"})
    sink.close()


def test_a_redirect_keeps_the_data_and_names_the_new_url(unique_name: str) -> None:
    """http:// answered with 301 to https://: retrying cannot help; say where to point it."""
    with FaultProxy() as proxy:
        proxy.script(respond(301, headers={"Location": "https://vm.example:8428/write"}))
        sink = victoriametrics.create(settings(proxy.url, unique_name))
        result = sink.write(readings(1))
        sink.close()
    assert result.outcome is Outcome.AUTH
    assert "redirected to https://vm.example:8428/write" in result.message
