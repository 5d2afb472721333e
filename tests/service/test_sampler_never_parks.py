"""The sampler keeps reading whatever a reload or the clock does.

The socket fuzz test once stopped seeing new readings: a fuzzed ``config.reload`` reloaded the
settings from the (empty) store, so the service fell back from the test's 0.1 s read interval to
the default 5 s, and the batches after it outlived pytest's timeout waiting for readings. Worse,
the sampler only looked at the interval again after sleeping out the old one: a reload from a
long interval to a short one left it asleep for up to the old interval (an hour at most). Now it
sleeps in slices that re-read the interval and never sleeps more than one interval in all.
"""

from __future__ import annotations

import time

from filamentctl.service.reload import apply_reload
from tests.helpers import in_process_service, raw_request, settings, wait_until


def test_a_reload_to_a_shorter_interval_applies_at_once() -> None:
    values = settings(sensor__read_interval=300.0, sensor__stale_after=900.0)
    with in_process_service(values) as service:
        wait_until(lambda: service.readings_total >= 1, what="the first reading")
        report = apply_reload(service, {**values, "sensor.read_interval": 0.1})
        assert report["applied"] == ["sensor.read_interval"]
        first = service.readings_total
        # Not after the rest of the old 300 s: within a recheck slice (1 s) of the reload.
        wait_until(lambda: service.readings_total >= first + 3, what="readings at 0.1 s")


def test_a_clock_that_jumps_back_does_not_park_the_sampler() -> None:
    offset = [0.0]

    def clock() -> float:
        return time.monotonic() + offset[0]

    values = settings(sensor__read_interval=0.1)
    with in_process_service(values, clock=clock) as service:
        wait_until(lambda: service.readings_total >= 2, what="the first readings")
        offset[0] = -3600.0  # e.g. a hand clock reset, or a clock source changed under us
        before = service.readings_total
        wait_until(lambda: service.readings_total >= before + 3, what="readings after the jump")


def test_a_fuzzed_reload_does_not_change_what_the_fuzz_service_runs_with() -> None:
    """The fuzz test's service keeps its settings in its store, so a reload is a no-op."""
    values = settings(sensor__read_interval=0.1)
    with in_process_service(values, stored=True) as service:
        [reply] = raw_request(service.paths.socket, b'{"id":1,"op":"config.reload"}\n')
        assert reply["ok"], reply
        assert reply["result"]["changed"] == []
        assert service.settings["sensor.read_interval"] == 0.1
