"""THE outage test: a 60 s outage of the real database loses nothing and duplicates nothing.

One real ``filamentctl run --simulate`` process per history-storing backend, sampling every
0.2 s: VictoriaMetrics, InfluxDB 1.x, InfluxDB 2.x (influxdb-client writing to VictoriaMetrics'
``/api/v2/write``), InfluxDB 3 (its v2-compatible endpoint, also served by VictoriaMetrics) and
TimescaleDB (plain PostgreSQL 15). To keep the suite fast they all share one outage window: every
server is stopped at once, kept down for 60 s, and restarted on its data directory. Then each
service drains its backlog, is stopped with SIGTERM, and every reading of its local history must
be in its server exactly once, at its sample timestamp (VictoriaMetrics keeps milliseconds,
PostgreSQL microseconds, InfluxDB nanoseconds), with its values.

The service and the audits are the shared rig in ``tests/delivery_rig.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.delivery_rig import (
    Audit,
    flush,
    history_of,
    influx_audit,
    postgres_audit,
    service_env,
    sigterm,
    storage_of,
    vm_audit,
    vm_settings,
    wait_delivered,
)
from tests.helpers import ServiceProcess, wait_until
from tests.servers import (
    InfluxV1Server,
    PostgresServer,
    VictoriaMetricsServer,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]

OUTAGE_S = 60.0


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
