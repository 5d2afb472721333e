"""A notification capture server on loopback: the real end of Apprise's ``json://`` URLs.

Apprise's ``json://127.0.0.1:PORT/PATH`` POSTs ``{"title", "message", "type", ...}`` to
``http://127.0.0.1:PORT/PATH``. The server records every POST and answers as told::

    with CaptureServer() as cap:
        url = cap.url("secret-topic")        # json://127.0.0.1:PORT/secret-topic
        ...
        cap.wait_for(1)                      # polls until one POST arrived
        cap.posts[0].json["title"]

Modes: ``ok`` (200), ``error`` (500), ``hang`` (keeps the request unanswered until the server
stops or ``mode`` changes). Bounded: a hanging request ends when the server stops.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

from tests.helpers import wait_until

Mode = Literal["ok", "error", "hang"]


@dataclass(frozen=True, slots=True)
class Post:
    path: str
    body: bytes
    answered: int  # the status sent back (0: hung up without an answer)

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class CaptureServer:
    def __init__(self, mode: Mode = "ok") -> None:
        self.mode: Mode = mode
        self.posts: list[Post] = []  # every POST, in arrival order, whatever was answered
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                mode = server.mode
                status = 0 if mode == "hang" else (200 if mode == "ok" else 500)
                with server._lock:
                    server.posts.append(Post(self.path, body, status))
                if mode == "hang":
                    with server._changed:
                        server._changed.wait_for(
                            lambda: server._stopping.is_set() or server.mode != "hang", timeout=60
                        )
                    self.close_connection = True
                    return
                payload = b'{"ok": true}' if status == 200 else b"broken"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str = "notify") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def set_mode(self, mode: Mode) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()

    def count(self, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for p in self.posts if status is None or p.answered == status)

    def delivered(self) -> list[dict[str, Any]]:
        """The JSON bodies of the POSTs answered 200 (what a phone would have shown)."""
        with self._lock:
            return [p.json for p in self.posts if p.answered == 200]

    def wait_for(self, n: int, timeout: float = 20.0, status: int | None = 200) -> None:
        wait_until(lambda: self.count(status) >= n, timeout=timeout, what=f"{n} POST(s)")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
