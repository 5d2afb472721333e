"""The Prometheus backend against a real Pushgateway: the latest reading under the job."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from filamentctl.core.outcome import Outcome
from filamentctl.core.reading import Reading
from filamentctl.errors import ConfigError
from filamentctl.sinks import prometheus
from filamentctl.sinks.base import create_sink
from tests.servers import PushgatewayServer, free_port
from tests.sinks import _common as common

pytestmark = pytest.mark.servers

FIELDS = ("temperature_c", "temperature_f", "humidity", "dew_point_c", "absolute_humidity_g_m3")


def readings(n: int, *, first_seq: int = 1, pressure: bool = True) -> list[Reading]:
    start = time.time_ns() - 60 * 10**9
    return common.readings(n, start_ns=start, first_seq=first_seq, per_degree=1, pressure=pressure)


def settings(
    url: str, job: str, tags: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    keys = {"url": url, "job": job}
    return common.sink_settings("prometheus", keys, tags=tags or {}, timeout=3.0, **extra)


def pushed(gateway: PushgatewayServer, job: str) -> dict[str, tuple[dict[str, str], float]]:
    """metric name -> (labels, value) for the samples pushed under ``job``."""
    out: dict[str, tuple[dict[str, str], float]] = {}
    for family in text_string_to_metric_families(gateway.metrics()):
        for sample in family.samples:
            if sample.labels.get("job") == job and sample.name.startswith("environment_"):
                out[sample.name] = (dict(sample.labels), sample.value)
    return out


def test_the_latest_reading_of_a_batch_is_under_the_job(
    pushgateway_server: PushgatewayServer, unique_name: str
) -> None:
    sink = create_sink(settings(pushgateway_server.url, unique_name))
    sink.open()
    batch = readings(3)
    result = sink.write(batch)
    assert result.outcome is Outcome.ACK, result.message
    metrics = pushed(pushgateway_server, unique_name)
    newest = batch[-1]
    for name, value in newest.fields().items():
        assert metrics[f"environment_{name}"][1] == pytest.approx(value)
    assert metrics["environment_seq"][1] == newest.seq
    assert metrics["environment_sample_time_seconds"][1] == pytest.approx(newest.time_ns / 1e9)
    assert metrics["environment_temperature_c"][0] == {"job": unique_name, "instance": ""}


def test_pushing_twice_in_a_row_replaces_the_values(
    pushgateway_server: PushgatewayServer, unique_name: str
) -> None:
    sink = prometheus.create(settings(pushgateway_server.url, unique_name))
    assert sink.write(readings(2)).ok
    later = readings(1, first_seq=50, pressure=False)
    assert sink.write(later).ok
    assert sink.write(later).ok  # a replay is harmless
    metrics = pushed(pushgateway_server, unique_name)
    assert metrics["environment_seq"][1] == 50
    assert metrics["environment_temperature_c"][1] == pytest.approx(later[0].temperature_c)
    assert "environment_pressure_hpa" not in metrics  # PUT replaced the whole group


def test_tags_become_grouping_labels_even_with_slashes_and_spaces(
    pushgateway_server: PushgatewayServer, unique_name: str
) -> None:
    tags = {"box": "dryer 1", "site": "shop/north"}
    sink = prometheus.create(settings(pushgateway_server.url, unique_name, tags))
    assert sink.write(readings(1)).ok
    labels, _ = pushed(pushgateway_server, unique_name)["environment_humidity"]
    assert labels == {"job": unique_name, "instance": "", **tags}
    assert set(FIELDS) <= {
        k.removeprefix("environment_") for k in pushed(pushgateway_server, unique_name)
    }


def test_two_boxes_with_different_tags_keep_separate_groups(
    pushgateway_server: PushgatewayServer, unique_name: str
) -> None:
    for box, temp in (("a", 30.0), ("b", 40.0)):
        sink = prometheus.create(settings(pushgateway_server.url, unique_name, {"box": box}))
        assert sink.write([Reading(time.time_ns(), 1, temp, 20.0)]).ok
    values = {
        sample.labels["box"]: sample.value
        for family in text_string_to_metric_families(pushgateway_server.metrics())
        for sample in family.samples
        if sample.name == "environment_temperature_c" and sample.labels.get("job") == unique_name
    }
    assert values == {"a": 30.0, "b": 40.0}


def test_grouping_path_uses_base64_for_empty_values_and_slashes() -> None:
    assert prometheus.grouping_path("fc", {}) == "/metrics/job/fc"
    assert prometheus.grouping_path("fc", {"b": "x y", "a": ""}) == (
        "/metrics/job/fc/a@base64/=/b/x%20y"
    )
    assert prometheus.grouping_path("a/b", {}) == "/metrics/job@base64/YS9i"


def test_no_gateway_is_retry(unique_name: str) -> None:
    sink = prometheus.create(settings(f"http://127.0.0.1:{free_port()}", unique_name))
    sink.open()
    assert sink.write(readings(1)).outcome is Outcome.RETRY


@pytest.mark.parametrize("tag", ["1box", "__x", "job", "bad-name"])
def test_a_tag_that_is_not_a_label_name_is_a_config_error(tag: str) -> None:
    with pytest.raises(ConfigError, match="data.tags"):
        prometheus.create(settings("http://127.0.0.1:1", "fc", {tag: "x"}))


def test_a_measurement_that_is_not_a_metric_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="data.measurement"):
        prometheus.create({**settings("http://127.0.0.1:1", "fc"), "data.measurement": "my box"})
