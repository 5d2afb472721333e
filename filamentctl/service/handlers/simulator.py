"""``sim.set`` and ``sim.clear``: drive the simulated box (refused against a real sensor)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler
from filamentctl.service.server import Connection

if TYPE_CHECKING:
    from filamentctl.hw.simulated import SimulatedBox

log = logging.getLogger("filamentctl.service")

FAULTS = ("stale", "error", "nan", "spike")


class SimOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        return {"sim.set": self.set, "sim.clear": self.clear}

    def _box(self) -> SimulatedBox:
        box = self._service.box
        if box is None:
            raise ProtocolError(
                protocol.NOT_SIMULATED,
                "sim works only against a simulated service (filamentctl run --simulate)",
            )
        return box

    def set(self, req: Request, conn: Connection) -> object:
        box = self._box()
        args = req.args
        t, h, fault = args.get("temperature"), args.get("humidity"), args.get("fault")
        for name, v in (("temperature", t), ("humidity", h)):
            if v is not None and (
                not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v)
            ):
                raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be a finite number")
        if fault is not None and fault not in FAULTS:
            raise ProtocolError(protocol.INVALID_ARGS, "'fault' must be stale, error, nan or spike")
        box.set(temperature_c=t, humidity=h, fault=fault)
        # A pinned value is a deliberate change, not an implausible jump. A fault is not: the
        # filter must meet the injected spikes exactly as it would a real sensor's.
        if (t is not None or h is not None) and fault is None:
            self._service.sampler.filter.trust_next()
        log.info("sim: set %s (peer %s)", dict(args), conn.peer)
        return box.state()

    def clear(self, req: Request, conn: Connection) -> object:
        box = self._box()
        box.clear()
        # Back from pinned values to the model is as deliberate as sim.set: not an implausible
        # jump (readings were rejected for seconds after `sim clear`).
        self._service.sampler.filter.trust_next()
        log.info("sim: cleared")
        return box.state()
