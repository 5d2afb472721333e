"""Shared fixtures: real database servers on loopback, started once per test session.

Servers start lazily (only when a test asks for one) and are shared by the whole session, so a
test must keep to its own database / measurement / tag values: ``unique_name`` gives one.
A missing server binary skips the tests that need it, or fails them when ``CI=true``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest

from tests.servers import (
    InfluxV1Server,
    MosquittoServer,
    OpenBaoServer,
    PostgresServer,
    PushgatewayServer,
    VictoriaMetricsServer,
)


@pytest.fixture(scope="session")
def influxdb_v1_server() -> Iterator[InfluxV1Server]:
    with InfluxV1Server() as server:
        yield server


@pytest.fixture(scope="session")
def victoriametrics_server() -> Iterator[VictoriaMetricsServer]:
    """Shared VictoriaMetrics. A test that stops it should use ``victoriametrics_outage``."""
    with VictoriaMetricsServer() as server:
        yield server


@pytest.fixture
def victoriametrics_outage(
    victoriametrics_server: VictoriaMetricsServer,
) -> Iterator[VictoriaMetricsServer]:
    """The shared VictoriaMetrics for a test that stops and starts it: restarted afterwards."""
    yield victoriametrics_server
    if not victoriametrics_server.running:
        victoriametrics_server.start()


@pytest.fixture(scope="session")
def pushgateway_server() -> Iterator[PushgatewayServer]:
    with PushgatewayServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def openbao_server() -> Iterator[OpenBaoServer]:
    with OpenBaoServer() as server:
        yield server


@pytest.fixture(scope="session")
def mosquitto_server() -> Iterator[MosquittoServer]:
    """A shared anonymous MQTT broker. Tests keep to their own topics (``unique_name``)."""
    with MosquittoServer() as server:
        yield server


#: The one user the secured broker knows (test-only credentials).
MQTT_USER, MQTT_PASSWORD = "dryer", "c0rrect-h0rse-mqtt"


@pytest.fixture(scope="session")
def mosquitto_secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A shared broker that wants ``MQTT_USER``/``MQTT_PASSWORD``, on a plain and a TLS
    listener (``tls_url``; its CA is ``server.tls.ca_file``)."""
    from tests.faultproxy import make_certificates

    certificates = make_certificates(tmp_path_factory.mktemp("mqtt-tls"))
    with MosquittoServer(users={MQTT_USER: MQTT_PASSWORD}, tls=certificates) as server:
        yield server


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A short name unique to this test (letters, digits, underscores) for databases and tags."""
    node = request.node.nodeid
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    digest = hashlib.sha1(node.encode()).hexdigest()[:8]
    return f"t_{base}_{digest}"
