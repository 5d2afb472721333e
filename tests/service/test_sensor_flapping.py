"""A flapping sensor (good and bad reads alternating) is one fault episode in the service's log.

A real service in this process (real SQLite, real socket, MockFactory relays) reads a sensor that
fails every other read, every 0.1 s for 3 s (the case that logged 8 WARNINGs in 3 s): the log gets
one line when the failures start, none per further bad read, while ``status`` still counts every
failure. (The sensor is the only stand-in: a DHT that fails on cue cannot run here; the real DHT
driver's errors are tested in tests/hardware_emulated.) The episode and summary rules themselves
are table-tested on ``SensorHealth`` in tests/unit/test_validation.py.
"""

from __future__ import annotations

import logging
import threading

import pytest

from filamentctl.core.reading import Sample
from filamentctl.hw.sensor import SensorError
from tests.helpers import in_process_service, settings, wait_until


class FlappingSensor:
    """Alternates a good sample and a checksum error."""

    kind = "flapping"
    min_interval_s = 0.0

    def __init__(self) -> None:
        self.reads = 0
        self._lock = threading.Lock()

    def read(self) -> Sample:
        with self._lock:
            self.reads += 1
            n = self.reads
        if n % 2 == 0:
            raise SensorError("DHT22 on GPIO4: checksum did not validate in 3 attempts")
        return Sample(22.0, 40.0, None)

    def close(self) -> None:
        pass


def test_alternating_good_and_bad_reads_log_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    sensor = FlappingSensor()
    with (
        caplog.at_level(logging.INFO, logger="filamentctl.service"),
        in_process_service(settings(sensor__read_interval=0.1), sensor=sensor) as service,
    ):
        wait_until(lambda: sensor.reads >= 30, timeout=30, what="3 s of flapping reads")
        status = service.status()["sensor"]
    sensor_lines = [
        r for r in caplog.records if r.name == "filamentctl.service" and "sensor" in r.getMessage()
    ]
    warnings = [r for r in sensor_lines if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in sensor_lines]
    assert "sensor failing" in warnings[0].getMessage()
    assert status["errors"] >= 14  # every failure is still counted
