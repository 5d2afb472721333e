"""The socket client used by the CLI and the dashboard.

Turns connection errors into one-line advice with the right exit code (1: the service is busy,
3: no service, 4: no permission). Talks only to a socket served by root, by the user itself, or
by the owner of a directory nobody else could have put the socket in (so another local user
cannot pose as the service). Stdlib only, so ``filamentctl status`` stays cheap to start.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filamentctl import paths as _paths
from filamentctl import protocol
from filamentctl.errors import PermissionDenied, ServiceNotRunning, UserError

CONNECT_TIMEOUT_S = 1.0
# A "busy" answer (every slot in use) is retried for this long before it is reported.
BUSY_RETRY_S = 3.0


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
        self._refused = False  # the service turned this connection away (busy)

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
        try:
            check_peer(sock, self.socket_path)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self._timeout)
        self._sock = sock
        self._buf = b""
        self._refused = False

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
            # Turned away at once (busy)? Then its one-line reason is waiting to be read.
            self._raise_pending_error()
            raise ServiceNotRunning(f"the service closed the connection: {exc}") from exc

    def _raise_pending_error(self) -> None:
        """Raise the error reply the service sent before closing, if there is one."""
        assert self._sock is not None
        try:
            self._sock.settimeout(0.2)
            msg = protocol.parse_message(self._recv_line())
        except (UserError, OSError, ValueError):
            return
        if msg.get("ok") is False:
            err = msg.get("error") or {}
            self._refused = msg.get("id") is None
            raise ServiceError(str(err.get("code", "error")), str(err.get("message", "failed")))

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
        """Send one request and return its result; events before the reply go to ``on_event``.

        A ``busy`` answer (the request was not run) is retried for up to BUSY_RETRY_S, on a new
        connection when the service turned this one away; then it raises ServiceError (exit 1).
        """
        deadline = time.monotonic() + BUSY_RETRY_S
        delay = 0.05
        while True:
            try:
                return self._call_once(op, args, on_event)
            except ServiceError as exc:
                if exc.code != protocol.BUSY or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            if self._refused:
                self.close()
                self._open()

    def _call_once(
        self,
        op: str,
        args: dict[str, Any] | None,
        on_event: Callable[[str, Any], None] | None,
    ) -> Any:
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
            self._refused = msg.get("id") is None and err.get("code") == protocol.BUSY
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


def check_peer(sock: socket.socket, path: Path) -> None:
    """Refuse (PermissionDenied, exit 4) a socket served by someone who could be posing as the
    service: trusted are root, this user, and the owner of the socket when it sits in a
    directory that only that owner and root can write, down from ``/`` (the system service's
    ``/run/filamentctl``, a user's home). A world-writable place such as ``/tmp`` never vouches
    for another user's socket."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
    except (OSError, AttributeError):  # no SO_PEERCRED here: nothing to check against
        return
    if uid in (0, os.geteuid()) or _owned_safely(path, uid):
        return
    try:
        import pwd

        who = f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        who = f"uid {uid}"
    raise PermissionDenied(
        f"refusing to talk to {path}: it is served by {who}, not by root, you, or the owner of "
        f"a directory only they can write; someone may be posing as the service (check who "
        f"can write to {path.parent})"
    )


def _owned_safely(path: Path, uid: int) -> bool:
    """The socket belongs to ``uid`` and every directory above it to ``uid`` or root, none of
    them writable by group or others."""
    try:
        if not stat.S_ISSOCK((st := os.lstat(path)).st_mode) or st.st_uid != uid:
            return False
        directory = Path(os.path.realpath(path.parent))
        for d in (directory, *directory.parents):
            st = os.stat(d)
            if st.st_uid not in (0, uid) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
    except OSError:
        return False
    return True
