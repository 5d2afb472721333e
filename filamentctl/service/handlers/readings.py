"""``ping``, ``status``, ``read``, ``history`` and ``subscribe``: what the box measures."""

from __future__ import annotations

import json
from collections.abc import Iterator

from filamentctl import __version__, protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler, number_arg
from filamentctl.service.server import Connection, Streamed

SUBSCRIBER_SEND_TIMEOUT_S = 10.0
# One history reply at most this many readings (ask for step_s to cover long spans); the reply
# is read and sent in chunks, so this bounds its length, not the service's memory.
HISTORY_LIMIT = 100_000
MAX_SINCE_S = 100 * 366 * 86400.0
# A history reply must be taken by its client within this long in all, or it is dropped.
HISTORY_SEND_S = 60.0


class ReadingOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        return {
            "ping": self.ping,
            "status": self.status,
            "read": self.read,
            "history": self.history,
            "subscribe": self.subscribe,
        }

    def ping(self, req: Request, conn: Connection) -> object:
        return {"pong": True, "version": __version__}

    def status(self, req: Request, conn: Connection) -> object:
        return self._service.status()

    def read(self, req: Request, conn: Connection) -> object:
        reading = self._service.sampler.reading_status(self._service.clock())
        if reading is None:
            raise ProtocolError(
                protocol.REFUSED,
                "no reading yet: the sensor has not produced a "
                "valid sample (see 'filamentctl status')",
            )
        return reading

    def history(self, req: Request, conn: Connection) -> object:
        """Readings (or bucket averages) as one reply sent in pieces: read in chunks from a
        read-only connection, so neither the sampler's lock nor the service's memory is held
        by a long answer (the server runs at most a few of these at once)."""
        since_s = number_arg(req.args, "since_s", 86400.0, minimum=0.0, maximum=MAX_SINCE_S)
        limit = int(number_arg(req.args, "limit", HISTORY_LIMIT, 1, maximum=HISTORY_LIMIT))
        since_ns = self._service.wall_ns() - int(since_s * 1e9)
        history = self._service.history
        if "step_s" in req.args:
            step_s = number_arg(req.args, "step_s", 60.0, minimum=1.0, maximum=MAX_SINCE_S)
            chunks = history.iter_downsample(since_ns, int(step_s * 1e9), limit)
        else:
            chunks = history.iter_query(since_ns, limit)

        def encoded() -> Iterator[bytes]:
            yield b"["
            first = True
            for chunk in chunks:
                if not chunk:
                    continue
                rows = [r.to_dict() for r in chunk]
                # The chunk's array without its brackets: the pieces make one JSON array.
                text = json.dumps(rows, separators=(",", ":"), default=str, allow_nan=False)
                yield (text[1:-1] if first else "," + text[1:-1]).encode()
                first = False
            yield b"]"

        return Streamed(encoded(), deadline_s=HISTORY_SEND_S)

    def subscribe(self, req: Request, conn: Connection) -> object:
        topics = req.args.get("topics")
        if topics is not None and (
            not isinstance(topics, list) or not all(isinstance(t, str) for t in topics)
        ):
            raise ProtocolError(protocol.INVALID_ARGS, "'topics' must be a list of strings")
        unknown = sorted(set(topics or ()) - set(protocol.TOPICS))
        if unknown:
            raise ProtocolError(
                protocol.INVALID_ARGS,
                f"unknown topic(s) {unknown}; known: {', '.join(protocol.TOPICS)}",
            )
        bus = self._service.bus
        sub = bus.subscribe(frozenset(topics) if topics else None)
        # A subscriber that stops reading is dropped after this long, not waited on forever.
        conn.sock.settimeout(SUBSCRIBER_SEND_TIMEOUT_S)
        try:
            conn.send_event(req.id, "status", self._service.status())
            while not conn.closed.is_set() and not self._service.stopping:
                item = sub.get(timeout=1.0)
                if item is None:
                    if peer_gone(conn):  # quiet topics: notice a client that went away
                        break
                    continue
                if not conn.send_event(req.id, item[0], item[1]):
                    break
        finally:
            bus.unsubscribe(sub)
        return {"ended": True}


def peer_gone(conn: Connection) -> bool:
    """True when the client closed its end (see Connection.gone), consuming nothing."""
    return conn.gone()
