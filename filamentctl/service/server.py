"""The Unix-socket server: newline-delimited JSON, one thread per client connection.

Every request gets exactly one reply (streaming ops send events first). Malformed, oversized or
unknown requests get an error reply; nothing a client sends can raise out of here.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request

log = logging.getLogger("filamentctl.socket")

MAX_CLIENTS = 32
RECV_CHUNK = 65536
# How long an idle client may stay connected without sending anything (subscribers excepted).
IDLE_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid {self.pid} uid {self.uid}"


class Connection:
    """One client; ``send_event`` may be called from any thread."""

    def __init__(self, sock: socket.socket, peer: Peer) -> None:
        self.sock = sock
        self.peer = peer
        self.closed = threading.Event()
        self._send_lock = threading.Lock()

    def send(self, data: bytes) -> bool:
        with self._send_lock:
            if self.closed.is_set():
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.closed.set()
                return False

    def send_event(self, req_id: Any, name: str, data: Any) -> bool:
        return self.send(protocol.event(req_id, name, data))


Handler = Callable[[Request, Connection], Any]


class SocketServer:
    """Listens on ``path``; ``dispatch(request, connection)`` returns a result or raises
    :class:`ProtocolError`. Socket file mode 0660 (group from ``group`` when given)."""

    def __init__(self, path: Path, dispatch: Handler, *, group: str | None = None) -> None:
        self.path = path
        self._dispatch = dispatch
        self._group = group
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._clients: set[Connection] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        if len(os.fsencode(self.path)) >= 104:
            raise OSError(f"socket path too long for a Unix socket: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._remove_stale_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)  # created 0660: owner and group only
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        if self._group:
            with contextlib.suppress(KeyError, PermissionError):
                os.chown(self.path, -1, grp.getgrnam(self._group).gr_gid)
        sock.listen(128)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="socket", daemon=True)
        self._thread.start()
        log.debug("listening on %s", self.path)

    def _remove_stale_socket(self) -> None:
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(
                f"{self.path} exists and is not a socket; remove it or set FILAMENTCTL_HOME"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink(missing_ok=True)  # left behind by a crash
            return
        finally:
            probe.close()
        raise OSError(
            f"another filamentctl service is already running on {self.path}; "
            "stop it first or use another FILAMENTCTL_HOME"
        )

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            conn.closed.set()
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- internals --------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            with self._lock:
                full = len(self._clients) >= MAX_CLIENTS
            if full:
                with contextlib.suppress(OSError):
                    sock.sendall(protocol.error(None, protocol.REFUSED, "too many clients"))
                sock.close()
                continue
            conn = Connection(sock, _peer_of(sock))
            with self._lock:
                self._clients.add(conn)
            threading.Thread(
                target=self._serve, args=(conn,), name=f"client-{conn.peer.pid}", daemon=True
            ).start()

    def _serve(self, conn: Connection) -> None:
        sock = conn.sock
        sock.settimeout(IDLE_TIMEOUT_S)
        buf = b""
        discarding = False  # inside an oversized line: drop bytes up to the next newline
        try:
            while not conn.closed.is_set():
                try:
                    chunk = sock.recv(RECV_CHUNK)
                except (TimeoutError, OSError):
                    return
                if not chunk:
                    return
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        if len(buf) > protocol.MAX_LINE:
                            if not discarding:
                                conn.send(
                                    protocol.error(
                                        None,
                                        protocol.TOO_LARGE,
                                        f"request longer than {protocol.MAX_LINE} bytes",
                                    )
                                )
                            discarding = True
                            buf = b""
                        break
                    line, buf = buf[:nl], buf[nl + 1 :]
                    if discarding:
                        discarding = False
                        continue
                    if line.strip():
                        self._handle_line(line, conn)
        finally:
            conn.closed.set()
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._clients.discard(conn)

    def _handle_line(self, line: bytes, conn: Connection) -> None:
        req_id: Any = None
        try:
            req = protocol.parse_request(line)
            req_id = req.id
            if not isinstance(req_id, (str, int, type(None))) or isinstance(req_id, bool):
                req_id = None
                raise ProtocolError(protocol.BAD_REQUEST, "'id' must be a string or an integer")
            result = self._dispatch(req, conn)
        except ProtocolError as exc:
            conn.send(protocol.error(req_id, exc.code, exc.message))
            return
        except Exception as exc:  # a handler bug must not take the service down
            log.exception("socket request failed")
            conn.send(
                protocol.error(req_id, protocol.INTERNAL, f"internal error: {type(exc).__name__}")
            )
            return
        try:
            conn.send(protocol.ok(req_id, result))
        except ValueError as exc:  # e.g. NaN in a result
            conn.send(protocol.error(req_id, protocol.INTERNAL, f"cannot encode reply: {exc}"))


def _peer_of(sock: socket.socket) -> Peer:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        return Peer(pid, uid, gid)
    except (OSError, AttributeError):
        return Peer(-1, -1, -1)
