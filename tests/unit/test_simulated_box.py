"""The simulated box behaves like a box: heater warms, fan pulls RH to the room's, heating dries
the air's RH with constant water, and pins/faults do what `filamentctl sim set` promises."""

from __future__ import annotations

import math
from typing import Any

import pytest

from filamentctl.core import psychro
from filamentctl.core.reading import Sample
from filamentctl.hw.sensor import Sensor, SensorError, SensorNoData
from filamentctl.hw.simulated import SPIKE_C, BoxParameters, SimulatedBox, SimulatedSensor


class Rig:
    """A fake clock and relay switches around one box."""

    def __init__(self, **kwargs: Any) -> None:
        self.now = 0.0
        self.heater = False
        self.fan = False
        self.box = SimulatedBox(
            lambda: self.now,
            lambda: self.heater,
            lambda: self.fan,
            **kwargs,
        )

    def run(self, seconds: float, step: float = 5.0) -> Sample:
        """Advance time in sampler-sized steps, reading each time; return the last sample."""
        end = self.now + seconds
        sample = self.box.read()
        while self.now < end:
            self.now = min(end, self.now + step)
            sample = self.box.read()
        return sample

    def true(self) -> dict[str, Any]:
        return self.box.state()


def test_box_at_rest_stays_at_ambient() -> None:
    rig = Rig(ambient_temperature_c=21.0, ambient_humidity=40.0)
    rig.run(3600)
    state = rig.true()
    assert state["temperature_c"] == pytest.approx(21.0, abs=0.01)
    assert state["humidity"] == pytest.approx(40.0, abs=0.5)


def test_heater_warms_the_box_by_several_degrees_within_a_few_minutes() -> None:
    rig = Rig(ambient_temperature_c=22.0)
    rig.heater = True
    rig.run(180)
    assert float(rig.true()["temperature_c"]) > 22.0 + 3.0
    rig.run(3 * 3600)
    warm = float(rig.true()["temperature_c"])
    assert 50.0 < warm < 80.0  # an equilibrium, not a runaway


def test_box_cools_back_when_the_heater_turns_off() -> None:
    rig = Rig(ambient_temperature_c=22.0)
    rig.heater = True
    rig.run(1800)
    hot = float(rig.true()["temperature_c"])
    rig.heater = False
    rig.run(600)
    assert float(rig.true()["temperature_c"]) < hot - 5.0


def test_heating_lowers_rh_while_the_water_content_stays_the_same() -> None:
    # No air exchange and no filament: a closed box with constant water.
    closed = BoxParameters(leak_m3_s=1e-12, filament_rate_g_s=0.0)
    rig = Rig(ambient_temperature_c=22.0, ambient_humidity=50.0, parameters=closed)
    before = rig.true()
    rig.heater = True
    rig.run(600)
    after = rig.true()
    assert float(after["temperature_c"]) > float(before["temperature_c"]) + 5
    assert float(after["humidity"]) < float(before["humidity"]) - 10
    assert after["absolute_humidity_g_m3"] == pytest.approx(
        before["absolute_humidity_g_m3"], rel=1e-3
    )
    # RH is exactly what the Magnus formula says for the same water at the new temperature.
    expected_rh = (
        100.0
        * float(after["absolute_humidity_g_m3"])
        / psychro.absolute_humidity_g_m3(float(after["temperature_c"]), 100.0)
    )
    assert float(after["humidity"]) == pytest.approx(expected_rh, abs=0.01)


def test_fan_pulls_the_box_humidity_to_the_room_within_minutes() -> None:
    rig = Rig(ambient_temperature_c=22.0, ambient_humidity=55.0, humidity=15.0)
    rig.run(180)
    assert float(rig.true()["humidity"]) < 25.0  # fan off: the dry box stays dry
    rig.fan = True
    rig.run(180)
    assert float(rig.true()["humidity"]) == pytest.approx(55.0, abs=3.0)


def test_fan_also_vents_a_humid_box_down_to_the_room() -> None:
    rig = Rig(ambient_temperature_c=22.0, ambient_humidity=40.0, humidity=85.0)
    rig.fan = True
    rig.run(300)
    assert float(rig.true()["humidity"]) == pytest.approx(40.0, abs=3.0)


def test_heated_filament_slowly_releases_moisture() -> None:
    rig = Rig(ambient_temperature_c=22.0, ambient_humidity=50.0)
    water_before = float(rig.true()["filament_water_g"])
    rig.heater = True
    rig.run(4 * 3600, step=30)
    state = rig.true()
    assert float(state["filament_water_g"]) < water_before - 1.0
    # The released water shows up in the air: more than the room air holds.
    room = psychro.absolute_humidity_g_m3(22.0, 50.0)
    assert float(state["absolute_humidity_g_m3"]) > room


def test_rh_never_exceeds_100_percent() -> None:
    rig = Rig(ambient_temperature_c=30.0, ambient_humidity=95.0, filament_water_g=10.0)
    rig.heater = True
    rig.run(3600, step=30)
    rig.heater = False
    rig.run(3 * 3600, step=60)
    assert float(rig.true()["humidity"]) <= 100.0


