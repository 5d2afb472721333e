"""``filamentctl web`` start-up: what it refuses (one line, documented exit code) and TLS."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateways.webgateway import (
    TOKEN,
    WebGateway,
    cert_pair,
    cli_ok,
    port_is_free,
    service_env,
)
from tests.helpers import REPO, ServiceProcess, short_home, wait_until
from tests.servers import free_port, unavailable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokenless() -> Iterator[ServiceProcess]:
    """A service with no web.token configured."""
    env = service_env()
    del env["FILAMENTCTL_WEB__TOKEN"]
    service = ServiceProcess(env=env).start()
    yield service
    service.cleanup()


def run_gateway(gateway: WebGateway, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gateway.command(), env=gateway.env, capture_output=True, text=True, timeout=timeout
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("filamentctl: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_network_address_without_a_token_is_refused_with_exit_2(
    tokenless: ServiceProcess,
) -> None:
    port = free_port()
    proc = run_gateway(WebGateway(tokenless, listen=f"0.0.0.0:{port}"))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "without web.token" in line and "config set web.token" in line
    assert port_is_free(port)


def test_web_listen_from_the_service_is_used_and_checked_too(tmp_path: Path) -> None:
    env = service_env(web__listen=f"0.0.0.0:{free_port()}")
    del env["FILAMENTCTL_WEB__TOKEN"]
    service = ServiceProcess(env=env).start()
    try:
        gateway = WebGateway(service)
        command = [a for a in gateway.command() if a not in ("--listen", gateway.listen)]
        proc = subprocess.run(command, env=gateway.env, capture_output=True, text=True, timeout=30)
    finally:
        service.cleanup()
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0" in one_error_line(proc)


def test_loopback_without_a_token_serves_reading_but_no_control(tokenless: ServiceProcess) -> None:
    web = WebGateway(tokenless).start()
    try:
        assert web.get("/api/status").status == 200
        refused = web.post("/api/heater", {"mode": "on"}, token=TOKEN)
        assert refused.status == 403
        assert "web.token is not set" in refused.json()["error"]["message"]
        assert web.post("/api/login", {"token": TOKEN}).status == 403
        assert web.get("/api/session").json()["control_enabled"] is False
    finally:
        web.stop()


def test_a_malformed_listen_address_is_a_usage_error(tokenless: ServiceProcess) -> None:
    proc = run_gateway(WebGateway(tokenless, listen="127.0.0.1"))
    assert proc.returncode == 2
    assert "invalid --listen '127.0.0.1'" in one_error_line(proc)


def test_without_a_service_it_exits_3() -> None:
    home = short_home()
    try:
        gateway = WebGateway(ServiceProcess(home=home))
        proc = run_gateway(gateway)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert proc.returncode == 3
    assert "no filamentctl service is running" in one_error_line(proc)


def test_a_port_in_use_exits_1(tokenless: ServiceProcess) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_gateway(WebGateway(tokenless, listen=f"127.0.0.1:{port}"))
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in one_error_line(proc)


def test_help_shows_examples() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "filamentctl", "web", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0
    assert "--listen ADDRESS" in proc.stdout
    assert "Examples:" in proc.stdout
    assert "filamentctl web --listen 0.0.0.0:8780" in " ".join(proc.stdout.split())


def _need_openssl() -> None:
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed (apt install openssl)")


def test_tls_serves_https_with_a_secure_cookie(tmp_path: Path) -> None:
    _need_openssl()
    cert, key = cert_pair(tmp_path)
    env = service_env(web__tls_cert_file=str(cert), web__tls_key_file=str(key))
    service = ServiceProcess(env=env).start()
    web = WebGateway(service)
    web.tls_ca = str(cert)
    try:
        web.start()
        assert web.get("/api/status").status == 200
        login = web.post("/api/login", {"token": TOKEN})
        assert login.status == 200
        assert "Secure" in next(iter(login.cookies.values()))
        # Plain HTTP on the TLS port gets no answer.
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn.request("GET", "/api/status")
            conn.getresponse()
        conn.close()
    finally:
        web.stop()
        service.cleanup()


def test_unreadable_tls_files_exit_2(tmp_path: Path) -> None:
    env = service_env(
        web__tls_cert_file=str(tmp_path / "missing-cert.pem"),
        web__tls_key_file=str(tmp_path / "missing-key.pem"),
    )
    service = ServiceProcess(env=env).start()
    try:
        proc = run_gateway(WebGateway(service))
    finally:
        service.cleanup()
    assert proc.returncode == 2
    assert "cannot load the TLS certificate" in one_error_line(proc)


class BoxService(ServiceProcess):
    """A service for the box ``shelf-2`` (FILAMENTCTL_BOX): its socket is the box's own."""

    @property
    def socket(self) -> Path:
        return self.home / "boxes" / "shelf-2" / "run" / "filamentctl.sock"


def test_the_gateway_finds_a_named_box_and_shows_its_name() -> None:
    service = BoxService(env={**service_env(), "FILAMENTCTL_BOX": "shelf-2"}).start()
    web = WebGateway(service, explicit_socket=False)  # found through FILAMENTCTL_BOX alone
    try:
        web.start()
        assert web.get("/api/session").json()["box"] == "shelf-2"
        assert web.get("/api/status").status == 200
        login = web.post("/api/login", {"token": TOKEN})
        assert list(login.cookies) == ["filamentctl_shelf-2"]  # boxes on one host keep apart
    finally:
        web.stop()
        service.cleanup()


def test_sighup_reloads_the_settings_and_keeps_serving(tmp_path: Path) -> None:
    """`systemctl reload filamentctl-web` (SIGHUP): a new web.token applies, the gateway stays."""
    import signal

    env = service_env()
    env.pop("FILAMENTCTL_WEB__TOKEN")
    service = ServiceProcess(home=tmp_path / "h", env=env)
    service.env.pop("FILAMENTCTL_CONFIG_KEY", None)
    service.home.mkdir()
    cli_ok(service, "config", "init")
    old, new = "old-token-0123456789abcdef", "new-token-0123456789abcdef"
    assert service.cli("config", "set", "web.token", "-", input=old).returncode == 0
    service.start()
    web = WebGateway(service).start()
    try:
        assert web.post("/api/heater", {"mode": "off"}, token=old).status == 200
        assert service.cli("config", "set", "web.token", "-", input=new).returncode == 0
        assert web.proc is not None
        web.proc.send_signal(signal.SIGHUP)

        def new_token_works() -> bool:
            try:  # while it reloads, the port closes and opens again
                return web.post("/api/heater", {"mode": "off"}, token=new).status == 200
            except OSError:
                return False

        wait_until(new_token_works, timeout=30, what="the new token after SIGHUP")
        assert web.post("/api/heater", {"mode": "off"}, token=old).status == 401
        assert web.proc.poll() is None and "SIGHUP: reloading the settings" in web.log()
    finally:
        web.stop()
        service.cleanup()
