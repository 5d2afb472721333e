"""A small HTTP client for the line-protocol sinks, over stdlib ``http.client``.

One keep-alive connection per sink, reopened when the server dropped it; a timeout on connect and
on every read; TLS verified by default (optionally against a CA file); basic or bearer auth sent
as a header so credentials never appear in URLs, messages or :meth:`HttpClient.describe`.

Failures never raise out of :meth:`HttpClient.write`: a network error becomes ``RETRY`` with a
one-line message, a status goes through :func:`~filamentctl.core.outcome.classify_http`, and a
``Retry-After`` header through :func:`~filamentctl.core.outcome.parse_retry_after`.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from filamentctl.core.lineprotocol import LineEncoder, LineProtocolError
from filamentctl.core.outcome import ACKED, Outcome, WriteResult, classify_http, parse_retry_after
from filamentctl.core.reading import ReadingRow
from filamentctl.core.redact import Redactor
from filamentctl.errors import ConfigError

# Enough of an error body to explain it; the rest is drained and thrown away.
_MAX_BODY = 64 * 1024
_MAX_MESSAGE = 300
_MAX_DETAIL = 160  # of a server's error body, after masking
# A reused keep-alive connection the server closed while idle fails like this before the request
# reached it, so sending once more on a fresh connection cannot duplicate anything.
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


class TransportError(Exception):
    """The request got no HTTP answer (refused, timed out, TLS, DNS...); message is one line."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name, or None."""
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None

    def error_text(self) -> str:
        """The server's explanation in one line: the JSON ``error``/``message`` or the body."""
        text = self.body.decode("utf-8", "replace").strip()
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("error", "message", "msg"):
                if isinstance(data.get(key), str):
                    text = data[key]
                    break
        return text


