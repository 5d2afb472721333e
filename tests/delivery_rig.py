"""A real service delivering to real servers, as the delivery tests drive and audit it.

``service_env`` configures a fast ``filamentctl run --simulate`` (see :data:`FAST`) whose readings
are tagged with a run name; the other helpers read its status, history and flush through the CLI
the way a user would, and :class:`Audit` compares its local history with what a server stored.
Used by the outage, crash-recovery and delivery-fault tests.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import ServiceProcess, wait_until
from tests.servers import MS, InfluxV1Server, PostgresServer, VictoriaMetricsServer

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
