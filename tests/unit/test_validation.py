"""Reading validation and sensor health: bad data never becomes a reading, faults log once."""

from __future__ import annotations

import math

import pytest

from filamentctl.core.reading import Sample
from filamentctl.core.validation import (
    DEGRADED,
    FAULT,
    OK,
    ReadingFilter,
    Rejected,
    SensorHealth,
    Unconfirmed,
)

GOOD = Sample(22.0, 45.0, 1013.0)


def first(f: ReadingFilter, sample: Sample) -> Sample:
    """The first accepted sample of a fresh filter: it needs a second one that agrees."""
    with pytest.raises(Unconfirmed):
        f.check(sample, None)
    return f.check(sample, None)


# -- ReadingFilter: values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    [
        Sample(math.nan, 45.0),
        Sample(22.0, math.nan),
        Sample(math.inf, 45.0),
        Sample(22.0, -math.inf),
        Sample(22.0, 45.0, math.nan),
    ],
)
def test_nan_and_infinite_values_are_rejected(sample: Sample) -> None:
    with pytest.raises(Rejected) as info:
        ReadingFilter().check(sample, None)
    assert info.value.reason == "not a number"


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (Sample(-40.1, 45.0), "temperature out of range"),
        (Sample(22.0, -0.1), "humidity out of range"),
        (Sample(22.0, 100.1), "humidity out of range"),
        (Sample(22.0, 45.0, 299.0), "pressure out of range"),
        (Sample(22.0, 45.0, 1101.0), "pressure out of range"),
    ],
)
def test_out_of_range_values_are_rejected(sample: Sample, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        ReadingFilter().check(sample, None)
    assert info.value.reason == reason
    assert "outside" in str(info.value)


@pytest.mark.parametrize(
    "sample",
    [Sample(-40.0, 0.0, 300.0), Sample(85.0, 100.0, 1100.0), Sample(20.0, 50.0, None)],
)
def test_limits_themselves_are_accepted(sample: Sample) -> None:
    assert first(ReadingFilter(), sample) == sample


@pytest.mark.parametrize(
    ("sensor", "top", "bottom"),
    [
        ("bme280", 85.0, -40.0),
        ("simulated", 85.0, -40.0),
        ("dht22", 80.0, -40.0),
        ("dht11", 50.0, 0.0),
    ],
)
def test_each_sensor_type_has_its_datasheet_range(sensor: str, top: float, bottom: float) -> None:
    f = ReadingFilter(sensor_type=sensor)
    assert first(f, Sample(top, 45.0)).temperature_c == top
    with pytest.raises(Rejected) as info:
        f.check(Sample(bottom - 0.1, 45.0), None)
    assert info.value.reason == "temperature out of range" and not info.value.too_hot


@pytest.mark.parametrize(("sensor", "hot"), [("bme280", 85.1), ("dht22", 80.5), ("dht11", 50.1)])
def test_a_temperature_above_the_sensor_range_is_rejected_as_too_hot(
    sensor: str, hot: float
) -> None:
    f = ReadingFilter(sensor_type=sensor)
    prev = first(f, GOOD)
    with pytest.raises(Rejected) as info:
        f.check(Sample(hot, 45.0), prev)
    assert info.value.reason == "temperature above range"
    assert info.value.too_hot  # the service treats it as hot: the heater latches
    assert f"above the {sensor} sensor's range" in str(info.value)


def test_calibration_offsets_are_applied() -> None:
    f = ReadingFilter(temperature_offset_c=-0.5, humidity_offset=2.0)
    assert first(f, Sample(22.0, 45.0, 1013.0)) == Sample(21.5, 47.0, 1013.0)


def test_humidity_offset_is_clamped_to_0_100_instead_of_rejecting_a_saturated_sensor() -> None:
    assert first(ReadingFilter(humidity_offset=3.0), Sample(20.0, 99.0)).humidity == 100.0
    assert first(ReadingFilter(humidity_offset=-3.0), Sample(20.0, 1.0)).humidity == 0.0


def test_from_settings_reads_the_sensor_keys() -> None:
    f = ReadingFilter.from_settings(
        {
            "sensor.temperature_offset": 1.0,
            "sensor.humidity_offset": -1.0,
            "sensor.max_jump_c": 2.0,
            "sensor.max_jump_rh": 5.0,
        }
    )
    assert first(f, Sample(20.0, 50.0)) == Sample(21.0, 49.0)
    with pytest.raises(Rejected):
        f.check(Sample(23.5, 49.0), Sample(21.0, 49.0))
    with pytest.raises(Rejected):
        f.check(Sample(20.0, 56.0), Sample(21.0, 49.0))


# -- ReadingFilter: jumps ---------------------------------------------------------------------


def test_isolated_spike_is_rejected_and_the_readings_around_it_pass() -> None:
    f = ReadingFilter(max_jump_c=5.0, confirm_after=3)
    prev = first(f, GOOD)
    with pytest.raises(Rejected) as info:
        f.check(Sample(62.0, 45.0), prev)
    assert info.value.reason == "implausible jump"
    assert "22.0 → 62.0 °C" in str(info.value)
    assert f.check(Sample(22.1, 45.0), prev) == Sample(22.1, 45.0)


def test_alternating_spikes_are_never_adopted() -> None:
    f = ReadingFilter(max_jump_c=5.0, confirm_after=2)
    prev = first(f, GOOD)
    for _ in range(10):
        with pytest.raises(Rejected):
            f.check(Sample(62.0, 45.0), prev)
        prev = f.check(Sample(22.0, 45.0), prev)


def test_a_real_step_is_accepted_after_confirm_after_consistent_readings() -> None:
    f = ReadingFilter(max_jump_c=5.0, confirm_after=3)
    prev = first(f, GOOD)
    for value in (40.0, 40.2):
        with pytest.raises(Rejected):
            f.check(Sample(value, 45.0), prev)
    accepted = f.check(Sample(40.1, 45.0), prev)
    assert accepted.temperature_c == 40.1
    # The new level is now the reference: following readings pass normally.
    assert f.check(Sample(40.3, 45.0), accepted).temperature_c == 40.3


def test_jumped_readings_that_disagree_with_each_other_restart_the_run() -> None:
    f = ReadingFilter(max_jump_c=5.0, confirm_after=2)
    prev = first(f, GOOD)
    with pytest.raises(Rejected):
        f.check(Sample(40.0, 45.0), prev)
    with pytest.raises(Rejected):
        f.check(Sample(60.0, 45.0), prev)  # far from 40: a new run of one
    assert f.check(Sample(61.0, 45.0), prev).temperature_c == 61.0


def test_a_humidity_jump_is_rejected_too() -> None:
    f = ReadingFilter(max_jump_humidity=10.0)
    with pytest.raises(Rejected) as info:
        f.check(Sample(22.0, 80.0), Sample(22.0, 45.0))
    assert "humidity 45.0 → 80.0 %" in str(info.value)


def test_without_previous_two_agreeing_samples_are_needed() -> None:
    f = ReadingFilter(max_jump_c=1.0)
    with pytest.raises(Unconfirmed):
        f.check(Sample(70.0, 10.0), None)
    assert f.check(Sample(70.5, 10.0), None) == Sample(70.5, 10.0)


def test_a_spike_at_start_never_becomes_the_reference() -> None:
    f = ReadingFilter(max_jump_c=5.0)
    with pytest.raises(Unconfirmed):
        f.check(Sample(62.0, 45.0), None)  # a spike first
    with pytest.raises(Unconfirmed):
        f.check(Sample(22.0, 45.0), None)  # disagrees with it: starts over
    prev = f.check(Sample(22.1, 45.0), None)
    assert prev.temperature_c == 22.1
    with pytest.raises(Rejected):
        f.check(Sample(62.0, 45.0), prev)


@pytest.mark.parametrize("established", [True, False], ids=["running", "cold start"])
@pytest.mark.parametrize("start_with_spike", [True, False], ids=["spike first", "good first"])
def test_an_alternating_spike_train_is_never_accepted(
    start_with_spike: bool, established: bool
) -> None:
    """+40 °C on every second read (what `sim set --fault spike` injects), for 40 reads."""
    f = ReadingFilter()
    prev = first(f, GOOD) if established else None
    accepted: list[float] = []
    for i in range(40):
        value = 22.0 + (40.0 if (i % 2 == 0) == start_with_spike else 0.0)
        try:
            prev = f.check(Sample(value, 45.0), prev)
        except Rejected:
            continue
        accepted.append(prev.temperature_c)
    assert all(t < 30.0 for t in accepted), accepted
    # With a reference, the good readings between the spikes keep coming; from a cold start
    # nothing agrees twice in a row, so nothing is accepted (and the sensor goes stale).
    assert len(accepted) == (20 if established else 0)


def test_a_genuine_step_is_accepted_within_three_readings() -> None:
    f = ReadingFilter()
    prev = first(f, GOOD)
    results = []
    for _ in range(3):
        try:
            results.append(f.check(Sample(45.0, 45.0), prev))
        except Rejected:
            results.append(None)
    assert results[-1] is not None and results[-1].temperature_c == 45.0


# -- SensorHealth -----------------------------------------------------------------------------


def test_health_is_ok_with_good_readings() -> None:
    h = SensorHealth(0.0, stale_after_s=30.0)
    for t in range(0, 100, 5):
        assert h.ok(float(t)) is None
    assert h.health(100.0) == OK
    assert h.snapshot(100.0)["errors"] == 0


def test_one_failure_degrades_and_the_window_restores_ok() -> None:
    h = SensorHealth(0.0, fault_after=3, stale_after_s=30.0, window_s=60.0)
    h.ok(0.0)
    h.failed(5.0, "checksum did not validate")
    assert h.health(5.0) == DEGRADED
    h.ok(10.0)
    assert h.health(10.0) == DEGRADED  # an error within the last minute
    for t in range(15, 75, 5):
        h.ok(float(t))
    assert h.health(70.0) == OK


def test_consecutive_failures_become_fault_and_a_good_read_ends_it() -> None:
    h = SensorHealth(0.0, fault_after=3, stale_after_s=100.0)
    h.ok(0.0)
    for t in (1.0, 2.0):
        h.failed(t, "no answer")
    assert h.health(2.0) == DEGRADED
    h.failed(3.0, "no answer")
    assert h.health(3.0) == FAULT
    assert h.snapshot(3.0)["consecutive_failures"] == 3
    h.ok(4.0)
    assert h.health(4.0) == DEGRADED


def test_no_good_reading_for_stale_after_is_fault_even_without_errors() -> None:
    h = SensorHealth(0.0, stale_after_s=30.0)
    assert h.health(10.0) == OK
    assert h.health(31.0) == FAULT  # never had a reading
    h.ok(40.0)
    assert h.health(60.0) == OK
    assert h.health(71.0) == FAULT  # the sampler stopped delivering


def test_repeated_identical_error_logs_once_per_episode() -> None:
    h = SensorHealth(0.0, stale_after_s=1000.0)
    events = [h.failed(float(t), "BME280 not found: nothing answers at 0x76") for t in range(10)]
    logged = [e for e in events if e is not None]
    assert len(logged) == 1
    assert logged[0].kind == "started"
    assert str(logged[0]) == "sensor failing: BME280 not found: nothing answers at 0x76"
    assert h.errors == 10
    assert h.last_error == "BME280 not found: nothing answers at 0x76"
    assert h.ok(20.0) is None  # good again, but not yet for settle_s (60 s)
    ended = h.ok(69.0)
    assert ended is not None and ended.kind == "ended"
    assert ended.message == "sensor recovered: 10 failed reads over 9 s; no failure for 60 s"
    assert h.ok(75.0) is None  # no episode, nothing to log


def test_errors_differing_only_in_numbers_are_one_cause() -> None:
    h = SensorHealth(0.0, stale_after_s=1000.0)
    first = h.failed(1.0, "sensor answered after 2.51 s, limit 2 s")
    again = h.failed(2.0, "sensor answered after 3.07 s, limit 2 s")
    assert first is not None and again is None


def test_repeated_rejections_for_one_reason_log_once() -> None:
    h = SensorHealth(0.0, stale_after_s=1000.0)
    f = ReadingFilter()
    events = []
    for t, value in enumerate((-120.5, -99.0, -130.25)):
        with pytest.raises(Rejected) as info:
            f.check(Sample(value, 45.0), None)
        events.append(h.reject(float(t), str(info.value), key=info.value.reason))
    assert [e is not None for e in events] == [True, False, False]
    assert h.rejected == 3 and h.errors == 0
    assert (
        h.last_error
        == "reading rejected: temperature out of range: -130.25 °C is outside -40…85 °C"
    )


def test_a_different_cause_logs_once_more_within_the_episode() -> None:
    h = SensorHealth(0.0, stale_after_s=1000.0)
    assert h.failed(1.0, "checksum did not validate") is not None
    changed = h.failed(2.0, "DHT22 on GPIO4 did not answer")
    assert changed is not None and changed.kind == "changed"
    assert h.failed(3.0, "DHT22 on GPIO4 did not answer") is None


def test_rejections_are_counted_apart_from_errors() -> None:
    h = SensorHealth(0.0)
    h.reject(1.0, "not a number: temperature nan", key="not a number")
    h.failed(2.0, "read failed")
    status = h.snapshot(2.0)
    assert (status["rejected"], status["errors"]) == (1, 1)


def test_from_settings_uses_stale_after_and_starts_at_the_first_event() -> None:
    h = SensorHealth.from_settings({"sensor.stale_after": 10.0})
    h.ok(100.0)
    assert h.health(105.0) == OK
    assert h.health(111.0) == FAULT
    assert h.snapshot()["health"] == OK  # without now: as of the latest event


# -- flapping: one episode, rate-limited lines (a table of read outcomes over time) -------------

BAD = "checksum did not validate"


def _play(h: SensorHealth, reads: list[tuple[float, str | None]]) -> list[tuple[float, str, str]]:
    """Feed (time, error or None for a good read); returns (time, kind, message) of each line."""
    lines = []
    for t, error in reads:
        event = h.ok(t) if error is None else h.failed(t, error)
        if event is not None:
            lines.append((t, event.kind, event.message))
    return lines


def _alternating(start: float, stop: float, step: float) -> list[tuple[float, str | None]]:
    n = int((stop - start) / step)
    return [(start + i * step, BAD if i % 2 == 0 else None) for i in range(n)]


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        pytest.param(
            # good and bad alternating every 0.25 s for 3 s: the reported case (8 WARNINGs)
            _alternating(0.0, 3.0, 0.25),
            [(0.0, "started", f"sensor failing: {BAD}")],
            id="alternating reads: one line",
        ),
        pytest.param(
            # then good for a minute: the episode ends, with its totals
            [*_alternating(0.0, 3.0, 0.25), *((3.0 + t, None) for t in range(0, 62, 2))],
            [
                (0.0, "started", f"sensor failing: {BAD}"),
                (
                    63.0,
                    "ended",
                    "sensor recovered: 6 failed reads over 2 s (and 5 good in between); "
                    "no failure for 60 s",
                ),
            ],
            id="flapping, then good for settle_s: started and ended",
        ),
        pytest.param(
            # flapping for 11 minutes at one read every 2 s: a summary every 5 minutes
            _alternating(0.0, 660.0, 2.0),
            [
                (0.0, "started", f"sensor failing: {BAD}"),
                (
                    300.0,
                    "summary",
                    "sensor still failing: 75 failed reads and 75 good in the last 300 s "
                    f"(last error: {BAD})",
                ),
                (
                    600.0,
                    "summary",
                    "sensor still failing: 75 failed reads and 75 good in the last 300 s "
                    f"(last error: {BAD})",
                ),
            ],
            id="lasting flapping: summaries every summary_every_s",
        ),
        pytest.param(
            # two causes alternating: each reported once, not on every switch
            [(float(t), BAD if t % 2 else "no answer") for t in range(10)],
            [
                (0.0, "started", "sensor failing: no answer"),
                (1.0, "changed", f"sensor still failing, now: {BAD}"),
            ],
            id="alternating causes: each once",
        ),
        pytest.param(
            # two separate faults more than settle_s apart: two episodes
            [(0.0, BAD), (1.0, None), (70.0, None), (80.0, BAD), (81.0, None), (150.0, None)],
            [
                (0.0, "started", f"sensor failing: {BAD}"),
                (70.0, "ended", "sensor recovered: 1 failed read over 0 s; no failure for 70 s"),
                (80.0, "started", f"sensor failing: {BAD}"),
                (150.0, "ended", "sensor recovered: 1 failed read over 0 s; no failure for 70 s"),
            ],
            id="separate faults: separate episodes",
        ),
    ],
)
def test_a_flapping_sensor_logs_once_per_episode(
    reads: list[tuple[float, str | None]], expected: list[tuple[float, str, str]]
) -> None:
    assert _play(SensorHealth(0.0, stale_after_s=1000.0), reads) == expected


def test_a_steady_fault_gets_a_summary_every_few_minutes_not_a_line_per_read() -> None:
    h = SensorHealth(0.0, stale_after_s=30.0)
    lines = _play(h, [(float(t), "DHT22 on GPIO4 did not answer") for t in range(0, 901, 2)])
    assert [(t, kind) for t, kind, _ in lines] == [
        (0.0, "started"),
        (300.0, "summary"),
        (600.0, "summary"),
        (900.0, "summary"),
    ]
    assert "150 failed reads and 0 good in the last 300 s" in lines[1][2]
    assert h.health(900.0) == FAULT and h.errors == 451


def test_health_states_are_unchanged_by_the_episode_rules() -> None:
    """DEGRADED/FAULT still follow each read; only the log lines are grouped."""
    h = SensorHealth(0.0, fault_after=3, stale_after_s=1000.0)
    _play(h, [(0.0, BAD), (1.0, None)])
    assert h.health(1.0) == DEGRADED and h.consecutive_failures == 0
    _play(h, [(2.0, BAD), (3.0, BAD), (4.0, BAD)])
    assert h.health(4.0) == FAULT
