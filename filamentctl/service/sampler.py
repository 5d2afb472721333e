"""The sampler thread: read the sensor, validate, hand the sample to control, store, publish.

One :class:`Sampler` per service. Every accepted sample goes to the control loop first (control
never waits for the history), then into the history buffer with its UTC timestamp and sequence
number, then to subscribers and the drying session. A rejected sample switches the heater OFF at
that read; a first sample waits for a second that agrees (``core.validation``). The buffer is
committed every ``storage.commit_interval``, or at once when it makes a delivery batch due.

The sampler sleeps in slices that re-read ``sensor.read_interval``, never more than one interval
in all (``core.schedule``): a live reload to a shorter interval, or a clock jump, cannot park it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from filamentctl.core.reading import Reading, Sample
from filamentctl.core.schema import number
from filamentctl.core.validation import HealthEvent, ReadingFilter, SensorHealth
from filamentctl.service.bus import EventBus
from filamentctl.service.upkeep import RETENTION_INTERVAL_S

if TYPE_CHECKING:
    from filamentctl.hw.sensor import Sensor
    from filamentctl.service.control import ControlLoop
    from filamentctl.service.delivery import DeliveryWorker
    from filamentctl.store.history import History

log = logging.getLogger("filamentctl.service")

# The sampler re-reads sensor.read_interval at least this often while it sleeps, so a reload
# from a long interval to a short one applies within this long, not after the old interval.
SAMPLER_RECHECK_S = 1.0
CONFIRM_AFTER_S = 0.5  # the read that confirms a first sample comes this soon (or the sensor's min)


class Sampler:
    """Samples one sensor into one history. ``delivery()`` is the current delivery worker (a
    live reload may swap it) or None; ``on_reading`` gets every stored reading (drying)."""

    def __init__(
        self,
        settings: Mapping[str, object],
        sensor: Sensor,
        control: ControlLoop,
        history: History,
        bus: EventBus,
        *,
        clock: Callable[[], float],
        wall_ns: Callable[[], int],
        stopping: threading.Event,
        delivery: Callable[[], DeliveryWorker | None],
        on_reading: Callable[[Reading], None],
    ) -> None:
        self._settings = settings
        self.sensor = sensor
        self._control = control
        self._history = history
        self._bus = bus
        self._clock = clock
        self._wall_ns = wall_ns
        self._stopping = stopping
        self._delivery = delivery
        self._on_reading = on_reading
        self.kind = str(getattr(sensor, "kind", settings["sensor.type"]))
        self.filter = ReadingFilter.from_settings(settings)
        self.health = SensorHealth(clock(), stale_after_s=number(settings, "sensor.stale_after"))
        self._lock = threading.Lock()  # latest, readings_total and the history buffer
        self.readings_total = 0
        self.latest: Reading | None = None
        self.latest_at: float | None = None  # clock() when the latest reading was taken
        self.awaiting_confirmation = False  # the filter holds a first sample back
        self._pending_since: float | None = None  # clock() of the oldest uncommitted reading

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """The sampler thread's body: until the stopping event is set."""
        from filamentctl.core.schedule import next_slot

        min_interval = float(getattr(self.sensor, "min_interval_s", 0))
        last_commit = self._clock()
        last_retention = self._clock() - RETENTION_INTERVAL_S  # run once at start
        next_at = self._clock()
        previous: Sample | None = None
        while not self._stopping.is_set():
            read_at = self._clock()
            commit_every = number(self._settings, "storage.commit_interval")
            previous = self.sample_once(previous)
            now = self._clock()
            if now - last_commit >= commit_every or self._batch_due(now):
                self.commit()
                last_commit = now
            if self._delivery() is None and now - last_retention >= RETENTION_INTERVAL_S:
                # With a database the delivery worker does this; without one, we do.
                last_retention = now
                self._apply_retention()
            next_at = next_slot(next_at, now, self._read_interval(min_interval))
            if self.awaiting_confirmation:
                # A first sample waits for a second that agrees: take that one soon, not a
                # whole (possibly long) read interval later.
                next_at = min(next_at, now + max(min_interval, CONFIRM_AFTER_S))
            self._sleep_until_next_read(next_at, read_at, min_interval)

    def _read_interval(self, min_interval: float) -> float:
        # Read on every use: a live config reload may change it.
        return max(number(self._settings, "sensor.read_interval"), min_interval)

    def _sleep_until_next_read(self, next_at: float, read_at: float, min_interval: float) -> None:
        """Sleep until the next slot, in slices that re-read the interval, never longer than one
        interval in all (a reload to a shorter interval, a clock jump: see core.schedule)."""
        from filamentctl.core.schedule import read_wait_s

        waited = 0.0
        while True:
            interval = self._read_interval(min_interval)
            wait = read_wait_s(next_at, read_at, interval, self._clock(), waited)
            if wait <= 0:
                return
            step = min(wait, SAMPLER_RECHECK_S)
            if self._stopping.wait(step):
                return
            waited += step

    # -- one sample -------------------------------------------------------------------------
    def sample_once(self, previous: Sample | None) -> Sample | None:
        """Read, validate, control, store and publish one sample; returns the last accepted."""
        from filamentctl.core.validation import Rejected, Unconfirmed
        from filamentctl.hw.sensor import SensorError

        try:
            raw = self.sensor.read()
        except SensorError as exc:
            self._log_health(self.health.failed(self._clock(), str(exc)), logging.WARNING)
            return previous
        except Exception as exc:  # a driver bug is a sensor fault, not a service crash
            message = f"{type(exc).__name__}: {exc}"
            self._log_health(self.health.failed(self._clock(), message), logging.WARNING)
            return previous
        # The sample's moment: after the read returned (a DHT read with retries takes seconds).
        now = self._clock()
        time_ns = self._wall_ns()
        try:
            sample = self.filter.check(raw, previous)
        except Unconfirmed:
            self.awaiting_confirmation = True
            return previous  # a first sample waits for the next one to agree: not a fault
        except Rejected as exc:
            # Safety first, before any logging: the heater goes OFF at this very read.
            self._control.on_rejected(str(exc), now, too_hot=exc.too_hot)
            event = self.health.reject(now, str(exc), key=exc.reason)
            self._log_health(event, logging.WARNING)
            return previous
        self.awaiting_confirmation = False
        # Control first: it must never wait for the history (a long query holds its lock).
        self._control.on_reading(sample, now)
        with self._lock:
            seq = self._history.next_seq()
            reading = Reading(
                time_ns, seq, sample.temperature_c, sample.humidity, sample.pressure_hpa
            )
            self._history.add(reading)
            self.latest = reading
            self.latest_at = now
            self.readings_total += 1
        self._log_health(self.health.ok(now), logging.INFO)
        self._bus.publish("reading", reading.to_dict())
        self._on_reading(reading)
        return sample

    def _log_health(self, event: HealthEvent | None, level: int) -> None:
        """One log line per fault episode (start, change of cause, end), never one per read."""
        if event is None:
            return
        log.log(level, "sensor %s: %s", self.kind, event.message)
        self._bus.publish(
            "sensor",
            {
                "type": self.kind,
                "event": event.kind,
                "message": event.message,
                **self.health.snapshot(self._clock()),
            },
        )

    def reconfigure(self, settings: Mapping[str, object]) -> None:
        """Apply changed calibration, jump limits and staleness (a live reload)."""
        self.filter.reconfigure(settings)
        self.health.stale_after_s = number(settings, "sensor.stale_after")

    # -- the history ------------------------------------------------------------------------
    def _apply_retention(self) -> None:
        try:
            removed = self._history.apply_retention(self._wall_ns())
        except Exception as exc:
            log.error("history: retention failed (%s)", exc)
            return
        if removed:
            log.info("history: removed %d readings older than storage.retention_days", removed)

    def _batch_due(self, now: float) -> bool:
        """Whether the uncommitted readings make a delivery batch due now (size or flush
        interval): then they are committed at once rather than at the next commit interval,
        since delivery only ever sends committed readings."""
        delivery = self._delivery()
        if delivery is None:
            return False
        pending = self._history.pending_count()
        if pending and self._pending_since is None:
            self._pending_since = self.latest_at if self.latest_at is not None else now
        return bool(delivery.wants_commit(pending, self._pending_since, now))

    def commit(self) -> None:
        """Commit the buffered readings and tell delivery; a disk error keeps them in memory."""
        oldest_at = self._pending_since
        try:
            n = self._history.commit()
        except Exception as exc:  # disk full, I/O error: keep sampling and controlling
            log.error("history: cannot write readings (%s); keeping them in memory", exc)
            return
        if not self._history.pending_count():
            self._pending_since = None
        delivery = self._delivery()
        if n and delivery is not None:
            delivery.committed(self._history.last_committed_seq(), oldest_at)

    def reading_status(self, now: float) -> dict[str, Any] | None:
        """The ``reading`` section of ``status`` (the latest reading with its age), or None."""
        latest, at = self.latest, self.latest_at
        if latest is None:
            return None
        out = latest.to_dict()
        out["age_s"] = round(now - (at if at is not None else now), 3)
        return out
