"""``notify.test`` and ``dry.*``: notifications and drying sessions (their logic lives in
``service.notify`` and ``service.drying``; these only route the requests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler
from filamentctl.service.server import Connection

if TYPE_CHECKING:
    from filamentctl.service.drying import DryingManager


#: At most one ``notify.test`` this often: any member of the socket group may ask, and each one
#: reaches the owner's phone or chat.
NOTIFY_TEST_EVERY_S = 10.0


class NotifyOps:
    def __init__(self, service: ServiceAPI, clock: Callable[[], float] = time.monotonic) -> None:
        self._service = service
        self._clock = clock
        self._lock = threading.Lock()
        self._last_test: float | None = None

    def ops(self) -> dict[str, Handler]:
        return {"notify.test": self.test}

    def test(self, req: Request, conn: Connection) -> object:
        """Send a test notification; ``refused`` within NOTIFY_TEST_EVERY_S of the last one."""
        from filamentctl.service.notify import handle_test

        if not str(self._service.settings.get("notify.urls") or "").strip():
            return handle_test(self._service, req, conn)  # "not configured": nothing is sent
        with self._lock:  # held while sending: a second request waits, then is refused
            now = self._clock()
            if self._last_test is not None and now - self._last_test < NOTIFY_TEST_EVERY_S:
                wait = NOTIFY_TEST_EVERY_S - (now - self._last_test)
                raise ProtocolError(
                    protocol.REFUSED,
                    f"a test notification went out {now - self._last_test:.0f} s ago; "
                    f"try again in {wait:.0f} s",
                )
            result = handle_test(self._service, req, conn)
            if result.get("configured"):
                self._last_test = self._clock()
            return result


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
