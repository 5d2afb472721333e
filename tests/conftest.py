"""Shared fixtures: an isolated environment for every test, and real database servers on
loopback, started once per test session.

Servers start lazily (only when a test asks for one) and are shared by the whole session, so a
test must keep to its own database / measurement / tag values: ``unique_name`` gives one.
A missing server binary skips the tests that need it, or fails them when ``CI=true``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, MutableMapping

import pytest

from tests.servers import (
    InfluxV1Server,
    MosquittoServer,
    OpenBaoServer,
    PostgresServer,
    PushgatewayServer,
    VictoriaMetricsServer,
)

#: Environment variables filamentctl (or Vault's client, or the XDG directory rules) reads: a
#: developer's own settings must not leak into tests or the services they start.
PRODUCT_VARIABLES = ("FILAMENTCTL_", "VAULT_", "XDG_")
#: Knobs of the test suite itself, which change how tests run, not what filamentctl does: kept.
SUITE_KNOBS = frozenset(
    {"FILAMENTCTL_UPDATE_SNAPSHOTS", "FILAMENTCTL_FUZZ_EXAMPLES", "FILAMENTCTL_STORM_SEED"}
)


def take_product_variables(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove the product's variables from ``environ``; return what they were."""
    taken = {
        name: value
        for name, value in environ.items()
        if name.startswith(PRODUCT_VARIABLES) and name not in SUITE_KNOBS
    }
    for name in taken:
        del environ[name]
    return taken


@pytest.fixture(scope="session", autouse=True)
def isolated_session_environment() -> Iterator[None]:
    """No product variable for the session's shared servers and module-wide services either
    (they start before the first test's own isolation); restored at the end."""
    saved = take_product_variables(os.environ)
    yield
    take_product_variables(os.environ)
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def isolated_environment() -> Iterator[None]:
    """Every test starts without FILAMENTCTL_*, VAULT_* and XDG_* variables (a test that needs
    one sets it, e.g. with ``monkeypatch.setenv``); whatever it leaves behind is undone."""
    saved = take_product_variables(os.environ)
    yield
    take_product_variables(os.environ)
    os.environ.update(saved)


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
