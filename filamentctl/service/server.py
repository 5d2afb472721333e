"""The Unix-socket server: newline-delimited JSON, one thread per client connection.

Every request gets exactly one reply (streaming ops send events first). Malformed, oversized or
unknown requests get an error reply; nothing a client sends can raise out of here.

No client can lock the others out: at most ``MAX_CLIENTS`` connections, of which only
``LONG_OPS`` may be busy with operations that can run long (a subscription, a flush, a history
query...); when every slot is taken, the connection idle the longest gives way to the new one.
Only when every connection is in the middle of a request is a newcomer refused, with ``busy``.
So ``heater off`` and ``status`` always get a slot.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import select
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filamentctl import protocol
from filamentctl.errors import PermissionDenied, UsageError, UserError
from filamentctl.protocol import ProtocolError, Request

log = logging.getLogger("filamentctl.socket")

MAX_CLIENTS = 32
RECV_CHUNK = 65536
# How long an idle client may stay connected without sending anything (subscribers excepted).
IDLE_TIMEOUT_S = 300.0
# Operations that can take long, and how many of each may run at once. Together they leave
# MAX_CLIENTS - 25 slots that only short requests (or idle connections) can hold, so a request
# like heater.set always finds a slot, if need be by closing an idle connection.
LONG_OPS = {
    "subscribe": 16,
    "flush": 4,
    "history": 2,
    "deadletter.replay": 1,
    "config.reload": 2,
}
# A client must take each reply (or part of a streamed one) within this long, or it is dropped.
SEND_TIMEOUT_S = 10.0
# A line that stays unfinished this long no longer keeps its connection from giving way.
PARTIAL_LINE_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid {self.pid} uid {self.uid}"


class Connection:
    """One client; ``send_event`` may be called from any thread."""

    def __init__(self, sock: socket.socket, peer: Peer, now: float = 0.0) -> None:
        self.sock = sock
        self.peer = peer
        self.closed = threading.Event()
        self._send_lock = threading.Lock()
        # Guarded by the server's lock: whether a request is being read or handled, since when
        # the connection has done nothing, since when an unfinished line waits for its end.
        self.active = False
        self.last_active = now
        self.partial_since: float | None = None
        self.evicted = False

    def _poll(self) -> int:
        """The socket's poll() events right now (never blocks)."""
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN | select.POLLHUP | select.POLLERR)
            events = poller.poll(0)
        except (OSError, ValueError):  # closed meanwhile
            return select.POLLNVAL
        return events[0][1] if events else 0

    def gone(self) -> bool:
        """True when the client closed its end or was dropped. A client that only shut down
        its sending side (``socat`` after its input ended) still waits for its reply: on a
        Unix socket only a full close raises POLLHUP."""
        if self.closed.is_set():
            return True
        return bool(self._poll() & (select.POLLHUP | select.POLLERR | select.POLLNVAL))

    def has_input(self) -> bool:
        """Bytes sent by the client and not read yet (a request on its way in). Asked of poll()
        first: a socket with a timeout waits for data before a recv, even with MSG_DONTWAIT."""
        if not self._poll() & select.POLLIN:
            return False
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except OSError:
            return False

    def send_stream(self, chunks: Iterator[bytes], deadline_s: float) -> bool:
        """Send ``chunks`` as one reply; False (and the connection closed) when the client does
        not take them within ``deadline_s`` in all, or goes away."""
        end = time.monotonic() + deadline_s
        with self._send_lock:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return True
                except Exception:  # e.g. the database failed mid-reply: the line is broken
                    log.exception("a streamed reply failed; closing the connection")
                    self.closed.set()
                    return False
                if self.closed.is_set() or time.monotonic() > end:
                    self.closed.set()
                    return False
                try:
                    self.sock.sendall(chunk)
                except OSError:
                    self.closed.set()
                    return False

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


class Streamed:
    """A handler's result sent piece by piece: ``chunks`` yields the JSON text of the result
    (already encoded, in order), so a large reply never sits in memory whole."""

    def __init__(self, chunks: Iterator[bytes], deadline_s: float = 60.0) -> None:
        self.chunks = chunks
        self.deadline_s = deadline_s


