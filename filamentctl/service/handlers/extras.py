"""``notify.test`` and ``dry.*``: notifications and drying sessions (their logic lives in
``service.notify`` and ``service.drying``; these only route the requests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler
from filamentctl.service.server import Connection

if TYPE_CHECKING:
    from filamentctl.service.drying import DryingManager


class NotifyOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        return {"notify.test": self.test}

    def test(self, req: Request, conn: Connection) -> object:
        from filamentctl.service.notify import handle_test

        return handle_test(self._service, req, conn)


class DryingOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        return {
            "dry.start": lambda req, conn: self._drying().op_start(req.args, peer=conn.peer),
            "dry.stop": lambda req, conn: self._drying().op_stop(req.args, peer=conn.peer),
            "dry.status": lambda req, conn: self._drying().status(),
            "dry.profiles": lambda req, conn: self._drying().op_profiles(req.args),
            "dry.history": lambda req, conn: self._drying().op_history(req.args),
        }

    def _drying(self) -> DryingManager:
        drying = self._service.drying
        if drying is None:
            raise ProtocolError(protocol.REFUSED, "drying sessions are not available")
        return drying
