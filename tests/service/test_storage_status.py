"""The ``storage`` part of ``status`` has one shape, whether a database is configured or not."""

from __future__ import annotations

from collections.abc import Sequence

from filamentctl.core.outcome import Outcome, WriteResult
from filamentctl.core.reading import Reading
from tests.helpers import in_process_service, settings


class _DownSink:
    """A database that never answers (a real one is not needed for the shape)."""

    name = "down"

    def open(self) -> None:
        pass

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        return WriteResult(Outcome.RETRY, None, "connection refused")

    def describe(self) -> str:
        return "a database that is down"

    def close(self) -> None:
        pass


def test_storage_status_has_the_same_fields_with_and_without_a_database() -> None:
    values = settings(sensor__read_interval=0.1)
    with in_process_service(values) as service:
        without = service.status()["storage"]
    with in_process_service(values, sink=_DownSink()) as service:
        with_database = service.status()["storage"]
    assert list(without) == list(with_database)
    assert (without["backend"], with_database["backend"]) == ("none", "down")
    assert without["connected"] is False and without["backlog"] == 0
    assert without["history_error"] is None and without["last_error"] is None
