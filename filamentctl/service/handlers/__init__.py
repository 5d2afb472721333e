"""The socket operations: one handler per op, grouped by concern, built once per service.

Each module holds a small class of handlers for one concern, written against
:class:`~filamentctl.service.api.ServiceAPI`; :func:`handler_table` maps every op name of
``protocol.OPS`` to its handler. A handler returns the result or raises ``ProtocolError``.
"""

from __future__ import annotations

from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler
from filamentctl.service.handlers.config import ConfigOps
from filamentctl.service.handlers.extras import DryingOps, NotifyOps
from filamentctl.service.handlers.readings import ReadingOps
from filamentctl.service.handlers.relays import RelayOps
from filamentctl.service.handlers.simulator import SimOps
from filamentctl.service.handlers.storage import StorageOps


def handler_table(service: ServiceAPI) -> dict[str, Handler]:
    """Every operation's handler for ``service``."""
    table: dict[str, Handler] = {}
    for group in (
        ReadingOps(service),
        RelayOps(service),
        StorageOps(service),
        ConfigOps(service),
        SimOps(service),
        NotifyOps(service),
        DryingOps(service),
    ):
        table.update(group.ops())
    return table
