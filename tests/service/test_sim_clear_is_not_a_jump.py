"""``sim clear`` after pinned values is a deliberate change, like ``sim set``: the first reading
of the free-running model is accepted, not rejected as an implausible jump (it used to be, for
a few readings, which also counted as sensor errors)."""

from __future__ import annotations

from typing import Any

from filamentctl.client import Client
from tests.helpers import in_process_service, settings, wait_until


def call(svc: Any, op: str, **args: Any) -> Any:
    with Client.connect(svc.paths.socket, timeout=5.0) as client:
        return client.call(op, args)


def test_returning_from_a_pinned_value_is_not_rejected() -> None:
    with in_process_service(settings(sensor__read_interval=0.05)) as svc:
        wait_until(lambda: svc.latest is not None, what="a first reading")
        call(svc, "sim.set", temperature=60.0)  # far above the model's ~22 °C
        wait_until(lambda: svc.latest.temperature_c == 60.0, what="the pinned reading")
        rejected = svc.status()["sensor"]["rejected"]
        call(svc, "sim.clear")
        wait_until(lambda: svc.latest.temperature_c < 40.0, what="the model's reading again")
        assert svc.status()["sensor"]["rejected"] == rejected
