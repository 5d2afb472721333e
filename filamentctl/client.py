"""The socket client used by the CLI and the dashboard.

Turns connection errors into one-line advice with the right exit code (3: no service, 4: no
permission). Stdlib only, so ``filamentctl status`` stays cheap to start.
"""

from __future__ import annotations

import errno
import itertools
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filamentctl import paths as _paths
from filamentctl import protocol
from filamentctl.errors import PermissionDenied, ServiceNotRunning, UserError

CONNECT_TIMEOUT_S = 1.0


class ServiceError(UserError):
    """The service answered with an error reply."""

    def __init__(self, code: str, message: str) -> None:
        exit_code = {protocol.INVALID_ARGS: 2, protocol.PERMISSION: 4}.get(code, 1)
        super().__init__(message, exit_code=exit_code)
        self.code = code


class Client:
    """One connection to the service. Use as a context manager."""

    def __init__(self, socket_path: Path, timeout: float | None = 10.0) -> None:
        self.socket_path = socket_path
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None
        self._buf = b""
        self._interrupted = False

    # -- connection -------------------------------------------------------------------------
    @classmethod
    def connect(cls, socket_path: Path | None = None, timeout: float | None = 10.0) -> Client:
        """Connect to the given socket, or to the first one found (own, then the system one)."""
        candidates = [socket_path] if socket_path else _paths.resolve().candidate_sockets()
        last: UserError | None = None
        for path in candidates:
            client = cls(path, timeout)
            try:
                client._open()
                return client
            except ServiceNotRunning as exc:
                last = exc if last is None else last
            except PermissionDenied as exc:
                last = exc
        assert last is not None
        raise last

    def _open(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            self._connect(sock)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise ServiceNotRunning(
                f"no filamentctl service is running (nothing listens at {self.socket_path}); "
                "start one with 'filamentctl run' (or 'run --simulate'), "
                "or 'sudo systemctl start filamentctl'"
            ) from exc
        except PermissionError as exc:
            sock.close()
            raise PermissionDenied(
                f"permission denied on {self.socket_path}: add your user to the service's group "
                "(sudo usermod -aG filamentctl $USER) and log in again"
            ) from exc
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOTSOCK, errno.ECONNREFUSED, errno.ENOENT):
                raise ServiceNotRunning(
                    f"no filamentctl service at {self.socket_path} ({exc.strerror}); "
                    "start one with 'filamentctl run'"
                ) from exc
            raise UserError(f"cannot reach the service at {self.socket_path}: {exc}") from exc
        sock.settimeout(self._timeout)
        self._sock = sock

    def _connect(self, sock: socket.socket) -> None:
        """Connect; a full listen queue (EAGAIN) is retried briefly rather than reported."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                sock.connect(str(self.socket_path))
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UserError(
                        f"the service at {self.socket_path} is too busy to accept a connection; "
                        "retry in a moment"
                    ) from None
                time.sleep(0.01)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages ---------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        assert self._sock is not None, "not connected"
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ServiceNotRunning(f"the service closed the connection: {exc}") from exc

    def _recv_line(self) -> bytes:
        assert self._sock is not None, "not connected"
        newline = self._buf.find(b"\n")
        if newline < 0:
            chunks = [self._buf]  # a list, not +=: replies can be megabytes (history)
            while True:
                try:
                    chunk = self._sock.recv(1 << 20)
                except TimeoutError as exc:
                    raise UserError(
                        "the service did not answer in time; it may be overloaded — "
                        "check 'journalctl -u filamentctl' or retry"
                    ) from exc
                except OSError as exc:
                    if self._interrupted:
                        raise ServiceNotRunning("connection closed by this client") from exc
                    raise ServiceNotRunning(f"the service closed the connection: {exc}") from exc
                if not chunk:
                    raise ServiceNotRunning("the service closed the connection (did it stop?)")
                chunks.append(chunk)
                if b"\n" in chunk:
                    break
            self._buf = b"".join(chunks)
            newline = self._buf.find(b"\n")
        line, self._buf = self._buf[:newline], self._buf[newline + 1 :]
        return line

    def interrupt(self) -> None:
        """Wake a thread blocked reading from this client (e.g. a subscription) so it ends.

        Safe from another thread; the blocked call raises ServiceNotRunning.
        """
        self._interrupted = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_timeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        if self._sock is not None:
            self._sock.settimeout(timeout)

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        on_event: Callable[[str, Any], None] | None = None,
    ) -> Any:
        """Send one request and return its result; events before the reply go to ``on_event``."""
        req_id = next(self._ids)
        self._send(protocol.request(req_id, op, args))
        while True:
            msg = protocol.parse_message(self._recv_line())
            if "event" in msg:
                if on_event is not None:
                    on_event(str(msg["event"]), msg.get("data"))
                continue
            # An error without an id answers the pending request too: the server could not read
            # the id (framing errors) or refused the connection ("too many clients").
            if msg.get("id") != req_id and not (msg.get("id") is None and not msg.get("ok")):
                continue
            if msg.get("ok"):
                return msg.get("result")
            err = msg.get("error") or {}
            raise ServiceError(str(err.get("code", "error")), str(err.get("message", "failed")))

    def subscribe(self, topics: list[str] | None = None) -> Iterator[tuple[str, Any]]:
        """Yield ``(event, data)`` pairs until the connection ends."""
        req_id = next(self._ids)
        self._send(protocol.request(req_id, "subscribe", {"topics": topics} if topics else {}))
        while True:
            msg = protocol.parse_message(self._recv_line())
            if "event" in msg:
                yield str(msg["event"]), msg.get("data")
            elif msg.get("id") == req_id and not msg.get("ok", True):
                err = msg.get("error") or {}
                raise ServiceError(str(err.get("code")), str(err.get("message")))


def call(op: str, args: dict[str, Any] | None = None, timeout: float | None = 10.0) -> Any:
    """One-shot request to the running service."""
    with Client.connect(timeout=timeout) as client:
        return client.call(op, args)
