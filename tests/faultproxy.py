"""A scriptable HTTP proxy on loopback for testing how sinks handle server answers.

Put it between a sink and a real server; each request takes the next scripted action (then the
default, normally "forward"), and everything the proxy saw is recorded::

    with FaultProxy(vm.url) as proxy:
        proxy.script(respond(429, headers={"Retry-After": "7"}), forward())
        sink = victoriametrics.create({..., "database.victoriametrics.url": proxy.url})
        assert sink.write(batch).retry_after_s == 7
        assert proxy.seen[0].path == "/write"

Actions: :func:`forward` (pass through to the upstream; ``close_after`` then silently closes the
kept-alive connection, like a server's idle timeout racing the next request), :func:`respond`
(answer with a status, body and headers without forwarding), :func:`drop` (close the connection
without answering), :func:`stall` (hold the request unanswered, then drop it).

With ``tls=make_certificates(dir)`` it serves HTTPS with a throw-away CA (``openssl`` needed), for
testing certificate verification.

Bounded: sockets time out, a stall ends when the proxy stops, and the proxy stops by itself after
``lifetime_s`` (default 120 s) even if a test forgets to.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

# Headers that describe one connection, not the message: never passed through.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # trust this to verify the proxy
    cert_file: Path
    key_file: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with ``openssl``.

    Skips the test when ``openssl`` is missing (fails it when ``CI=true``).
    """
    from tests.servers import unavailable

    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("openssl is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    # The extensions a strict verifier insists on (Python 3.13 sets VERIFY_X509_STRICT): key
    # usage on the CA and on the leaf, and key identifiers linking them.
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = [
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    ]  # fmt: skip
    steps = [
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=fc CA"]
        + ca_ext,
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"]
        + ["-out", cert, "-days", "2", "-extfile", ext],
    ]
    for step in steps:
        subprocess.run(
            [openssl, *(str(arg) for arg in step)],
            check=True,
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    return Certificates(ca, cert, key)


@dataclass(frozen=True)
class Action:
    kind: Literal["forward", "respond", "drop", "stall"]
    status: int = 0
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    close_after: bool = False
    seconds: float = 0.0


def forward(*, close_after: bool = False) -> Action:
    """Pass the request to the upstream and its answer back."""
    return Action("forward", close_after=close_after)


def respond(
    status: int,
    body: str | bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    close_after: bool = False,
) -> Action:
    """Answer with ``status``, ``body`` and ``headers``; the upstream never sees the request."""
    data = body.encode() if isinstance(body, str) else body
    return Action("respond", status, data, tuple((headers or {}).items()), close_after)


def drop() -> Action:
    """Read the request, then close the connection without a word."""
    return Action("drop")


def stall(seconds: float) -> Action:
    """Hold the request unanswered for ``seconds`` (or until the proxy stops), then drop it."""
    return Action("stall", seconds=seconds)


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it, and what it did with it."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes
    connection: int  # client port: equal values mean one reused keep-alive connection
    action: str
    query: dict[str, list[str]] = field(default_factory=dict)
    received_ns: int = 0  # wall clock (time.time_ns) when the whole request had arrived

    @property
    def route(self) -> str:
        """The path without the query string."""
        return self.path.split("?", 1)[0]


class FaultProxy:
    """The proxy. ``upstream=None`` means there is nothing to forward to: the default action is
    then ``respond(204)``, which suits tests that only need to see what a client sent.
    ``rewrite`` maps the request path before forwarding (e.g. a cluster path to a single node's).
    """

    def __init__(
        self,
        upstream: str | None = None,
        *,
        default: Action | None = None,
        rewrite: Callable[[str], str] | None = None,
        lifetime_s: float = 120.0,
        upstream_timeout_s: float = 10.0,
        tls: Certificates | None = None,
    ) -> None:
        self.upstream = urllib.parse.urlsplit(upstream) if upstream else None
        if default is None:
            default = forward() if upstream else respond(204)
        self.default = default
        self.rewrite = rewrite
        self.lifetime_s = lifetime_s
        self.upstream_timeout_s = upstream_timeout_s
        self.tls = tls
        self._script: deque[Action] = deque()
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.url = ""

    # -- scripting ----------------------------------------------------------------------------
    def script(self, *actions: Action) -> None:
        """Queue actions for the next requests, in order."""
        with self._lock:
            self._script.extend(actions)

    @property
    def seen(self) -> list[Seen]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._seen)

    def _next_action(self) -> Action:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
            # A client that refuses our certificate fails the handshake in accept(), which the
            # server loop shrugs off; then it keeps serving.
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.url = f"https://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"faultproxy-{port}"
        self._thread.start()
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); stalled requests are released and dropped."""
        self.stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, like the real servers
    timeout = 30  # an idle client connection ends by itself

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; everything is in proxy.seen

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        action = self.proxy._next_action()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.proxy._record(
            Seen(
                self.command,
                self.path,
                dict(self.headers.items()),
                body,
                self.client_address[1],
                action.kind,
                query,
                time.time_ns(),
            )
        )
        if action.kind == "stall":
            self.proxy.stopping.wait(action.seconds)
            action = drop()
        if action.kind == "drop":
            self._hang_up()
            return
        if action.kind == "respond":
            self._answer(action.status, dict(action.headers), action.body)
        else:
            self._forward(body)
        if action.close_after:
            # No "Connection: close" was sent: the client believes the connection is reusable.
            self._hang_up()

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, body: bytes) -> None:
        upstream = self.proxy.upstream
        if upstream is None:
            self._answer(502, {}, b"fault proxy: no upstream configured")
            return
        path = self.path if self.proxy.rewrite is None else self.proxy.rewrite(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn = http.client.HTTPConnection(
            upstream.hostname or "127.0.0.1",
            upstream.port or 80,
            timeout=self.proxy.upstream_timeout_s,
        )
        try:
            conn.request(self.command, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self._answer(resp.status, dict(resp.getheaders()), data)
        except OSError as exc:
            self._answer(502, {}, f"fault proxy: upstream unreachable: {exc}".encode())
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle
