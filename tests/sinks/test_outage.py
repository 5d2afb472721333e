"""THE outage test: a 60 s outage of the real database loses nothing and duplicates nothing.

One real ``filamentctl run --simulate`` process per history-storing backend, sampling every
0.2 s: VictoriaMetrics, InfluxDB 1.x, InfluxDB 2.x (influxdb-client writing to VictoriaMetrics'
``/api/v2/write``), InfluxDB 3 (its v2-compatible endpoint, also served by VictoriaMetrics) and
TimescaleDB (plain PostgreSQL 15). To keep the suite fast they all share one outage window: every
server is stopped at once, kept down for 60 s, and restarted on its data directory. Then each
service drains its backlog, is stopped with SIGTERM, and every reading of its local history must
be in its server exactly once, at its sample timestamp (VictoriaMetrics keeps milliseconds,
PostgreSQL microseconds, InfluxDB nanoseconds), with its values.

The helpers here are shared by ``tests/service/test_crash_recovery.py`` and
``tests/service/test_delivery_faults.py``.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import ServiceProcess, wait_until
from tests.servers import (
    MS,
    InfluxV1Server,
    PostgresServer,
    VictoriaMetricsServer,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]

OUTAGE_S = 60.0
MEASUREMENT = "environment"

# Fast enough that an outage piles up a real backlog, slow enough for two shared cores.
FAST = {
    "SENSOR__READ_INTERVAL": "0.2",
    "WRITER__FLUSH_INTERVAL": "0.5",
    "WRITER__BATCH_SIZE": "200",
    "STORAGE__COMMIT_INTERVAL": "0.5",
    "RETRY__BACKOFF_BASE": "0.5",
    "RETRY__BACKOFF_MAX": "2",
    "DATABASE__TIMEOUT": "3",
    "LOG__LEVEL": "info",
}


def service_env(settings: Mapping[str, str], run: str) -> dict[str, str]:
    """Environment overrides for a fast service writing readings tagged ``run=<run>``."""
    env = {f"FILAMENTCTL_{k}": v for k, v in {**FAST, **settings}.items()}
    # The CLI run against the stopped service validates settings too: sub-0.5 s reads are
    # valid only for the simulated sensor.
    env["FILAMENTCTL_SENSOR__TYPE"] = "simulated"
    env["FILAMENTCTL_DATA__MEASUREMENT"] = MEASUREMENT
    env["FILAMENTCTL_DATA__TAGS"] = json.dumps({"run": run})
    return env


def vm_settings(url: str) -> dict[str, str]:
    return {"DATABASE__TYPE": "victoriametrics", "DATABASE__VICTORIAMETRICS__URL": url}


def status_of(svc: ServiceProcess) -> dict[str, Any]:
    result = svc.cli("status", "--json")
    assert result.returncode == 0, result.stderr + svc.log()[-3000:]
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def storage_of(svc: ServiceProcess) -> dict[str, Any]:
    storage: dict[str, Any] = status_of(svc)["storage"]
    return storage


def history_of(svc: ServiceProcess) -> list[dict[str, Any]]:
    """The service's local history (through the socket, or the file when it is stopped)."""
    result = svc.cli("history", "--format", "json", "--since", "1d")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert rows and all("time_ns" in r and "seq" in r for r in rows)
    return rows


def flush(svc: ServiceProcess, timeout: float = 90.0) -> dict[str, Any]:
    """``filamentctl flush --json``; asserts that the backlog was delivered.

    ``remaining`` counts only the backlog as it stood when the flush started: the service keeps
    sampling (and committing) during the flush, and those readings are not "remaining".
    """
    result = svc.cli("flush", "--json", "--timeout", str(timeout), timeout=timeout + 30)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{svc.log()[-3000:]}"
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["ok"] and data["remaining"] == 0, data
    return data


def sigterm(svc: ServiceProcess) -> None:
    code = svc.signal(signal.SIGTERM)
    assert code == 0, svc.log()[-3000:]


