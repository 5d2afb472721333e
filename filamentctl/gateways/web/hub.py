"""Fan-out of the service's events to the browsers' event streams (``/api/events``).

The link thread hands events to the event loop (``loop.call_soon_threadsafe``); everything here
then runs on the loop, so no locks. Each stream has a bounded queue: a client that stops reading
is dropped when its queue fills, never allowed to hold events without bound. The number of
streams is capped (``web.max_event_clients``).

Besides the service's own events (``status``, ``reading``, ``relay``, ``sensor``, ``storage.*``,
``alert``) the hub sends ``link`` — ``{"connected": bool, "reason", "retry_in_s"}`` — whenever
the gateway loses or regains the service, so a page can say "disconnected".
"""

from __future__ import annotations

import asyncio
from typing import Any

Event = tuple[str, Any]


class Subscriber:
    """One event stream's queue. ``None`` in the queue means: end the stream."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self.dropped = False

    def offer(self, event: Event | None) -> bool:
        """Queue ``event``; False (and the stream is told to end) when the queue is full."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False


class EventHub:
    """The gateway's view of the link plus the open event streams."""

    def __init__(self, max_clients: int, queue_size: int = 256) -> None:
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.connected = False
        self.link: dict[str, Any] = {
            "connected": False,
            "reason": "connecting to the service",
            "retry_in_s": None,
        }
        self.slow_clients_dropped = 0

    def subscribe(self) -> Subscriber | None:
        """A new stream, or None when ``max_clients`` are already open."""
        if len(self.subscribers) >= self.max_clients:
            return None
        sub = Subscriber(self.queue_size)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, name: str, data: Any) -> None:
        """An event from the service (on the loop). A ``status`` means the link is (back) up."""
        if name == "status" and not self.connected:
            self.connected = True
            self.link = {"connected": True, "reason": None, "retry_in_s": None}
            self._send(("link", self.link))
        self._send((name, data))

    def disconnected(self, reason: str, retry_in_s: float, attempt: int) -> None:
        """The link to the service is down (called once per reconnection attempt)."""
        first = self.connected or attempt <= 1
        self.connected = False
        self.link = {"connected": False, "reason": reason, "retry_in_s": round(retry_in_s, 1)}
        if first or attempt % 5 == 0:  # tell pages at once, then now and then, not every try
            self._send(("link", self.link))

    def close(self) -> None:
        """End every stream (the gateway is stopping)."""
        for sub in list(self.subscribers):
            sub.offer(None)
        self.subscribers.clear()

    def _send(self, event: Event) -> None:
        for sub in list(self.subscribers):
            if not sub.offer(event):
                self.slow_clients_dropped += 1
                self.subscribers.discard(sub)
