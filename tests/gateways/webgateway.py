"""Test plumbing for the web gateway: the real ``filamentctl web`` process and a small HTTP client.

:class:`WebGateway` runs ``python -m filamentctl --socket SOCK web --listen 127.0.0.1:PORT`` on
a free loopback port against a :class:`tests.helpers.ServiceProcess`, without any ``web.*``
environment of its own: its settings (token, limits) come from the service, as in production.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import REPO, ServiceProcess, wait_until
from tests.servers import free_port

TOKEN = "test-token-0123456789abcdef"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class WebGateway:
    """``filamentctl web`` as a child process, talking to ``service``."""

    def __init__(
        self,
        service: ServiceProcess,
        listen: str | None = None,
        args: tuple[str, ...] = (),
        explicit_socket: bool = True,
    ) -> None:
        self.service = service
        self.explicit_socket = explicit_socket
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.args = args
        self.log_path = service.home / f"web-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls_ca: str | None = None

    @property
    def env(self) -> dict[str, str]:
        # No FILAMENTCTL_WEB__* here: the gateway must take its settings from the service.
        return {k: v for k, v in self.service.env.items() if not k.startswith("FILAMENTCTL_WEB__")}

    def command(self) -> list[str]:
        socket_args = ["--socket", str(self.service.socket)] if self.explicit_socket else []
        return [
            sys.executable,
            "-m",
            "filamentctl",
            *socket_args,
            "web",
            "--listen",
            self.listen,
            *self.args,
        ]

    def start(self) -> WebGateway:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        log.close()
        wait_until(self._ready, timeout=30, what=f"the web gateway on port {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"web gateway exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.get("/api/session").status == 200
        except OSError:
            return False

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    # -- HTTP -----------------------------------------------------------------------------------
    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        if self.tls_ca:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        token: str | None = None,
        cookie: str | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            hdrs["Cookie"] = cookie
        conn = self.connection()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        cookies = {}
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookies[name] = rest
        return Reply(resp.status, resp.headers, payload, cookies)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def login(self, token: str = TOKEN) -> tuple[str, str]:
        """Log in like the page does; returns (Cookie header value, CSRF token)."""
        reply = self.post("/api/login", {"token": token})
        assert reply.status == 200, reply.body
        (name, value), *_ = reply.cookies.items()
        return f"{name}={value.split(';', 1)[0]}", reply.json()["csrf_token"]

    @contextlib.contextmanager
    def events(self, token: str | None = None, timeout: float = 10.0) -> Iterator[EventStream]:
        conn = self.connection(timeout)
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request("GET", "/api/events", headers=headers)
        resp = conn.getresponse()
        try:
            yield EventStream(resp)
        finally:
            conn.close()


class EventStream:
    """Reads server-sent events off a response, one ``(event, data)`` at a time."""

    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers

    def next(self) -> tuple[str, Any]:
        """The next event; raises TimeoutError (socket timeout) when none comes."""
        name, data = "message", ""
        while True:
            line = self.resp.fp.readline()
            if not line:
                raise EOFError("the event stream ended")
            text = line.decode().rstrip("\r\n")
            if text == "":
                if data:
                    return name, json.loads(data)
                name, data = "message", ""
                continue
            if text.startswith(":") or text.startswith("retry:"):
                continue
            key, _, value = text.partition(": ")
            if key == "event":
                name = value
            elif key == "data":
                data += value

    def until(self, wanted: str, limit: int = 1000) -> Any:
        """Data of the first ``wanted`` event (skipping others)."""
        for _ in range(limit):
            name, data = self.next()
            if name == wanted:
                return data
        raise AssertionError(f"no {wanted!r} event in {limit} events")


def service_env(**settings: str) -> dict[str, str]:
    """Service environment: a fast simulated box with both relays and the test token."""
    env = {
        "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
        "FILAMENTCTL_HEATER__ENABLED": "true",
        "FILAMENTCTL_FAN__ENABLED": "true",
        "FILAMENTCTL_WEB__TOKEN": TOKEN,
    }
    for name, value in settings.items():
        env[f"FILAMENTCTL_{name.upper()}"] = value
    return env


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def status_json(service: ServiceProcess) -> dict[str, Any]:
    """``filamentctl status --json``, the CLI's view, through the real CLI."""
    proc = service.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def cli_ok(service: ServiceProcess, *args: str) -> str:
    proc = service.cli(*args)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


def cert_pair(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), for the TLS test."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
