"""Reaction time from a reading that crosses a threshold to the heater relay switching.

A real in-process :class:`~filamentctl.service.app.Service` (real SQLite history, real control
loop, gpiozero ``MockFactory`` pins) reads a scripted sensor that alternates 17 °C and 23 °C
around an 18–22 °C band, so every reading is a crossing. Measured per reading: from the moment
the sensor hands back its sample to the moment the pin changes level (a mock pin that notes
the time of each change). Baselines measured in the same run: a bare relay toggle (gpiozero
``OutputDevice.on()`` on a mock pin) and a whole ``sample_once`` call whose reading stays
inside the band (the same path without a switch).

Goal: median and p95 reaction time below 50 ms. Run: ``python -m bench.control_latency``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._util import machine

GOAL_MS = 50.0


def _percentiles(values: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the measurement, print the table; returns the figures in ms (``median_ms``, ...)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="50 samples, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples = 50
    logging.disable(logging.INFO)  # a log line per switch would be part of what we time

    from gpiozero import OutputDevice
    from gpiozero.pins.mock import MockFactory, MockPin

    from filamentctl import paths as _paths
    from filamentctl.core import schema
    from filamentctl.core.reading import Sample
    from filamentctl.service.app import Service

    class TimedPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type hints
        """A mock pin that notes when its level last changed."""

        changed_at = 0.0

        def _change_state(self, value: bool) -> bool:
            changed = bool(super()._change_state(value))
            if changed:
                self.changed_at = time.perf_counter()
            return changed

    class ScriptedSensor:
        """Returns ``temperature`` and notes when it handed the sample back."""

        kind = "scripted"
        min_interval_s = 0.0

        def __init__(self) -> None:
            self.temperature = 20.0
            self.returned_at = 0.0

        def read(self) -> Sample:
            sample = Sample(self.temperature, 50.0, None)
            self.returned_at = time.perf_counter()
            return sample

        def close(self) -> None:
            pass

    # Bare relay toggle: the floor any switching costs on this machine.
    bare = MockFactory(pin_class=TimedPin)
    device = OutputDevice(5, initial_value=False, pin_factory=bare)
    toggles: list[float] = []
    for i in range(args.samples):
        t0 = time.perf_counter()
        if i % 2:
            device.off()
        else:
            device.on()
        toggles.append(time.perf_counter() - t0)
    device.close()

    values: dict[str, Any] = schema.defaults()
    values.update(
        {
            "sensor.read_interval": 3600.0,  # the bench takes the readings itself
            "sensor.stale_after": 7200.0,
            "heater.enabled": True,
            "heater.min_temp_c": 18.0,
            "heater.max_temp_c": 22.0,
            "heater.cutoff_temp_c": 40.0,
            "heater.min_cycle_s": 0.0,
            "sensor.max_jump_c": 50.0,
        }
    )
    home = Path(tempfile.mkdtemp(prefix="fcl"))
    factory = MockFactory(pin_class=TimedPin)
    sensor = ScriptedSensor()
    service = Service(
        values,
        _paths.resolve({"FILAMENTCTL_HOME": str(home)}),
        sensor=sensor,
        pin_factory=factory,
    )
    reactions: list[float] = []
    crossing_calls: list[float] = []
    steady_calls: list[float] = []
    try:
        service.start()
        while service.readings_total < 1:  # the sampler's own first reading
            time.sleep(0.01)
        pin = factory.pin(int(values["heater.gpio_pin"]))
        for i in range(args.samples):
            # Inside the band: nothing switches.
            sensor.temperature = 20.0
            t0 = time.perf_counter()
            service.sample_once(None)
            steady_calls.append(time.perf_counter() - t0)
            # A crossing: 17 °C turns the heater ON, 23 °C turns it OFF.
            sensor.temperature = 17.0 if i % 2 == 0 else 23.0
            before = pin.changed_at
            t0 = time.perf_counter()
            service.sample_once(None)
            crossing_calls.append(time.perf_counter() - t0)
            if pin.changed_at == before:
                raise RuntimeError(f"the heater did not switch at {sensor.temperature} °C")
            reactions.append(pin.changed_at - sensor.returned_at)
    finally:
        service.stop(delivery_timeout=1.0)
        shutil.rmtree(home, ignore_errors=True)

    rows = {
        "bare relay toggle (baseline)": _percentiles(toggles),
        "sample_once, no switch (baseline)": _percentiles(steady_calls),
        "sample_once, crossing": _percentiles(crossing_calls),
        "reading -> relay switched": _percentiles(reactions),
    }
    print(f"machine: {machine()}; {args.samples} samples each")
    print(f"{'measurement':<36}{'median ms':>11}{'p95 ms':>10}")
    for name, (median, p95) in rows.items():
        print(f"{name:<36}{median:>11.3f}{p95:>10.3f}")
    median, p95 = rows["reading -> relay switched"]
    steady = rows["sample_once, no switch (baseline)"][0]
    print(
        f"reaction median {median:.3f} ms = {median / steady:.2f}x a no-switch sample_once; "
        f"p95 {p95:.3f} ms (goal < {GOAL_MS:.0f} ms): " + ("met" if p95 < GOAL_MS else "MISSED")
    )
    return {
        "median_ms": median,
        "p95_ms": p95,
        "toggle_median_ms": rows["bare relay toggle (baseline)"][0],
        "sample_once_median_ms": steady,
        "sample_once_crossing_median_ms": rows["sample_once, crossing"][0],
        "samples": float(args.samples),
    }


if __name__ == "__main__":
    main()
