"""``heater.set``, ``heater.reset``, ``fan.set``, ``fan.reset``: the relays, through the control
loop's own rules (every safety rule applies to a request as to automatic control)."""

from __future__ import annotations

from filamentctl.protocol import Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler
from filamentctl.service.server import Connection


class RelayOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {}
        for relay in ("heater", "fan"):
            table[f"{relay}.set"] = self._setter(relay)
            table[f"{relay}.reset"] = self._resetter(relay)
        return table

    def _setter(self, relay: str) -> Handler:
        def handle(req: Request, conn: Connection) -> object:
            s = self._service
            return s.control.set_mode(relay, req.args, s.clock(), peer=conn.peer)

        return handle

    def _resetter(self, relay: str) -> Handler:
        def handle(req: Request, conn: Connection) -> object:
            s = self._service
            return s.control.reset(relay, s.clock(), peer=conn.peer)

        return handle
