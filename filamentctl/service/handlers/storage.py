"""``flush`` and ``deadletter.list|replay|purge``: the history's way to the database."""

from __future__ import annotations

import logging

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler, ids_arg, number_arg
from filamentctl.service.server import Connection

log = logging.getLogger("filamentctl.service")


class StorageOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        return {
            "flush": self.flush,
            "deadletter.list": self.deadletter_list,
            "deadletter.replay": self.deadletter_replay,
            "deadletter.purge": self.deadletter_purge,
        }

    def flush(self, req: Request, conn: Connection) -> object:
        """Deliver the backlog now, for at most ``timeout`` s (≤ MAX_FLUSH_TIMEOUT_S); the flush
        ends early when its client hangs up, so it never holds a slot for nobody."""
        timeout = number_arg(
            req.args, "timeout", 60.0, minimum=0.1, maximum=protocol.MAX_FLUSH_TIMEOUT_S
        )
        self._service.sampler.commit()
        delivery = self._service.delivery
        if delivery is None:
            from filamentctl.service.delivery import nothing_to_flush

            return nothing_to_flush("none")

        def progress(delivered: int, total: int) -> None:
            conn.send_event(req.id, "flush.progress", {"delivered": delivered, "total": total})

        return delivery.flush(timeout, progress, cancelled=conn.gone)

    def deadletter_list(self, req: Request, conn: Connection) -> object:
        return self._service.history.deadletter_list()

    def deadletter_replay(self, req: Request, conn: Connection) -> object:
        ids = ids_arg(req.args)
        delivery = self._service.delivery
        if delivery is None:
            raise ProtocolError(protocol.REFUSED, "no database is configured (database.type none)")
        return delivery.replay_dead_letters(ids)

    def deadletter_purge(self, req: Request, conn: Connection) -> object:
        ids = ids_arg(req.args)
        purged = self._service.history.deadletter_purge(ids)
        log.info("dead-letter: purged %d entries (peer %s)", purged, conn.peer)
        return {"purged": purged}