def wait_delivered(svc: ServiceProcess, at_least: int = 1, timeout: float = 30.0) -> None:
    wait_until(
        lambda: storage_of(svc)["written"] >= at_least,
        timeout=timeout,
        interval=0.3,
        what=f"first deliveries of {svc.home}",
    )


@dataclass
class Audit:
    """How the readings of a local history fared in a server."""

    backend: str
    readings: int = 0
    lost: list[int] = field(default_factory=list)  # seqs not found at their timestamp
    duplicated: list[int] = field(default_factory=list)  # seqs stored more than once
    wrong_value: list[int] = field(default_factory=list)  # found, but another reading's values

    def assert_exactly_once(self) -> None:
        assert self.readings > 0, f"{self.backend}: empty history"
        assert (self.lost, self.duplicated, self.wrong_value) == ([], [], []), (
            f"{self.backend}: of {self.readings} readings, lost {len(self.lost)} "
            f"{self.lost[:10]}, duplicated {len(self.duplicated)} {self.duplicated[:10]}, "
            f"wrong values {self.wrong_value[:10]}"
        )


def audit(
    backend: str,
    rows: list[dict[str, Any]],
    stored: list[tuple[int, float]],
    resolution_ns: int,
) -> Audit:
    """Compare history ``rows`` with ``stored`` (time_ns truncated to ``resolution_ns``,
    temperature_c) points of one series."""
    copies = Counter(t for t, _ in stored)
    values = dict(stored)
    result = Audit(backend, len(rows))
    for row in rows:
        key = row["time_ns"] // resolution_ns * resolution_ns
        n = copies.get(key, 0)
        if n == 0:
            result.lost.append(row["seq"])
            continue
        if n > 1:
            result.duplicated.append(row["seq"])
        if abs(values[key] - row["temperature_c"]) > 1e-6:
            result.wrong_value.append(row["seq"])
    return result


def vm_audit(
    backend: str, vm: VictoriaMetricsServer, run: str, rows: list[dict[str, Any]]
) -> Audit:
    points = vm.points(MEASUREMENT, {"run": run}, expected=len(rows), timeout=30.0)
    stored = [(t, f["temperature_c"]) for t, f in points if "temperature_c" in f]
    return audit(backend, rows, stored, MS)


def influx_audit(influx: InfluxV1Server, db: str, run: str, rows: list[dict[str, Any]]) -> Audit:
    stored = [
        (row.time_ns, row.fields["temperature_c"])
        for row in influx.rows(db, MEASUREMENT)
        if row.tags.get("run") == run
    ]
    return audit("influxdb_v1", rows, stored, 1)


def postgres_audit(
    pg: PostgresServer, db: str, table: str, run: str, rows: list[dict[str, Any]]
) -> Audit:
    # extract(epoch) is numeric in PostgreSQL 15: exact microseconds.
    out = pg.psql(
        f'SELECT (extract(epoch FROM time) * 1000000)::bigint, temperature_c FROM "{table}"'
        f" WHERE measurement = '{MEASUREMENT}' AND tags->>'run' = '{run}'",
        db,
    )
    stored = []
    for line in out.splitlines():
        if line.strip():
            us, temp = line.split("|")
            stored.append((int(us) * 1000, float(temp)))
    return audit("timescaledb", rows, stored, 1000)


@dataclass
class Case:
    backend: str
    svc: ServiceProcess
    check: Callable[[list[dict[str, Any]]], Audit]


@pytest.fixture
def servers_restarted(
    victoriametrics_outage: VictoriaMetricsServer,
    influxdb_v1_server: InfluxV1Server,
    postgres_server: PostgresServer,
) -> Iterator[tuple[VictoriaMetricsServer, InfluxV1Server, PostgresServer]]:
    """The shared servers, each running again after the test whatever happened."""
    servers = (victoriametrics_outage, influxdb_v1_server, postgres_server)
    yield servers
    for server in servers:
        if not server.running:
            server.start()


