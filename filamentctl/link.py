"""A live link to the service for long-running clients (gateways): subscribe, reconnect, call.

:class:`ServiceLink` runs one background thread that holds a ``subscribe`` stream to the
service's socket and hands every event to a callback. When the stream ends or the service cannot
be reached, it reports the disconnection once per attempt and reconnects with jittered backoff
(``core.backoff``), for as long as the link runs. Requests (``heater.set`` and the like) use a
short connection of their own (:meth:`ServiceLink.call`), so a slow request never stalls the
stream and a stalled stream never blocks a request.

Stdlib only (plus ``client``/``protocol``): a gateway process that imports this stays small.
Callbacks run on the link thread; they must not block for long and must not raise (an exception
is logged and the stream goes on).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filamentctl.client import Client
from filamentctl.core.backoff import backoff_delay
from filamentctl.errors import UserError

log = logging.getLogger("filamentctl.link")

OnEvent = Callable[[str, Any], None]
OnDisconnect = Callable[[str, float, int], None]


class ServiceLink:
    """Keeps one subscription to the service alive.

    ``on_event(name, data)`` gets every event, starting with the ``status`` snapshot the service
    sends on each (re)connection; ``on_disconnect(reason, retry_in_s, attempt)`` is called when
    the link is lost or cannot be made. ``topics`` None means every topic.
    """

    def __init__(
        self,
        on_event: OnEvent,
        on_disconnect: OnDisconnect | None = None,
        *,
        socket_path: Path | None = None,
        topics: list[str] | None = None,
        reconnect_base_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        call_timeout_s: float = 10.0,
        rand: Callable[[], float] = random.random,
        name: str = "service-link",
    ) -> None:
        self.socket_path = socket_path
        self.topics = topics
        self._on_event = on_event
        self._on_disconnect = on_disconnect or (lambda _reason, _delay, _attempt: None)
        self._base = reconnect_base_s
        self._max = reconnect_max_s
        self._call_timeout = call_timeout_s
        self._rand = rand
        self._name = name
        self._closing = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: Client | None = None
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> ServiceLink:
        if self._thread is not None:
            raise RuntimeError("the link is already running")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """End the link: wake its backoff wait and its blocking read. True if the thread ended."""
        self._closing.set()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.interrupt()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ServiceLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ---------------------------------------------------------------------------
    def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        """One request on its own connection. Raises UserError subclasses like the CLI's client
        (ServiceNotRunning, ServiceError with the service's code and message)."""
        with Client.connect(self.socket_path, timeout=self._call_timeout) as client:
            return client.call(op, args)

    # -- the stream -------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            reason = "the service closed the connection"
            try:
                client = Client.connect(self.socket_path, timeout=None)
            except UserError as exc:
                reason = str(exc)
            else:
                with self._stream_lock:
                    self._stream = client
                try:
                    if self._closing.is_set():
                        break
                    for name, data in client.subscribe(self.topics):
                        failures = 0
                        self.connected.set()
                        self._deliver(name, data)
                except (UserError, OSError, ValueError) as exc:
                    reason = str(exc) or type(exc).__name__
                finally:
                    with self._stream_lock:
                        self._stream = None
                    client.close()
            self.connected.clear()
            if self._closing.is_set():
                break
            failures += 1
            delay = backoff_delay(failures, self._base, self._max, self._rand())
            try:
                self._on_disconnect(reason, delay, failures)
            except Exception:
                log.exception("link: the disconnect callback failed")
            self._closing.wait(delay)

    def _deliver(self, name: str, data: Any) -> None:
        try:
            self._on_event(name, data)
        except Exception:  # a gateway bug must not end the stream
            log.exception("link: the event callback failed for %s", name)
