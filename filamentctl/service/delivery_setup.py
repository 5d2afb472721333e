"""Which delivery worker runs, if any: built at start, rebuilt on a reload, retried at boot.

:class:`DeliveryHolder` owns the service's current :class:`DeliveryWorker` (None with
``database.type none``). At start a sink whose secret is a ``vault:`` reference in an
unreachable Vault does not stop the box: it samples, controls and keeps the history, and a
``delivery-setup`` thread retries every :data:`SINK_RETRY_S` until the secret can be read. A
live reload of ``database.*`` (and the like) swaps the worker; the backlog stays in the history
with a per-sink cursor, so nothing is lost. It also answers the ``storage`` part of ``status``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filamentctl.service.delivery import DeliveryWorker, EventCallback
    from filamentctl.sinks.base import Sink
    from filamentctl.store.history import History

log = logging.getLogger("filamentctl.service")

SINK_RETRY_S = 30.0  # how often to retry building a sink whose secret is in an unreachable Vault
SWAP_DRAIN_S = 0.5  # the old worker's last delivery attempt while swapping sinks

Spawn = Callable[[str, Callable[[], None]], None]


class DeliveryHolder:
    """The current delivery worker of one service. ``sink`` replaces the configured one (tests);
    ``on_event`` gets the worker's events (the service puts them on its bus)."""

    def __init__(
        self,
        history: History,
        *,
        sink: Sink | None,
        on_event: EventCallback,
        stopping: threading.Event,
    ) -> None:
        self._history = history
        self._sink_override = sink
        self._on_event = on_event
        self._stopping = stopping
        self._lock = threading.Lock()
        self.worker: DeliveryWorker | None = None
        self.setup_error: str | None = None  # why delivery has not started yet (Vault down)

    def start(self, settings: Mapping[str, object], spawn: Spawn) -> None:
        """Start delivering per ``settings``; with the sink's secret out of reach, keep trying
        on a thread made by ``spawn`` (the service's guarded threads)."""
        from filamentctl.store.vault import VaultUnreachable

        try:
            sink = self.make_sink(settings)
        except VaultUnreachable as exc:
            # The network (or Vault) may come up after us at boot: sample, control and keep the
            # history now, and start delivering once the secret can be read.
            self.setup_error = str(exc)
            log.error("delivery not started yet: %s; retrying every %.0f s", exc, SINK_RETRY_S)
            spawn("delivery-setup", lambda: self._retry(settings))
            return
        if sink is not None:
            self._start_worker(sink, settings)

    def make_sink(self, settings: Mapping[str, object]) -> Sink | None:
        """The sink for ``settings``, None for ``database.type`` none. Raises for an
        unsupported backend or a secret that cannot be read."""
        if self._sink_override is not None:
            return self._sink_override
        if settings["database.type"] == "none":
            return None
        from filamentctl.service.secrets import with_secrets
        from filamentctl.sinks.base import create_sink

        return create_sink(with_secrets(settings, "database."))

    def swap(self, settings: Mapping[str, object], join_timeout_s: float) -> None:
        """Replace the worker and sink (a live reload). Raises, changing nothing, when the new
        sink cannot be built."""
        sink = self.make_sink(settings)
        old = self.worker
        if old is not None:
            old.stop(SWAP_DRAIN_S, report_stuck=False)
            # Two workers must never drain the same cursor: wait until the old one has finished
            # its last request (bounded by the HTTP timeout), even if that outlasts the drain.
            if not old.join(join_timeout_s):
                # Still stuck past its own timeout: go on (writes are idempotent where the
                # backend allows), rather than leave the box with no delivery at all.
                log.warning("the old delivery worker is still busy; starting the new one anyway")
            old_name = old.status().get("backend")
            if sink is None or old_name != sink.name:
                self._history.release_sink(str(old_name))
        if sink is None:
            self.worker = None
            return
        self._start_worker(sink, settings).wake()

    def _start_worker(self, sink: Sink, settings: Mapping[str, object]) -> DeliveryWorker:
        from filamentctl.service.delivery import DeliveryWorker

        worker = DeliveryWorker(self._history, sink, settings, on_event=self._on_event)
        worker.start()
        self.worker = worker
        self.setup_error = None
        return worker

    def _retry(self, settings: Mapping[str, object]) -> None:
        from filamentctl.store.vault import VaultUnreachable

        while not self._stopping.wait(SINK_RETRY_S):
            try:
                sink = self.make_sink(settings)
            except VaultUnreachable as exc:
                self.setup_error = str(exc)
                continue
            if sink is None:
                return
            with self._lock:
                if self._stopping.is_set() or self.worker is not None:
                    return
                self._start_worker(sink, settings)
            log.info("delivery to %s started", settings["database.type"])
            return

    def stop(self, timeout_s: float) -> None:
        if self.worker is not None:
            self.worker.stop(timeout_s)

    def status(self, backend: str) -> dict[str, Any]:
        """The ``storage`` section of ``status`` (``backend``: the configured database.type)."""
        from filamentctl.service.delivery import storage_status

        history = self._history
        if self.worker is not None:
            out = dict(self.worker.status())
        else:
            waiting = self.setup_error  # a sink still waiting for its secret (Vault down)
            out = storage_status(
                backend if waiting else "none", history.counters(), last_error=waiting
            )
        out["history_error"] = history.last_commit_error
        out["history_recovered"] = history.recovered
        return out
