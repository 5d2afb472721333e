"""`run --debug` with secrets set (in the store and in the environment) never prints them.

Greps everything a user or a log collector could see: the service's stdout/stderr at debug level
(startup, deliveries to a real VictoriaMetrics, a live reload, shutdown), the CLI's output for
list/get/export/status, and the service's command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServiceProcess
from tests.servers import VictoriaMetricsServer

STORED_PASSWORD = "stored-pw-5d8c1b7e"
STORED_TOKEN = "stored-token-a71f0c33"
ENV_TOKEN = "env-token-93be4d10"
NEW_PASSWORD = "reloaded-pw-0e6f2a9c"
SECRETS = (STORED_PASSWORD, STORED_TOKEN, ENV_TOKEN, NEW_PASSWORD)


@pytest.fixture
def box() -> Iterator[ServiceProcess]:
    proc = ServiceProcess(args=("--simulate", "--debug"))
    yield proc
    proc.cleanup()


def test_run_debug_never_prints_a_secret(
    box: ServiceProcess, victoriametrics_server: VictoriaMetricsServer, unique_name: str
) -> None:
    outputs: list[str] = []

    def cli(*args: str, input: str | None = None) -> str:
        result = box.cli(*args, input=input)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)
        return result.stdout

    cli("config", "init")
    for key, value in (
        ("sensor.type", "simulated"),
        ("sensor.read_interval", "0.2"),
        ("storage.commit_interval", "0.2"),
        ("writer.flush_interval", "0.2"),
        ("data.measurement", unique_name),
        ("database.type", "victoriametrics"),
        ("database.victoriametrics.url", victoriametrics_server.url),
        ("database.victoriametrics.username", "writer"),
    ):
        cli("config", "set", key, value)
    cli("config", "set", "database.victoriametrics.password", "-", input=STORED_PASSWORD)
    cli("config", "set", "database.victoriametrics.token", "-", input=STORED_TOKEN)
    box.env["FILAMENTCTL_DATABASE__VICTORIAMETRICS__TOKEN"] = ENV_TOKEN

    box.start()
    assert box.proc is not None
    cmdline = Path(f"/proc/{box.proc.pid}/cmdline").read_bytes().decode(errors="replace")
    victoriametrics_server.points(unique_name, expected=3)  # deliveries happened
    # Once the service serves config.reload, this also reloads it (and swaps the sink) live.
    cli("config", "set", "database.victoriametrics.password", "-", input=NEW_PASSWORD)
    victoriametrics_server.points(unique_name, expected=6)
    for args in (
        ("config", "list", "--all"),
        ("config", "list", "--json"),
        ("config", "get", "database.victoriametrics.password"),
        ("config", "get", "database.victoriametrics.token", "--json"),
        ("config", "export"),
        ("config", "export", "--all"),
        ("status", "--json"),
    ):
        cli(*args)
    box.stop()
    log = box.log()
    assert "DEBUG" in log  # the service really logged at debug level

    for secret in SECRETS:
        assert secret not in log, f"service log leaks {secret}"
        assert secret not in cmdline
        for out in outputs:
            assert secret not in out, f"CLI output leaks {secret}: {out[:200]}"
