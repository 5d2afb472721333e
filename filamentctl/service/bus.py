"""In-process publish/subscribe for socket subscribers (readings, relay switches, alerts).

Publishing never blocks: each subscriber has a bounded queue, and a subscriber that falls behind
loses its oldest events (counted) rather than slowing sampling or control.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

QUEUE_LIMIT = 1000


class Subscription:
    def __init__(self, topics: frozenset[str] | None) -> None:
        self.topics = topics
        self.lost = 0
        self._items: collections.deque[tuple[str, Any]] = collections.deque()
        self._cond = threading.Condition()
        self.closed = False

    def put(self, name: str, data: Any) -> None:
        with self._cond:
            if len(self._items) >= QUEUE_LIMIT:
                self._items.popleft()
                self.lost += 1
            self._items.append((name, data))
            self._cond.notify()

    def get(self, timeout: float) -> tuple[str, Any] | None:
        with self._cond:
            if not self._items and not self.closed:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self, topics: frozenset[str] | None = None) -> Subscription:
        sub = Subscription(topics)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        with self._lock:
            self._subs.discard(sub)

    def publish(self, name: str, data: Any) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.topics is None or name in sub.topics or name.split(".")[0] in sub.topics:
                sub.put(name, data)

    def close(self) -> None:
        with self._lock:
            subs = list(self._subs)
            self._subs.clear()
        for sub in subs:
            sub.close()
