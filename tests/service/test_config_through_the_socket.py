"""``config.get`` / ``config.set``: the running service's own configuration, through its socket.

Changing it is an administrator's act (a key like ``retry.alert_command`` runs a program as the
service user): only root or the service's own user, by the socket's peer credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import ServiceProcess, need_another_user, raw_request, wait_until


@pytest.fixture
def box() -> Any:
    # A home in /tmp itself (short_home): another user can reach a socket there once allowed.
    svc = ServiceProcess(env={"FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2"})
    svc.env.pop("FILAMENTCTL_CONFIG_KEY", None)
    svc.home.mkdir(exist_ok=True)
    assert svc.cli("config", "init").returncode == 0
    svc.start()
    yield svc
    svc.cleanup()


def request(svc: ServiceProcess, op: str, args: dict[str, Any]) -> dict[str, Any]:
    line = json.dumps({"id": 1, "op": op, "args": args}).encode() + b"\n"
    reply: dict[str, Any] = raw_request(svc.socket, line, timeout=20)[0]
    return reply


def test_config_set_stores_applies_and_says_which_configuration(box: ServiceProcess) -> None:
    reply = request(box, "config.set", {"values": {"heater.max_temp_c": "30"}})
    assert reply["ok"], reply
    result = reply["result"]
    assert result["config"] == str(box.home / "config" / "config.db")
    assert result["set"] == ["heater.max_temp_c"]
    assert "heater.max_temp_c" in result["reload"]["applied"]
    status = json.loads(box.cli("status", "--json").stdout)
    assert status["heater"]["thresholds"]["max_temp_c"] == 30.0
    # Stored, not only applied: a restart keeps it.
    got = request(box, "config.get", {"keys": ["heater.max_temp_c"]})["result"]
    assert got["values"] == {"heater.max_temp_c": 30.0} and "heater.max_temp_c" in got["stored"]


def test_values_are_validated_together_and_a_bad_pair_changes_nothing(box: ServiceProcess) -> None:
    ok = {"heater.min_temp_c": "45", "heater.max_temp_c": "50", "heater.cutoff_temp_c": "70"}
    assert request(box, "config.set", {"values": ok})["ok"]
    bad = request(box, "config.set", {"values": {"heater.min_temp_c": "60"}})
    assert bad["error"]["code"] == "invalid_args"
    assert "heater.min_temp_c" in bad["error"]["message"]
    values = request(box, "config.get", {"keys": ["heater.min_temp_c"]})["result"]["values"]
    assert values == {"heater.min_temp_c": 45.0}


def test_secrets_are_hidden_when_read_back(box: ServiceProcess) -> None:
    secret = "s3cret-token-value-123"
    args = {"values": {"database.victoriametrics.token": secret}}
    assert request(box, "config.set", args)["ok"]
    reply = request(box, "config.get", {"keys": ["database.victoriametrics.token"]})
    assert reply["result"]["values"] == {"database.victoriametrics.token": "(hidden)"}
    assert secret not in box.log()


def test_another_member_of_the_socket_group_may_read_but_not_change(box: ServiceProcess) -> None:
    need_another_user()
    for d in (box.socket.parent, box.home):
        os.chmod(d, 0o755)
    os.chmod(box.socket, 0o666)
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);s.sendall(sys.argv[2].encode())\n"
        "print(s.makefile().readline())"
    )

    def as_nobody(op: str, args: dict[str, Any]) -> dict[str, Any]:
        line = json.dumps({"id": 1, "op": op, "args": args}) + "\n"
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
            + ["-c", code, str(box.socket), line],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.stdout.strip(), out.stderr
        reply: dict[str, Any] = json.loads(out.stdout)
        return reply

    denied = as_nobody("config.set", {"values": {"heater.max_temp_c": "30"}})
    assert denied["error"]["code"] == "permission_denied"
    assert as_nobody("config.get", {"keys": ["heater.max_temp_c"]})["ok"]
    wait_until(lambda: "may not change the running service's configuration" in box.log())
    status = json.loads(box.cli("status", "--json").stdout)
    assert status["heater"]["thresholds"]["max_temp_c"] == 22.0  # unchanged