class SocketServer:
    """Listens on ``path``; ``dispatch(request, connection)`` returns a result or raises
    :class:`ProtocolError`. Socket file mode 0660 (group from ``group`` when given)."""

    def __init__(
        self,
        path: Path,
        dispatch: Handler,
        *,
        group: str | None = None,
        max_clients: int = MAX_CLIENTS,
        long_ops: dict[str, int] | None = None,
    ) -> None:
        self.path = path
        self._dispatch = dispatch
        self._group = group
        self._max_clients = max_clients
        self._long_ops = dict(LONG_OPS if long_ops is None else long_ops)
        self._running: dict[str, int] = {}
        self._sock: socket.socket | None = None
        self._bound: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we bound
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._clients: set[Connection] = set()
        self._lock = threading.Lock()
        self._full_logged = False

    def start(self) -> None:
        """Bind and listen. Raises UserError (one line) when the path cannot be used: too long
        (exit 2), a symlink in its place (exit 4), a file that is not a socket, or another
        service answering there (exit 1). Nothing that was there before is removed then."""
        size = len(os.fsencode(self.path))
        if size >= 104:  # sun_path: 108 bytes on Linux, 104 on the BSDs; keep to the smaller
            raise UsageError(
                f"socket path too long for a Unix socket ({size} bytes, at most 103): "
                f"{self.path}; use a shorter FILAMENTCTL_HOME"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._remove_stale_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)  # created 0660: owner and group only
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise UserError(
                f"cannot listen on {self.path}: {exc.strerror or exc}; "
                "stop whatever uses it or set FILAMENTCTL_HOME"
            ) from None
        finally:
            os.umask(old_umask)
        st = os.lstat(self.path)
        self._bound = (st.st_dev, st.st_ino)  # stop() removes this socket and nothing else
        if self._group:
            with contextlib.suppress(KeyError, PermissionError):
                os.chown(self.path, -1, grp.getgrnam(self._group).gr_gid, follow_symlinks=False)
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
        if stat.S_ISLNK(mode):
            raise PermissionDenied(
                f"refusing to use {self.path}: it is a symbolic link, not a socket (someone may "
                f"be trying to intercept the service); remove it and check who can write to "
                f"{self.path.parent}"
            )
        if not stat.S_ISSOCK(mode):
            raise UserError(
                f"{self.path} exists and is not a socket; remove it or set FILAMENTCTL_HOME"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(str(self.path))
        except ConnectionRefusedError:
            self.path.unlink(missing_ok=True)  # nobody listens: left behind by a crash
            return
        except (TimeoutError, BlockingIOError):
            pass  # a listener too busy to accept: a live service, never to be unlinked
        except OSError as exc:
            raise UserError(
                f"cannot check whether a service already listens on {self.path}: "
                f"{exc.strerror or exc}; check the directory's permissions"
            ) from None
        finally:
            probe.close()
        raise UserError(
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
        # Only the socket this process bound: never another service's, nor a file we refused.
        if self._bound is not None:
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:
                return
            if (st.st_dev, st.st_ino) == self._bound:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def running(self, op: str) -> int:
        """How many ``op`` requests (a long op: flush, subscribe, ...) are being handled now."""
        with self._lock:
            return self._running.get(op, 0)

    def connections(self) -> int:
        """How many clients are connected now."""
        with self._lock:
            return len(self._clients)

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
            conn = Connection(sock, _peer_of(sock), time.monotonic())
            with self._lock:
                admitted = len(self._clients) < self._max_clients or self._evict_one()
                if admitted:
                    self._clients.add(conn)
                    self._full_logged = False
                elif not self._full_logged:
                    self._full_logged = True
                    log.warning(
                        "every one of the %d client connections is busy with a request; "
                        "refusing new ones (busy) until one finishes",
                        self._max_clients,
                    )
            if not admitted:
                with contextlib.suppress(OSError):
                    sock.sendall(
                        protocol.error(
                            None,
                            protocol.BUSY,
                            f"the service is busy: all {self._max_clients} client connections "
                            "are in the middle of a request; retry in a moment",
                        )
                    )
                sock.close()
                continue
            threading.Thread(
                target=self._serve, args=(conn,), name=f"client-{conn.peer.pid}", daemon=True
            ).start()

    def _evict_one(self) -> bool:
        """Close the connection idle the longest (no request running or arriving); with the
        lock held. False when every connection is in the middle of something."""
        now = time.monotonic()
        idle = [
            c
            for c in self._clients
            if not c.active
            and not c.evicted
            and (c.partial_since is None or now - c.partial_since > PARTIAL_LINE_GRACE_S)
            and not c.has_input()
        ]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_active)
        victim.evicted = True
        victim.closed.set()
        self._clients.discard(victim)
        with contextlib.suppress(OSError):
            victim.sock.shutdown(socket.SHUT_RDWR)  # wakes its thread, which then closes it
        log.debug("closed the idle connection of %s to make room for a new client", victim.peer)
        return True

    def _serve(self, conn: Connection) -> None:
        sock = conn.sock
        sock.settimeout(IDLE_TIMEOUT_S)
        buf = b""
        discarding = False  # inside an oversized line: drop bytes up to the next newline
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while not conn.closed.is_set():
                # Busy before a byte is taken in: the connection never looks idle (evictable)
                # while it holds a request that arrived but is not being handled yet.
                try:
                    if not poller.poll(IDLE_TIMEOUT_S * 1000):
                        return  # idle too long
                except OSError:
                    return
                with self._lock:
                    if conn.evicted:
                        return
                    conn.active = True
                try:
                    chunk = sock.recv(RECV_CHUNK)
                except (TimeoutError, OSError):
                    chunk = b""
                if not chunk:
                    with self._lock:
                        conn.active = False
                    return
                try:
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
                            sock.settimeout(SEND_TIMEOUT_S)  # a client must take its reply
                            self._handle_line(line, conn)
                            sock.settimeout(IDLE_TIMEOUT_S)
                finally:
                    with self._lock:
                        conn.active = False
                        now = time.monotonic()
                        conn.last_active = now
                        if not buf and not discarding:
                            conn.partial_since = None
                        elif conn.partial_since is None:
                            conn.partial_since = now
        finally:
            conn.closed.set()
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._clients.discard(conn)

    def _handle_line(self, line: bytes, conn: Connection) -> None:
        req_id: Any = None
        counted: str | None = None
        try:
            req = protocol.parse_request(line)
            req_id = req.id
            if not isinstance(req_id, (str, int, type(None))) or isinstance(req_id, bool):
                req_id = None
                raise ProtocolError(protocol.BAD_REQUEST, "'id' must be a string or an integer")
            limit = self._long_ops.get(req.op)
            if limit is not None:
                with self._lock:
                    if self._running.get(req.op, 0) >= limit:
                        raise ProtocolError(
                            protocol.BUSY,
                            f"{limit} {req.op} request(s) already running, the most at once; "
                            "retry in a moment",
                        )
                    self._running[req.op] = self._running.get(req.op, 0) + 1
                    counted = req.op
            result = self._dispatch(req, conn)
            if isinstance(result, Streamed):
                self._send_streamed(req_id, result, conn)
                return
        except ProtocolError as exc:
            conn.send(protocol.error(req_id, exc.code, exc.message))
            return
        except Exception as exc:  # a handler bug must not take the service down
            log.exception("socket request failed")
            conn.send(
                protocol.error(req_id, protocol.INTERNAL, f"internal error: {type(exc).__name__}")
            )
            return
        finally:
            if counted is not None:
                with self._lock:
                    self._running[counted] -= 1
        try:
            conn.send(protocol.ok(req_id, result))
        except ValueError as exc:  # e.g. NaN in a result
            conn.send(protocol.error(req_id, protocol.INTERNAL, f"cannot encode reply: {exc}"))

    @staticmethod
    def _send_streamed(req_id: Any, result: Streamed, conn: Connection) -> None:
        head, tail = protocol.ok_parts(req_id)

        def chunks() -> Iterator[bytes]:
            yield head
            yield from result.chunks
            yield tail

        if not conn.send_stream(chunks(), result.deadline_s):
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)


def _peer_of(sock: socket.socket) -> Peer:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        return Peer(pid, uid, gid)
    except (OSError, AttributeError):
        return Peer(-1, -1, -1)
