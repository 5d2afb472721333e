"""The one Protocol every database backend implements, and the registry that picks one by name.

A sink is synchronous and owns no threads or retries: the delivery engine batches, retries and
keeps the backlog. ``write`` never raises for backend or network trouble; it returns a
:class:`~filamentctl.core.outcome.WriteResult`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from filamentctl.core.outcome import WriteResult
from filamentctl.core.reading import Reading


class Sink(Protocol):
    name: str  # database.type value, e.g. "victoriametrics"

    def open(self) -> None:
        """Prepare the backend (create database/table) — best effort, never raises."""

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """Deliver one batch, oldest first. Idempotent: resending the same readings is harmless."""

    def describe(self) -> str:
        """Where it writes, for status and logs (URL without credentials)."""

    def close(self) -> None: ...


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
