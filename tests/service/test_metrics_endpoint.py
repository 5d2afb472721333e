"""The /metrics endpoint, scraped over HTTP and parsed by prometheus-client's own parser."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from filamentctl.service.metrics import MetricsServer, parse_listen, start_metrics_server
from tests.helpers import in_process_service, settings, wait_until
from tests.servers import unavailable

DOCUMENTED = {
    "filamentctl_up",
    "filamentctl_build_info",
    "filamentctl_uptime_seconds",
    "filamentctl_readings",  # the parser names counters without _total
    "filamentctl_temperature_celsius",
    "filamentctl_relative_humidity_ratio",
    "filamentctl_dew_point_celsius",
    "filamentctl_absolute_humidity_grams_per_cubic_meter",
    "filamentctl_reading_timestamp_seconds",
    "filamentctl_reading_age_seconds",
    "filamentctl_sensor_health",
    "filamentctl_sensor_errors",
    "filamentctl_sensor_rejected",
    "filamentctl_relay_on",
    "filamentctl_relay_enabled",
    "filamentctl_delivery_written",
    "filamentctl_delivery_dropped",
    "filamentctl_delivery_rejected",
    "filamentctl_delivery_backlog_readings",
    "filamentctl_delivery_dead_letter_entries",
    "filamentctl_delivery_connected",
    "filamentctl_delivery_alert",
    "filamentctl_delivery_oldest_unsent_age_seconds",
}


def scrape(server: MetricsServer) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels: value}, from a real HTTP scrape parsed by prometheus-client."""
    with urllib.request.urlopen(server.url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out.setdefault(family.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@pytest.fixture
def running_service() -> Iterator[Any]:
    # A real in-process service (simulated sensor, real SQLite, MockFactory relays) whose
    # status() feeds the endpoint, exactly as the service will wire it.
    with in_process_service(settings(sensor__read_interval=0.1)) as service:
        wait_until(lambda: service.latest is not None, what="a first reading")
        yield service


def test_scrape_has_every_documented_series_with_the_service_values(
    running_service: Any,
) -> None:
    server = start_metrics_server("127.0.0.1:0", running_service.status)
    try:
        metrics = scrape(server)
        status = running_service.status()
    finally:
        server.stop()
    assert DOCUMENTED <= set(metrics), sorted(DOCUMENTED - set(metrics))
    assert metrics["filamentctl_up"][()] == 1.0
    assert metrics["filamentctl_relative_humidity_ratio"][()] == pytest.approx(
        status["reading"]["humidity"] / 100, abs=0.05
    )
    assert metrics["filamentctl_relay_on"][(("relay", "heater"),)] in (0.0, 1.0)
    assert set(metrics["filamentctl_relay_on"]) == {(("relay", "heater"),), (("relay", "fan"),)}
    health = metrics["filamentctl_sensor_health"]
    assert sum(health.values()) == 1.0
    assert health[(("state", status["sensor"]["health"]),)] == 1.0
    assert metrics["filamentctl_delivery_backlog_readings"] == {(("backend", "none"),): 0.0}


def full_status() -> dict[str, Any]:
    """A status document with every part the endpoint turns into series."""
    return {
        "version": "9.9",
        "readings_total": 42,
        "reading": {"time_ns": 1_700_000_000_000_000_000, "temperature_c": 21.5, "age_s": 0.3},
        "storage": {
            "backend": "victoriametrics",
            "connected": False,
            "backlog": 17,
            "written": 1000,
            "dropped": 3,
            "rejected": 5,
            "errors_total": 7,
            "dead_letter": 1,
            "consecutive_failures": 2,
            "oldest_unsent_age_s": 12.5,
            "alert": {"kind": "auth"},
            "last_success": "2023-11-14T22:13:20.000000Z",
        },
    }


def test_delivery_counters_and_last_success_follow_the_status_dict() -> None:
    status = full_status()
    server = start_metrics_server("127.0.0.1:0", lambda: status)
    try:
        metrics = scrape(server)
    finally:
        server.stop()
    vm = (("backend", "victoriametrics"),)
    assert metrics["filamentctl_readings"][()] == 42
    assert metrics["filamentctl_delivery_written"][vm] == 1000
    assert metrics["filamentctl_delivery_dropped"][vm] == 3
    assert metrics["filamentctl_delivery_rejected"][vm] == 5
    assert metrics["filamentctl_delivery_errors"][vm] == 7
    assert metrics["filamentctl_delivery_backlog_readings"][vm] == 17
    assert metrics["filamentctl_delivery_connected"][vm] == 0
    assert metrics["filamentctl_delivery_alert"][vm] == 1
    assert metrics["filamentctl_delivery_last_success_timestamp_seconds"][vm] == 1_700_000_000
    assert metrics["filamentctl_reading_timestamp_seconds"][()] == 1_700_000_000
    assert "filamentctl_pressure_pascals" not in metrics  # no pressure sensor, no series


def promtool_problems(text: str) -> str:
    """What ``promtool check metrics`` (Prometheus' own linter) says about an exposition."""
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    return f"exit {proc.returncode}: {proc.stdout}{proc.stderr}" if proc.returncode else ""


def raw_scrape(collect: Any) -> str:
    server = start_metrics_server("127.0.0.1:0", collect)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            return str(resp.read().decode())
    finally:
        server.stop()


def test_promtool_finds_nothing_to_fix_on_a_running_service(running_service: Any) -> None:
    text = raw_scrape(running_service.status)
    assert "filamentctl_temperature_celsius" in text
    assert promtool_problems(text) == ""


def test_promtool_finds_nothing_to_fix_with_every_series_present() -> None:
    status = full_status()
    status["reading"].update(humidity=41.2, pressure_hpa=1013.2, dew_point_c=7.6)
    status["reading"]["absolute_humidity_g_m3"] = 7.7
    status["sensor"] = {"health": "OK", "errors": 1, "rejected": 2}
    status["heater"] = {"on": True, "enabled": True}
    status["fan"] = {"on": False, "enabled": False}
    text = raw_scrape(lambda: status)
    assert promtool_problems(text) == ""
    assert "fahrenheit" not in text and "percent" not in text and "hecto" not in text


def test_values_are_in_base_units() -> None:
    status = full_status()
    status["reading"].update(humidity=41.2, pressure_hpa=1013.2)
    server = start_metrics_server("127.0.0.1:0", lambda: status)
    try:
        metrics = scrape(server)
    finally:
        server.stop()
    assert metrics["filamentctl_relative_humidity_ratio"][()] == pytest.approx(0.412)
    assert metrics["filamentctl_pressure_pascals"][()] == pytest.approx(101320.0)
    assert metrics["filamentctl_temperature_celsius"][()] == 21.5


def test_a_failing_status_still_answers_with_up_zero() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("history closed")

    server = start_metrics_server("127.0.0.1:0", broken)
    try:
        assert scrape(server)["filamentctl_up"][()] == 0.0
    finally:
        server.stop()


@pytest.mark.parametrize("listen", ["0.0.0.0:9108", "192.168.1.5:9108", "example.com:9108"])
def test_non_loopback_addresses_are_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        start_metrics_server(listen, dict)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("localhost:9108", ("127.0.0.1", 9108)),
    ],
)
def test_loopback_addresses_are_accepted(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


def test_stopping_frees_the_port() -> None:
    server = start_metrics_server("127.0.0.1:0", dict)
    port = server.port
    server.stop()
    server.stop()  # idempotent
    again = start_metrics_server(f"127.0.0.1:{port}", dict)
    again.stop()
