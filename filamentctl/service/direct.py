"""Direct mode: what ``read``, ``flush`` and ``history`` do when no service is running.

``flush`` takes the service's state lock, so it never writes the history while a service does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from filamentctl import paths as _paths
from filamentctl.errors import UserError


def read_direct() -> dict[str, Any]:
    """One validated reading straight from the configured sensor."""
    from filamentctl.core.reading import Reading
    from filamentctl.core.validation import ReadingFilter, Rejected
    from filamentctl.hw.factory import make_sensor
    from filamentctl.hw.sensor import SensorError
    from filamentctl.store.settings import load_settings

    settings = load_settings(_paths.resolve())
    sensor = make_sensor(settings, clock=time.monotonic)
    try:
        raw = sensor.read()
        checks = ReadingFilter.from_settings(settings)
        checks.trust_next()  # one sample to show, nothing to compare it with: values only
        sample = checks.check(raw, None)
    except SensorError as exc:
        raise UserError(f"cannot read the {settings['sensor.type']} sensor: {exc}") from None
    except Rejected as exc:
        raise UserError(
            f"the sensor returned an invalid reading ({exc}); check the wiring"
        ) from None
    finally:
        sensor.close()
    reading = Reading(time.time_ns(), 0, sample.temperature_c, sample.humidity, sample.pressure_hpa)
    out = reading.to_dict()
    out["seq"] = None  # not stored: a direct read is not part of the history
    out["age_s"] = 0.0
    return out


def history_direct(since_s: float, limit: int, step_s: float | None = None) -> list[dict[str, Any]]:
    """Readings from the history file (read-only; fine while a service writes it)."""
    from filamentctl.store.history import History
    from filamentctl.store.settings import load_settings

    paths = _paths.resolve()
    since_ns = time.time_ns() - int(since_s * 1e9)
    if not paths.history_db.exists():
        return []
    history = History.from_settings(paths.history_db, load_settings(paths))
    history.open()
    try:
        if step_s is not None:
            rows = history.downsample(since_ns, int(step_s * 1e9), limit)
        else:
            rows = history.query(since_ns, limit=limit)
        return [r.to_dict() for r in rows]
    finally:
        history.close()


def flush_direct(timeout: float, progress: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Deliver the backlog with no service running (holding the state lock meanwhile)."""
    from filamentctl.service.delivery import DeliveryWorker, nothing_to_flush
    from filamentctl.service.lockfile import StateLock
    from filamentctl.service.secrets import with_secrets
    from filamentctl.sinks.base import create_sink
    from filamentctl.store.history import History
    from filamentctl.store.settings import load_settings

    paths = _paths.resolve()
    settings = load_settings(paths)
    if settings["database.type"] == "none" or not paths.history_db.exists():
        return nothing_to_flush(str(settings["database.type"]))
    lock = StateLock(paths.state_dir)
    lock.acquire("a direct flush")
    try:
        history = History.from_settings(paths.history_db, settings)
        history.open()
        try:
            sink = create_sink(with_secrets(settings, "database."))
            worker = DeliveryWorker(history, sink, settings)
            cb = (lambda d, t: progress({"delivered": d, "total": t})) if progress else None
            result: dict[str, Any] = worker.flush(timeout, cb)
            sink.close()
            return result
        finally:
            history.close()
    finally:
        lock.release()
