"""Reading validation and sensor health. Pure: no I/O, no clock — ``now`` is an argument.

:class:`ReadingFilter` turns a raw sensor :class:`Sample` into a calibrated one, or raises
:class:`Rejected`. Checks, in order:

1. every value is a finite number (NaN/inf are rejected);
2. raw values are in the sensor's physical range: its temperature range (``core.sensors``:
   BME280 −40…85 °C, DHT22 −40…80 °C, DHT11 0…50 °C), 0…100 %RH, 300…1100 hPa. A temperature
   above the range is rejected with ``too_hot`` set: the caller must treat it as hot (the
   heater latches), never as a missing reading;
3. calibration offsets are added (humidity is then clamped to 0…100 %);
4. agreement before any move. With a previous accepted sample, one further than ``max_jump_c``
   / ``max_jump_humidity`` from it is rejected — unless it is the ``confirm_after``-th in a row of
   jumped samples that agree with each other (each within the jump limits of the one before).
   Then it is accepted as a new level. With no previous sample (start, or a deliberate change),
   two samples in a row must agree; the first is held back as :class:`Unconfirmed`. So neither an
   isolated spike nor an alternating spike train is ever accepted, while a real step (sensor
   swapped, lid opened for long) is accepted after ``confirm_after`` readings and can never lock
   the filter out. Any sample that passes the jump check resets the run.

:class:`SensorHealth` is the OK / DEGRADED / FAULT state machine fed with the outcome of every
read, and tells the caller when to log: one line when a failure episode starts (and when a new
cause shows up in it), a summary every few minutes while it lasts, one when it ends — never one
per failed read, also when good and bad reads alternate.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from filamentctl.core.reading import Sample
from filamentctl.core.sensors import temperature_range

TEMPERATURE_RANGE_C = temperature_range("bme280")
HUMIDITY_RANGE = (0.0, 100.0)
PRESSURE_RANGE_HPA = (300.0, 1100.0)

OK = "OK"
DEGRADED = "DEGRADED"
FAULT = "FAULT"


class Rejected(Exception):
    """A sample that must not become a reading.

    ``reason`` is short and stable ("temperature out of range") so repeated rejections for the
    same cause count as one episode; ``str(error)`` adds the values.
    """

    def __init__(self, reason: str, detail: str = "", *, too_hot: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.too_hot = too_hot  # hotter than the sensor can measure: to be treated as hot


class Unconfirmed(Rejected):
    """A first sample with nothing to compare it with, held back until the next one agrees.

    Not a fault: the caller neither counts nor logs it.
    """


class ReadingFilter:
    """Validates and calibrates samples (see the module docstring for the rules).

    Stateful only in the run of jumped samples it is waiting to confirm; the caller keeps the
    last accepted sample and passes it as ``previous``.
    """

    def __init__(
        self,
        *,
        temperature_offset_c: float = 0.0,
        humidity_offset: float = 0.0,
        max_jump_c: float = 10.0,
        max_jump_humidity: float = 25.0,
        confirm_after: int = 3,
        sensor_type: str = "bme280",
    ) -> None:
        if max_jump_c <= 0 or max_jump_humidity <= 0:
            raise ValueError("jump limits must be positive")
        if confirm_after < 1:
            raise ValueError("confirm_after must be at least 1")
        self.temperature_offset_c = temperature_offset_c
        self.humidity_offset = humidity_offset
        self.max_jump_c = max_jump_c
        self.max_jump_humidity = max_jump_humidity
        self.confirm_after = confirm_after
        self.sensor_type = sensor_type
        self.temperature_range = temperature_range(sensor_type)
        self._run: list[Sample] = []  # consecutive jumped samples that agree with each other
        self._trust_next = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ReadingFilter:
        """From the ``sensor.*`` settings (type, offsets, jump limits; defaults if absent)."""
        return cls(
            temperature_offset_c=float(settings.get("sensor.temperature_offset", 0.0)),
            humidity_offset=float(settings.get("sensor.humidity_offset", 0.0)),
            max_jump_c=float(settings.get("sensor.max_jump_c", 10.0)),
            max_jump_humidity=float(settings.get("sensor.max_jump_rh", 25.0)),
            sensor_type=str(settings.get("sensor.type", "bme280")),
        )

    def check(self, sample: Sample, previous: Sample | None) -> Sample:
        """The calibrated sample, or raises :class:`Rejected`.

        ``previous`` is the last sample this filter accepted (as returned), or None when there is
        none worth comparing with (first reading, or after a long outage).
        """
        _check_finite(sample)
        low, high = self.temperature_range
        if sample.temperature_c > high:
            raise Rejected(
                "temperature above range",
                f"{sample.temperature_c:g} °C is above the {self.sensor_type} sensor's range "
                f"(max {high:g} °C)",
                too_hot=True,
            )
        _check_range("temperature", sample.temperature_c, self.temperature_range, "°C")
        _check_range("humidity", sample.humidity, HUMIDITY_RANGE, "%")
        if sample.pressure_hpa is not None:
            _check_range("pressure", sample.pressure_hpa, PRESSURE_RANGE_HPA, "hPa")
        calibrated = Sample(
            sample.temperature_c + self.temperature_offset_c,
            min(100.0, max(0.0, sample.humidity + self.humidity_offset)),
            sample.pressure_hpa,
        )
        if self._trust_next:
            self._trust_next = False
            self._run.clear()
            return calibrated
        if previous is None:
            # Nothing to compare with: the first sample must be confirmed by the next one, so a
            # spike can never become the reference the following samples are judged by.
            if self._run and self._close(self._run[-1], calibrated):
                self._run.clear()
                return calibrated
            self._run = [calibrated]
            raise Unconfirmed("unconfirmed", "waiting for a second reading that agrees")
        if self._close(previous, calibrated):
            self._run.clear()
            return calibrated
        if self._run and self._close(self._run[-1], calibrated):
            self._run.append(calibrated)
        else:
            self._run = [calibrated]
        if len(self._run) >= self.confirm_after:
            self._run.clear()
            return calibrated
        raise Rejected("implausible jump", self._jump_detail(previous, calibrated))

    def reconfigure(self, settings: Mapping[str, Any]) -> None:
        """Apply changed offsets and jump limits (a live reload); the sensor type stays."""
        fresh = ReadingFilter.from_settings({**settings, "sensor.type": self.sensor_type})
        self.temperature_offset_c = fresh.temperature_offset_c
        self.humidity_offset = fresh.humidity_offset
        self.max_jump_c = fresh.max_jump_c
        self.max_jump_humidity = fresh.max_jump_humidity

    def reset(self) -> None:
        """Forget the pending run (e.g. after the sensor was re-initialised)."""
        self._run.clear()

    def trust_next(self) -> None:
        """The next sample is a deliberate change (a simulator pin): accept it without comparing
        (value and range checks still apply). Safe to call from another thread."""
        self._trust_next = True

    def _close(self, a: Sample, b: Sample) -> bool:
        return (
            abs(a.temperature_c - b.temperature_c) <= self.max_jump_c
            and abs(a.humidity - b.humidity) <= self.max_jump_humidity
        )

    def _jump_detail(self, previous: Sample, sample: Sample) -> str:
        parts = []
        if abs(previous.temperature_c - sample.temperature_c) > self.max_jump_c:
            parts.append(
                f"temperature {previous.temperature_c:.1f} → {sample.temperature_c:.1f} °C "
                f"(limit {self.max_jump_c:g} °C per reading)"
            )
        if abs(previous.humidity - sample.humidity) > self.max_jump_humidity:
            parts.append(
                f"humidity {previous.humidity:.1f} → {sample.humidity:.1f} % "
                f"(limit {self.max_jump_humidity:g} % per reading)"
            )
        return ", ".join(parts)


def _check_finite(sample: Sample) -> None:
    values = {"temperature": sample.temperature_c, "humidity": sample.humidity}
    if sample.pressure_hpa is not None:
        values["pressure"] = sample.pressure_hpa
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise Rejected("not a number", ", ".join(f"{name} {values[name]}" for name in bad))


def _check_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise Rejected(
            f"{name} out of range", f"{value:g} {unit} is outside {low:g}…{high:g} {unit}"
        )


# -- health -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """Something worth one log line: a failure episode ``started``, a new cause ``changed`` it, a
    periodic ``summary`` of a lasting episode, or it ``ended``. ``str(event)`` is that line."""

    kind: Literal["started", "changed", "summary", "ended"]
    message: str

    def __str__(self) -> str:
        return self.message


_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


class SensorHealth:
    """OK / DEGRADED / FAULT from the outcome of each read, and when to log about it.

    - FAULT: ``fault_after`` failed reads in a row, or no good reading for ``stale_after_s``
      (counted from ``started_at``, or from the first event when None, until the first good one);
    - DEGRADED: otherwise, any failure within the last ``window_s``;
    - OK: otherwise.

    A failure is a sensor error (:meth:`failed`, counted in ``errors``) or a rejected sample
    (:meth:`reject`, counted in ``rejected``). Failures form an *episode*: it starts with a
    failure and ends at the first good read ``settle_s`` after the last failure, so a flapping
    sensor (good and bad reads alternating) is one episode, not one per bad read. The methods
    return a :class:`HealthEvent` only when the caller should log:

    - ``started``: the first failure of an episode;
    - ``changed``: a failure whose cause was not seen before in this episode (the cause is
      ``key``, by default the error text with its numbers masked, so the same error with other
      values is one cause; causes that alternate are each reported once);
    - ``summary``: at most every ``summary_every_s`` while the episode lasts, the failed and good
      reads since the previous line;
    - ``ended`` (from :meth:`ok`): the episode is over, with its totals.
    """

    def __init__(
        self,
        started_at: float | None = None,
        *,
        fault_after: int = 3,
        stale_after_s: float = 30.0,
        window_s: float = 300.0,
        settle_s: float = 60.0,
        summary_every_s: float = 300.0,
    ) -> None:
        if fault_after < 1 or stale_after_s <= 0 or window_s < 0:
            raise ValueError("fault_after ≥ 1, stale_after_s > 0 and window_s ≥ 0 are required")
        if settle_s < 0 or summary_every_s <= 0:
            raise ValueError("settle_s ≥ 0 and summary_every_s > 0 are required")
        self.fault_after = fault_after
        self.stale_after_s = stale_after_s
        self.window_s = window_s
        self.settle_s = settle_s
        self.summary_every_s = summary_every_s
        self.started_at = started_at
        self.errors = 0
        self.rejected = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_ok_at: float | None = None
        self._last_seen: float | None = started_at  # the latest ``now`` we were given
        self._recent: deque[float] = deque()  # failure times within the window
        self._episode: _Episode | None = None

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], started_at: float | None = None
    ) -> SensorHealth:
        """Staleness from ``sensor.stale_after`` (default 30 s); other limits at their defaults."""
        return cls(started_at, stale_after_s=float(settings.get("sensor.stale_after", 30.0)))

    def ok(self, now: float) -> HealthEvent | None:
        """A good reading was accepted at ``now``."""
        self._seen(now)
        self.last_ok_at = now
        self.consecutive_failures = 0
        episode = self._episode
        if episode is None:
            return None
        episode.good += 1
        episode.good_since_line += 1
        if now - episode.last_failure_at < self.settle_s:
            return self._summary_if_due(now)
        self._episode = None
        failed, plural = episode.failed, "" if episode.failed == 1 else "s"
        lasted = episode.last_failure_at - episode.started_at
        between = episode.good_between
        flapping = f" (and {between} good in between)" if between else ""
        return HealthEvent(
            "ended",
            f"sensor recovered: {failed} failed read{plural} over {lasted:.0f} s{flapping}; "
            f"no failure for {now - episode.last_failure_at:.0f} s",
        )

    def failed(self, now: float, error_text: str, *, key: str | None = None) -> HealthEvent | None:
        """A read failed at ``now`` with ``error_text`` (one line)."""
        self.errors += 1
        return self._failure(now, error_text, key)

    def reject(self, now: float, reason: str, *, key: str | None = None) -> HealthEvent | None:
        """The filter rejected the sample read at ``now``; pass ``key=Rejected.reason``."""
        self.rejected += 1
        return self._failure(now, f"reading rejected: {reason}", key)

    def health(self, now: float | None = None) -> str:
        """OK, DEGRADED or FAULT at ``now`` (default: the latest time given to this object)."""
        now = self._now(now)
        if self.consecutive_failures >= self.fault_after:
            return FAULT
        last_good = self.last_ok_at if self.last_ok_at is not None else self.started_at
        if last_good is not None and now - last_good > self.stale_after_s:
            return FAULT
        self._expire(now)
        if self.consecutive_failures or self._recent:
            return DEGRADED
        return OK

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """What ``status`` shows about the sensor (ages in seconds at ``now``)."""
        now = self._now(now)
        return {
            "health": self.health(now),
            "last_error": self.last_error,
            "last_error_age_s": _age(now, self.last_error_at),
            "last_ok_age_s": _age(now, self.last_ok_at),
            "errors": self.errors,
            "rejected": self.rejected,
            "consecutive_failures": self.consecutive_failures,
        }

    def _failure(self, now: float, text: str, key: str | None) -> HealthEvent | None:
        self._seen(now)
        self.consecutive_failures += 1
        self.last_error = text
        self.last_error_at = now
        self._recent.append(now)
        self._expire(now)
        cause = _NUMBER.sub("#", text) if key is None else key
        episode = self._episode
        if episode is None:
            self._episode = _Episode(started_at=now, last_failure_at=now, last_line_at=now)
            self._episode.causes.add(cause)
            return HealthEvent("started", f"sensor failing: {text}")
        episode.failed += 1
        episode.failed_since_line += 1
        episode.last_failure_at = now
        episode.good_between = episode.good
        if cause not in episode.causes:
            episode.causes.add(cause)
            return HealthEvent("changed", f"sensor still failing, now: {text}")
        return self._summary_if_due(now)

    def _summary_if_due(self, now: float) -> HealthEvent | None:
        episode = self._episode
        if episode is None or now - episode.last_line_at < self.summary_every_s:
            return None
        since = now - episode.last_line_at
        failed, good = episode.failed_since_line, episode.good_since_line
        episode.last_line_at = now
        episode.failed_since_line = episode.good_since_line = 0
        plural = "" if failed == 1 else "s"
        return HealthEvent(
            "summary",
            f"sensor still failing: {failed} failed read{plural} and {good} good in the last "
            f"{since:.0f} s (last error: {self.last_error})",
        )

    def _seen(self, now: float) -> None:
        if self.started_at is None:
            self.started_at = now
        if self._last_seen is None or now > self._last_seen:
            self._last_seen = now

    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        return self._last_seen if self._last_seen is not None else 0.0

    def _expire(self, now: float) -> None:
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()


@dataclass(slots=True)
class _Episode:
    """A run of failures (with good reads in between) that has not settled yet."""

    started_at: float
    last_failure_at: float
    last_line_at: float  # when the last line about it was returned (started/summary)
    failed: int = 1
    good: int = 0
    good_between: int = 0  # good reads between the first and the last failure
    failed_since_line: int = 0
    good_since_line: int = 0
    causes: set[str] = field(default_factory=set)


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(now - then, 3)
