"""The one Protocol every database backend implements, and the registry that picks one by name.

A sink is synchronous and owns no threads or retries: the delivery engine batches, retries and
keeps the backlog. ``write`` never raises for backend or network trouble; it returns a
:class:`~filamentctl.core.outcome.WriteResult`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from filamentctl.core.outcome import WriteResult
from filamentctl.core.reading import Reading, ReadingRow


class Sink(Protocol):
    name: str  # database.type value, e.g. "victoriametrics"

    def open(self) -> None:
        """Prepare the backend (create database/table) — best effort, never raises."""

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """Deliver one batch, oldest first. Idempotent: resending the same readings is harmless."""

    def describe(self) -> str:
        """Where it writes, for status and logs (URL without credentials)."""

    def close(self) -> None: ...


@runtime_checkable
class PipelinedSink(Protocol):
    """Optional extra of a :class:`Sink`: encode a batch ahead, send it, read the answer later.

    The delivery engine uses it to drain a backlog faster: while the backend works on batch N
    it fetches and encodes batch N+1, and sends that the moment N's answer came back. At most one
    batch is in flight; ``send_prepared`` then ``receive`` always come in pairs (or ``abort``).
    """

    def prepare(self, rows: Sequence[ReadingRow]) -> bytes:
        """The request body for these readings (oldest first); pure work, no I/O."""

    def send_prepared(self, body: bytes) -> None:
        """Send a body from :meth:`prepare` without waiting; never raises for network trouble."""

    def receive(self) -> WriteResult:
        """The outcome of the body sent last, as :meth:`Sink.write` would have returned it."""

    def abort(self) -> None:
        """Forget a sent body whose answer will not be read (it counts as not delivered)."""


# database.type -> module under filamentctl.sinks that defines ``create(settings) -> Sink``.
BACKENDS: dict[str, str] = {
    "none": "none",
    "victoriametrics": "victoriametrics",
    "influxdb_v1": "influxdb_v1",
    "influxdb_v2": "influxdb_v2",
    "influxdb_v3": "influxdb_v3",
    "prometheus": "prometheus",
    "timescaledb": "timescaledb",
}


def create_sink(settings: Mapping[str, Any]) -> Sink:
    """Build the sink named by ``settings["database.type"]``, importing its module lazily."""
    kind = str(settings["database.type"])
    module_name = BACKENDS.get(kind)
    if module_name is None:
        raise ValueError(f"database.type {kind!r} is not supported by this version")
    module = importlib.import_module(f"filamentctl.sinks.{module_name}")
    sink: Sink = module.create(settings)
    return sink