@dataclass(slots=True)
class _Pending:
    """A request sent by start_request whose answer was not read yet."""

    method: str
    url: str  # prefix + path
    body: bytes | None
    headers: dict[str, str]
    reused: bool  # sent on a connection that had carried a request before (may be stale)
    error: OSError | http.client.HTTPException | None = None  # why sending failed


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def basic_auth(username: str, password: str) -> str:
    """The value of an ``Authorization: Basic`` header."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class HttpClient:
    """Requests to one base URL over one reusable connection. Not thread-safe: one per sink.

    ``base_url`` may carry a path prefix (``https://host/vm``) and ``user:password@``; the latter
    is used as basic auth unless ``username`` is given, and is never shown. Raises ``ValueError``
    for a URL that is not http(s) or has no host, and ``OSError`` for an unreadable CA file.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        tls_verify: bool = True,
        ca_file: str = "",
        username: str = "",
        password: str = "",
        token: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{redact_url(base_url)!r} is not an http:// or https:// URL")
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"{redact_url(base_url)!r} has an invalid port") from exc
        self.prefix = parts.path.rstrip("/")
        if not username and parts.username:
            username = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
        self.timeout = timeout
        self._clock = clock
        # A secret read from a file or Vault often ends in a newline: never part of a token.
        password, token, username = password.strip(), token.strip(), username.strip()
        for what, value in (("token", token), ("password", password), ("username", username)):
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                # Never echo the value: http.client would put it in its error message.
                raise ValueError(f"the {what} contains a line break or control character")
        self._redactor = Redactor()
        for secret in (password, token):
            self._redactor.add(secret, [username] if username else [])
        self._auth: str | None = None
        if token:
            self._auth = f"Bearer {token}"
        elif username:
            self._auth = basic_auth(username, password)
        self._ssl: ssl.SSLContext | None = None
        if self.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=ca_file or None)
            if not tls_verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # whether _conn already carried a request (it may have gone stale)
        self._pending: _Pending | None = None  # the request start_request() sent, if unanswered

    @property
    def base_url(self) -> str:
        """``scheme://host:port/prefix`` without credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}"

    def describe(self) -> str:
        return self.base_url

    def close(self) -> None:
        self._pending = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._used = False

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._ssl is not None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self._ssl
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._used = False
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request to ``prefix + path`` and read the answer.

        Raises :class:`TransportError` when no HTTP answer came back. A connection the server
        closed while idle is reopened once, transparently.
        """
        self.start_request(method, path, body, headers)
        return self.finish_request()

    def start_request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a request without waiting for the answer; :meth:`finish_request` reads it.

        Lets the caller work (encode the next batch) while the server handles this one. Never
        raises for network trouble: a failed send is reported by :meth:`finish_request`.
        Fails with ``RuntimeError`` while another request is unfinished (one connection carries
        one request at a time).
        """
        if self._pending is not None:
            raise RuntimeError("a request is still waiting for its answer")
        all_headers = {"User-Agent": "filamentctl", "Accept": "application/json"}
        if self._auth:
            all_headers["Authorization"] = self._auth
        all_headers.update(headers or {})
        self._send(method, self.prefix + path, body, all_headers)

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> None:
        conn = self._connection()
        pending = _Pending(method, url, body, headers, reused=self._used)
        self._pending = pending
        self._used = True
        try:
            conn.request(method, url, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as exc:
            pending.error = exc
        except BaseException:
            self.close()  # nothing sensible can be read from this connection any more
            raise

    def finish_request(self) -> Response:
        """Read the answer to the request :meth:`start_request` sent.

        Raises :class:`TransportError` when no HTTP answer came back, ``RuntimeError`` when no
        request was started. A reused connection the server had closed while idle fails before
        the request reached it: then it is sent once more on a fresh connection.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError("no request was started")
        try:
            if pending.error is not None:
                raise pending.error
            assert self._conn is not None
            resp = self._conn.getresponse()
            data = resp.read(_MAX_BODY + 1)
            # A huge error page is not worth draining: drop the connection instead.
            if len(data) > _MAX_BODY or not resp.isclosed() or resp.will_close:
                self.close()
                data = data[:_MAX_BODY]
            return Response(resp.status, resp.reason, dict(resp.getheaders()), data)
        except _STALE_CONNECTION_ERRORS as exc:
            self.close()
            if pending.reused:
                # A fresh connection now, so a second failure is reported, not retried.
                self._send(pending.method, pending.url, pending.body, pending.headers)
                return self.finish_request()
            raise TransportError(self._network_message(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(self._network_message(exc)) from exc

    def abort_request(self) -> None:
        """Give up on an unfinished request: its answer is never read, the connection closed.

        The server may still store what was sent; the caller must treat it as not delivered.
        """
        if self._pending is not None:
            self._pending = None
            self.close()

    def write(
        self, path: str, body: bytes, content_type: str = "text/plain; charset=utf-8"
    ) -> WriteResult:
        """POST ``body`` and classify the answer; never raises for network or server trouble."""
        self.start_write(path, body, content_type)
        return self.finish_write()

    def start_write(
        self, path: str, body: bytes, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        """:meth:`write` in two steps: POST ``body`` now, :meth:`finish_write` reads the answer."""
        self.start_request("POST", path, body, {"Content-Type": content_type})

    def finish_write(self) -> WriteResult:
        """The classified answer to :meth:`start_write`; never raises for network trouble."""
        try:
            resp = self.finish_request()
        except TransportError as exc:
            return WriteResult(Outcome.RETRY, None, str(exc))
        return self.classify(resp)

    def classify(self, resp: Response) -> WriteResult:
        """Turn a response into a :class:`WriteResult` with a one-line, secret-free message."""
        if 200 <= resp.status < 300:
            return classify_http(resp.status)
        retry_after = parse_retry_after(resp.header("Retry-After"), now_s=self._clock())
        # Only a short, masked snippet of what the server said: bodies may echo the request.
        detail = one_line(self.redact(resp.error_text()), _MAX_DETAIL) or resp.reason
        if 300 <= resp.status < 400 and resp.header("Location"):
            detail = f"redirected to {redact_url(str(resp.header('Location')))}; use that URL"
        message = self.redact(one_line(f"HTTP {resp.status} from {self.base_url}: {detail}"))
        return classify_http(resp.status, message, retry_after)

    def redact(self, text: str) -> str:
        """``text`` with the configured password or token masked in every form a server may
        echo (raw, base64 of ``user:password``, percent- or JSON-encoded) and any
        ``Authorization`` value replaced by ``***``."""
        return self._redactor(text)

    def _network_message(self, exc: BaseException) -> str:
        if isinstance(exc, ConnectionRefusedError):
            why = "connection refused: is the server running and the port right?"
        elif isinstance(exc, TimeoutError):
            why = f"no answer within {self.timeout:g} s"
        elif isinstance(exc, socket.gaierror):
            why = f"cannot resolve host {self.host!r}"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            why = (
                f"TLS certificate not trusted ({exc.verify_message}); "
                "set database.tls_ca_file or fix the certificate"
            )
        elif isinstance(exc, ssl.SSLError):
            why = f"TLS error ({exc.reason or exc})"
        elif isinstance(exc, _STALE_CONNECTION_ERRORS):
            why = "the server closed the connection without answering"
        else:
            why = str(exc) or type(exc).__name__
        return self.redact(one_line(f"cannot reach {self.base_url}: {why}"))


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` part removed."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def encoder_from_settings(settings: Mapping[str, Any]) -> LineEncoder:
    """The line encoder for ``data.measurement``/``data.tags``; ConfigError when unusable."""
    try:
        return LineEncoder.from_settings(settings)
    except LineProtocolError as exc:
        raise ConfigError(str(exc)) from exc


def client_from_settings(
    settings: Mapping[str, Any],
    url: str,
    url_key: str,
    *,
    username: str = "",
    password: str = "",
    token: str = "",
) -> HttpClient:
    """An :class:`HttpClient` with ``database.timeout``/``tls_verify``/``tls_ca_file`` applied."""
    if not url:
        raise ConfigError(f"{url_key} is not set: set it to the server's URL")
    # Secrets arrive resolved (a `vault:` reference is read by the service before it builds
    # the sink: service/secrets.py).
    try:
        return HttpClient(
            url,
            timeout=float(settings.get("database.timeout", 10.0)),
            tls_verify=bool(settings.get("database.tls_verify", True)),
            ca_file=str(settings.get("database.tls_ca_file") or ""),
            username=username,
            password=password,
            token=token,
        )
    except ValueError as exc:
        raise ConfigError(f"{url_key}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(
            f"database.tls_ca_file cannot be used ({exc.strerror or exc}): "
            "point it at a readable PEM file"
        ) from exc


class PipelinedLineWrites:
    """The ``PipelinedSink`` half of a line-protocol sink over :class:`HttpClient`: the backlog
    drain encodes batch N+1 while the server stores N. A sink mixes it in and has ``encoder``,
    ``client`` and ``write_path``; :meth:`_answered` is the hook its plain ``write`` applies to
    an answer too (InfluxDB 1.x creates a missing database there)."""

    encoder: LineEncoder
    client: HttpClient
    write_path: str
    _sent_empty = False  # send_prepared() had nothing to send: receive() acks at once

    def prepare(self, rows: Sequence[ReadingRow]) -> bytes:
        """The line-protocol body for ``rows`` (the same bytes ``write`` would send)."""
        return self.encoder.encode_rows(rows)

    def send_prepared(self, body: bytes) -> None:
        """POST ``body`` without waiting for the answer (an empty body is not sent at all)."""
        self._sent_empty = not body
        if body:
            self.client.start_write(self.write_path, body)

    def receive(self) -> WriteResult:
        """The outcome of the body :meth:`send_prepared` sent, as ``write`` gives it."""
        if self._sent_empty:
            self._sent_empty = False
            return ACKED
        return self._answered(self.client.finish_write())

    def abort(self) -> None:
        """Drop the unanswered request (the connection is closed)."""
        self._sent_empty = False
        self.client.abort_request()

    def _answered(self, result: WriteResult) -> WriteResult:
        return result
