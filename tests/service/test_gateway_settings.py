"""``gateway.settings``: a gateway gets its own settings, and only root or the service user may."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from filamentctl.core import schema
from tests.helpers import in_process_service, need_another_user, raw_request, settings

REQUEST = b'{"id":1,"op":"gateway.settings","args":{"gateway":"mqtt"}}\n'


def test_the_service_user_gets_only_that_gateways_keys() -> None:
    with in_process_service() as service:
        service.settings["mqtt.url"] = "mqtt://127.0.0.1:1883"
        service.settings["web.listen"] = "127.0.0.1:8780"
        reply = raw_request(service.paths.socket, REQUEST)[0]
    assert reply["ok"], reply
    result = reply["result"]
    assert result["box"] == "default"
    mqtt_keys = {k for k in schema.SCHEMA if k.startswith("mqtt.")}
    assert mqtt_keys and set(result["settings"]) == mqtt_keys  # every mqtt.* key, nothing else
    assert result["settings"]["mqtt.url"] == "mqtt://127.0.0.1:1883"


@pytest.mark.parametrize(
    "args",
    ['{"gateway":"ftp"}', "{}", '{"gateway":"mqtt","extra":1}'],
)
def test_bad_arguments_are_refused(args: str) -> None:
    with in_process_service() as service:
        line = b'{"id":1,"op":"gateway.settings","args":' + args.encode() + b"}\n"
        reply = raw_request(service.paths.socket, line)[0]
    assert reply["error"]["code"] == "invalid_args"


def test_another_user_in_the_socket_group_is_refused() -> None:
    need_another_user()
    with in_process_service(settings(sensor__read_interval=0.1)) as service:
        sock: Path = service.paths.socket
        # Let uid 65534 reach the socket, as a member of the service's group would.
        for d in (sock.parent, sock.parent.parent):
            os.chmod(d, 0o755)
        os.chmod(sock, 0o666)
        code = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);s.sendall(sys.argv[2].encode())\n"
            "print(s.makefile().readline())"
        )
        out = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
                str(sock),
                REQUEST.decode(),
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert '"permission_denied"' in out.stdout, out.stdout + out.stderr
    assert "mqtt" not in out.stdout.split('"message"')[0]  # no settings leaked