def test_same_seed_same_readings() -> None:
    a, b = Rig(seed=7), Rig(seed=7)
    assert [a.run(5) for _ in range(5)] == [b.run(5) for _ in range(5)]


def test_readings_are_noisy_but_close_to_the_truth() -> None:
    rig = Rig(ambient_temperature_c=22.0, ambient_humidity=50.0)
    samples = [rig.run(5) for _ in range(50)]
    assert len({s.temperature_c for s in samples}) > 1
    assert all(abs(s.temperature_c - 22.0) < 0.2 for s in samples)
    assert all(abs(s.humidity - 50.0) < 1.0 for s in samples)
    assert all(s.pressure_hpa is not None for s in samples)


def test_a_long_gap_is_integrated_without_blowing_up() -> None:
    rig = Rig()
    rig.heater = True
    rig.now = 10 * 24 * 3600.0
    sample = rig.box.read()
    assert math.isfinite(sample.temperature_c) and 0.0 <= sample.humidity <= 100.0


# -- overrides ----------------------------------------------------------------------------------


def test_pinned_values_are_returned_exactly() -> None:
    rig = Rig()
    rig.box.set(temperature_c=17.9, humidity=61.25)
    for _ in range(3):
        sample = rig.run(5)
        assert (sample.temperature_c, sample.humidity) == (17.9, 61.25)


def test_pinning_one_value_leaves_the_other_to_the_model() -> None:
    rig = Rig(ambient_humidity=50.0)
    rig.box.set(temperature_c=30.0)
    sample = rig.run(5)
    assert sample.temperature_c == 30.0
    assert sample.humidity == pytest.approx(50.0, abs=1.0)


def test_pins_do_not_change_the_physics() -> None:
    rig = Rig(ambient_temperature_c=22.0)
    rig.box.set(temperature_c=10.0)
    rig.run(600)
    assert rig.true()["temperature_c"] == pytest.approx(22.0, abs=0.01)


def test_stale_fault_raises_no_data() -> None:
    rig = Rig()
    rig.box.set(fault="stale")
    with pytest.raises(SensorNoData, match="sim clear"):
        rig.box.read()


def test_error_fault_raises_a_sensor_error() -> None:
    rig = Rig()
    rig.box.set(fault="error")
    with pytest.raises(SensorError) as info:
        rig.box.read()
    assert not isinstance(info.value, SensorNoData)


def test_nan_fault_returns_nan_values() -> None:
    rig = Rig()
    rig.box.set(temperature_c=20.0, fault="nan")
    sample = rig.box.read()
    assert math.isnan(sample.temperature_c) and math.isnan(sample.humidity)


def test_spike_fault_adds_an_implausible_jump_to_every_second_read() -> None:
    rig = Rig()
    rig.box.set(temperature_c=25.0, fault="spike")
    temps = [rig.box.read().temperature_c for _ in range(4)]
    assert temps == [25.0 + SPIKE_C, 25.0, 25.0 + SPIKE_C, 25.0]


def test_clear_removes_pins_and_faults() -> None:
    rig = Rig(ambient_temperature_c=22.0)
    rig.box.set(temperature_c=40.0, humidity=5.0, fault="error")
    rig.box.clear()
    sample = rig.box.read()
    assert sample.temperature_c == pytest.approx(22.0, abs=0.2)
    state = rig.true()
    assert state["fault"] is None
    assert state["pinned"] == {"temperature_c": None, "humidity": None}


def test_state_reports_pins_fault_ambient_and_relays() -> None:
    rig = Rig(ambient_temperature_c=19.0, ambient_humidity=60.0)
    rig.heater = True
    rig.box.set(humidity=33.0, fault="spike")
    rig.now = 10.0
    state = rig.true()
    assert state["pinned"] == {"temperature_c": None, "humidity": 33.0}
    assert state["fault"] == "spike"
    assert (state["ambient_temperature_c"], state["ambient_humidity"]) == (19.0, 60.0)
    assert state["heater_on"] is True and state["fan_on"] is False


def test_unknown_fault_and_non_finite_pins_are_refused() -> None:
    box = SimulatedBox(lambda: 0.0)
    with pytest.raises(ValueError, match="unknown fault"):
        box.set(fault="melt")
    with pytest.raises(ValueError, match="finite"):
        box.set(temperature_c=math.nan)


def test_relays_attached_later_drive_the_model() -> None:
    now = [0.0]
    box = SimulatedBox(lambda: now[0])
    box.attach_relays(heater_on=lambda: True)
    now[0] = 300.0
    assert float(box.state()["temperature_c"]) > 25.0


def test_simulated_sensor_is_a_sensor() -> None:
    sensor = SimulatedSensor(SimulatedBox(lambda: 0.0))
    assert isinstance(sensor, Sensor)
    assert (sensor.kind, sensor.min_interval_s) == ("simulated", 0.0)
    assert isinstance(sensor.read(), Sample)
    sensor.close()