def test_a_60s_outage_of_every_history_backend_loses_nothing_and_duplicates_nothing(
    servers_restarted: tuple[VictoriaMetricsServer, InfluxV1Server, PostgresServer],
    unique_name: str,
) -> None:
    vm, influx, pg = servers_restarted
    db = pg.create_database(unique_name)
    table = f"{unique_name}_readings"
    influx_db = unique_name
    runs = {b: f"{unique_name}_{b}" for b in ("vm", "v1", "v2", "v3", "ts")}
    specs: dict[str, tuple[str, dict[str, str], Callable[[list[dict[str, Any]]], Audit]]] = {
        "victoriametrics": (
            runs["vm"],
            vm_settings(vm.url),
            lambda rows: vm_audit("victoriametrics", vm, runs["vm"], rows),
        ),
        "influxdb_v1": (
            runs["v1"],
            {
                "DATABASE__TYPE": "influxdb_v1",
                "DATABASE__INFLUXDB_V1__URL": influx.url,
                "DATABASE__INFLUXDB_V1__DATABASE": influx_db,
            },
            lambda rows: influx_audit(influx, influx_db, runs["v1"], rows),
        ),
        "influxdb_v2": (
            runs["v2"],
            {
                "DATABASE__TYPE": "influxdb_v2",
                "DATABASE__INFLUXDB_V2__URL": vm.url,
                "DATABASE__INFLUXDB_V2__ORG": "shop",
                "DATABASE__INFLUXDB_V2__BUCKET": "filament",
                "DATABASE__INFLUXDB_V2__TOKEN": "not-checked-by-vm",
            },
            lambda rows: vm_audit("influxdb_v2", vm, runs["v2"], rows),
        ),
        "influxdb_v3": (
            runs["v3"],
            {
                "DATABASE__TYPE": "influxdb_v3",
                "DATABASE__INFLUXDB_V3__URL": vm.url,
                "DATABASE__INFLUXDB_V3__DATABASE": "filament",
                "DATABASE__INFLUXDB_V3__TOKEN": "not-checked-by-vm",
            },
            lambda rows: vm_audit("influxdb_v3", vm, runs["v3"], rows),
        ),
        "timescaledb": (
            runs["ts"],
            {
                "DATABASE__TYPE": "timescaledb",
                "DATABASE__TIMESCALEDB__URL": pg.url(db),
                "DATABASE__TIMESCALEDB__TABLE": table,
            },
            lambda rows: postgres_audit(pg, db, table, runs["ts"], rows),
        ),
    }
    cases = [
        Case(backend, ServiceProcess(env=service_env(settings, run)), check)
        for backend, (run, settings, check) in specs.items()
    ]
    try:
        for case in cases:
            case.svc.start(wait=False)
        for case in cases:
            wait_until(case.svc._ready, timeout=30, what=f"{case.backend} service")
        for case in cases:
            wait_delivered(case.svc)

        # The outage: every server down at once, for one shared 60 s window.
        for server in (vm, influx, pg):
            server.stop()
        down_at = time.monotonic()
        time.sleep(OUTAGE_S / 2)
        during = {case.backend: storage_of(case.svc) for case in cases}
        time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
        for server in (vm, influx, pg):
            server.start()

        for case in cases:  # the outage was real: the backlog grew and nothing was acked
            st = during[case.backend]
            assert st["connected"] is False and st["backlog"] > 50, (case.backend, st)
            assert st["last_error"], (case.backend, st)

        for case in cases:
            flush(case.svc)
        for case in cases:
            sigterm(case.svc)
        failures = []
        for case in cases:
            rows = history_of(case.svc)  # the file, now that the service has stopped
            # 60 s at 0.2 s: the history spans the outage.
            assert len(rows) > OUTAGE_S / 0.2 / 2, (case.backend, len(rows))
            result = case.check(rows)
            if result.lost or result.duplicated or result.wrong_value:
                failures.append(result)
        for result in failures:
            result.assert_exactly_once()
    finally:
        for case in cases:
            case.svc.cleanup()
