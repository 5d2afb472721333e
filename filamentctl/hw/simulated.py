"""A simulated dry box: a small physical model behind the :class:`Sensor` contract.

The box is one lumped thermal mass in a room at constant ambient conditions:

- heat: ``C·dT/dt = P_heater − (G_walls + G_fan)·(T − T_room)``, where the exhaust fan's
  conductance is its air flow × ρ·c_p of air;
- water: the box air's absolute humidity ρ_v (g/m³) is tracked, not RH, so heating lowers RH
  (warm air holds more water). ``V·dρ_v/dt = S_filament − (Q_leak + Q_fan)·(ρ_v − ρ_v,room)``;
- filament: a moisture reservoir that moves towards equilibrium with the box air, faster when
  warm (rate doubles every 10 °C): ``S = k(T)·(W/W_cap − RH_box)``, so it dries when heated and
  slowly re-absorbs water in a humid box;
- condensation: the air never holds more than saturation (RH ≤ 100 %).

Each step uses the exact solution of the linear equations for constant inputs, so the model is
stable for any step size. Relay states are sampled when the model advances (each read), and apply
since the previous advance — the controller switches right after a reading, so that is when the
change really happened.

With the default parameters a heater ON warms the box by about 1.5 °C per minute at first (time
constant about 25 min, equilibrium about 40 °C above the room), and the fan pulls the box air
towards the room's humidity with a time constant of about a minute. Held at 50 °C with a vent
every ten minutes, the default spool (5 g of water) gives off most of it within about six hours,
so a drying session reaches its plateau; ``set_filament`` puts in a wetter or bigger load.

``set()`` pins values or injects a fault (what ``filamentctl sim set`` drives); ``clear()``
removes them. Thread-safe: the sampler reads while the socket handler sets.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from filamentctl.core import psychro
from filamentctl.core.reading import Sample
from filamentctl.hw.sensor import Sensor, SensorError, SensorNoData

FAULTS = ("stale", "error", "nan", "spike")
SPIKE_C = 40.0  # what the "spike" fault adds to every second reading

_AIR_RHO_CP = 1.2 * 1005.0  # J/(m³·K): density × specific heat of air
_MAX_STEP_S = 2.0
_MAX_STEPS = 20_000  # beyond this a long gap is integrated in larger (still exact) steps


@dataclass(frozen=True, slots=True)
class BoxParameters:
    """Physical constants of the simulated box (defaults: a ~50 L plastic dry box)."""

    volume_m3: float = 0.05
    heat_capacity_j_k: float = 1500.0  # air, walls and the near part of the spools
    wall_loss_w_k: float = 1.0
    heater_w: float = 40.0
    leak_m3_s: float = 2e-5  # air exchange with the fan off (lid seals, cable holes)
    fan_m3_s: float = 1e-3  # exhaust fan air flow (effective, after mixing)
    filament_capacity_g: float = 10.0  # water the filament holds in equilibrium with 100 % RH
    # Exchange rate at 20 °C per unit of RH difference: a spool dries in a few hours at 50 °C
    # (the drying session's plateau), and takes about half a day to follow the room at 20 °C.
    filament_rate_g_s: float = 3e-4
    temperature_noise_c: float = 0.02
    humidity_noise: float = 0.1
    pressure_noise_hpa: float = 0.05


def _saturation_g_m3(temperature_c: float) -> float:
    return psychro.absolute_humidity_g_m3(temperature_c, 100.0)


class SimulatedBox:
    """The simulated box. ``clock`` is monotonic seconds; the model advances to it on each read.

    ``heater_on`` / ``fan_on`` report the relay states (None: always off). ``seed`` makes the
    sensor noise reproducible.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        heater_on: Callable[[], bool] | None = None,
        fan_on: Callable[[], bool] | None = None,
        *,
        ambient_temperature_c: float = 22.0,
        ambient_humidity: float = 50.0,
        ambient_pressure_hpa: float = 1013.25,
        temperature_c: float | None = None,
        humidity: float | None = None,
        filament_water_g: float | None = None,
        seed: int | None = 0,
        parameters: BoxParameters | None = None,
    ) -> None:
        self._clock = clock
        self._heater_on = heater_on
        self._fan_on = fan_on
        self.parameters = parameters or BoxParameters()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.ambient_temperature_c = ambient_temperature_c
        self.ambient_humidity = ambient_humidity
        self.ambient_pressure_hpa = ambient_pressure_hpa
        self._t = clock()
        self._temperature_c = ambient_temperature_c if temperature_c is None else temperature_c
        start_rh = ambient_humidity if humidity is None else humidity
        self._water_g_m3 = psychro.absolute_humidity_g_m3(self._temperature_c, start_rh)
        # By default the filament has been sitting in the room: in equilibrium with its air.
        capacity = self.parameters.filament_capacity_g
        self._filament_g = (
            capacity * ambient_humidity / 100.0 if filament_water_g is None else filament_water_g
        )
        self._heater = False
        self._fan = False
        self._pinned_t: float | None = None
        self._pinned_rh: float | None = None
        self._fault: str | None = None
        self._reads = 0
        self._spike_from = 0

    # -- wiring ---------------------------------------------------------------------------------

    def attach_relays(
        self,
        heater_on: Callable[[], bool] | None = None,
        fan_on: Callable[[], bool] | None = None,
    ) -> None:
        """Connect the relay states after construction (the service builds relays later)."""
        relays = self._relays()
        with self._lock:
            self._advance_locked(relays)  # the time so far ran with the old wiring
            self._heater_on = heater_on
            self._fan_on = fan_on

    def set_ambient(
        self, temperature_c: float | None = None, humidity: float | None = None
    ) -> None:
        """Change the room's conditions from now on."""
        relays = self._relays()
        with self._lock:
            self._advance_locked(relays)
            if temperature_c is not None:
                self.ambient_temperature_c = temperature_c
            if humidity is not None:
                self.ambient_humidity = humidity

    def set_filament(self, water_g: float, capacity_g: float | None = None) -> None:
        """Put in a spool holding ``water_g`` grams of water (and, optionally, one that holds
        ``capacity_g`` at 100 % RH: a big, wet load keeps releasing water for a long time).

        Raises ValueError for a negative or non-finite amount or a capacity not above zero.
        """
        if not math.isfinite(water_g) or water_g < 0:
            raise ValueError(f"filament water must be a finite number of grams ≥ 0, not {water_g}")
        if capacity_g is not None and not (math.isfinite(capacity_g) and capacity_g > 0):
            raise ValueError(f"filament capacity must be a positive number, not {capacity_g}")
        relays = self._relays()
        with self._lock:
            self._advance_locked(relays)  # the time so far ran with the old spool
            self._filament_g = float(water_g)
            if capacity_g is not None:
                self.parameters = replace(self.parameters, filament_capacity_g=float(capacity_g))

    # -- overrides (filamentctl sim set|clear) ----------------------------------------------------

    def set(
        self,
        temperature_c: float | None = None,
        humidity: float | None = None,
        fault: str | None = None,
    ) -> None:
        """Pin the reported temperature and/or humidity (returned exactly, without noise) and/or
        inject a fault. Arguments left None keep their current setting.

        Raises ValueError for an unknown fault or a non-finite pin.
        """
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: choose one of {', '.join(FAULTS)}")
        for name, value in (("temperature", temperature_c), ("humidity", humidity)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} pin must be a finite number, got {value!r}")
        with self._lock:
            if temperature_c is not None:
                self._pinned_t = float(temperature_c)
            if humidity is not None:
                self._pinned_rh = float(humidity)
            if fault is not None:
                self._fault = fault
                self._spike_from = self._reads  # so a "spike" fault shows on the very next read

    def clear(self) -> None:
        """Remove all pins and faults: the sensor reports the model again."""
        with self._lock:
            self._pinned_t = None
            self._pinned_rh = None
            self._fault = None

    # -- reading --------------------------------------------------------------------------------

    def read(self) -> Sample:
        """Advance the model to ``clock()`` and return what the sensor would report."""
        relays = self._relays()
        with self._lock:
            self._advance_locked(relays)
            self._reads += 1
            fault = self._fault
            if fault == "stale":
                raise SensorNoData(
                    "simulated sensor returned no new data (fault 'stale' injected; "
                    "run `filamentctl sim clear`)"
                )
            if fault == "error":
                raise SensorError(
                    "simulated sensor read failed (fault 'error' injected; "
                    "run `filamentctl sim clear`)"
                )
            p = self.parameters
            pressure = self.ambient_pressure_hpa + self._rng.gauss(0.0, p.pressure_noise_hpa)
            if fault == "nan":
                return Sample(math.nan, math.nan, pressure)
            if self._pinned_t is not None:
                temperature = self._pinned_t
            else:
                temperature = self._temperature_c + self._rng.gauss(0.0, p.temperature_noise_c)
            if self._pinned_rh is not None:
                humidity = self._pinned_rh
            else:
                noisy = self._humidity_locked() + self._rng.gauss(0.0, p.humidity_noise)
                humidity = min(100.0, max(0.0, noisy))
            # Isolated spikes (every second read), as DHT sensors produce them: a filter should
            # reject each one and keep accepting the good readings between them.
            if fault == "spike" and (self._reads - self._spike_from) % 2 == 1:
                temperature += SPIKE_C
            return Sample(temperature, humidity, pressure)

    @property
    def reads(self) -> int:
        """How many times the sensor was read (good or faulty)."""
        return self._reads

    def state(self) -> dict[str, Any]:
        """The model's true values, the relay states it last saw, and the active overrides."""
        relays = self._relays()
        with self._lock:
            self._advance_locked(relays)
            return {
                "temperature_c": round(self._temperature_c, 3),
                "humidity": round(self._humidity_locked(), 3),
                "absolute_humidity_g_m3": round(self._water_g_m3, 3),
                "filament_water_g": round(self._filament_g, 3),
                "ambient_temperature_c": self.ambient_temperature_c,
                "ambient_humidity": self.ambient_humidity,
                "ambient_pressure_hpa": self.ambient_pressure_hpa,
                "heater_on": self._heater,
                "fan_on": self._fan,
                "pinned": {"temperature_c": self._pinned_t, "humidity": self._pinned_rh},
                "fault": self._fault,
            }

    # -- the model ------------------------------------------------------------------------------

    def _humidity_locked(self) -> float:
        return min(100.0, 100.0 * self._water_g_m3 / _saturation_g_m3(self._temperature_c))

    def _relays(self) -> tuple[bool, bool]:
        # Called without the box lock: the callables take the control loop's lock.
        heater, fan = self._heater_on, self._fan_on
        return (
            bool(heater()) if heater is not None else False,
            bool(fan()) if fan is not None else False,
        )

    def _advance_locked(self, relays: tuple[bool, bool]) -> None:
        now = self._clock()
        dt = now - self._t
        self._heater, self._fan = relays
        if dt <= 0:
            return
        self._t = now
        steps = min(_MAX_STEPS, math.ceil(dt / _MAX_STEP_S))
        h = dt / steps
        for _ in range(steps):
            self._step(h)

    def _step(self, h: float) -> None:
        p = self.parameters
        flow = p.leak_m3_s + (p.fan_m3_s if self._fan else 0.0)
        # Heat: relax exponentially towards the equilibrium for the current inputs.
        conductance = p.wall_loss_w_k + (_AIR_RHO_CP * p.fan_m3_s if self._fan else 0.0)
        power = p.heater_w if self._heater else 0.0
        t_eq = self.ambient_temperature_c + power / conductance
        decay = math.exp(-conductance * h / p.heat_capacity_j_k)
        self._temperature_c = t_eq + (self._temperature_c - t_eq) * decay

        # Water: filament exchange (a source or sink), then air exchange with the room.
        saturation = _saturation_g_m3(self._temperature_c)
        rh = min(1.0, self._water_g_m3 / saturation)
        rate = p.filament_rate_g_s * 2.0 ** ((self._temperature_c - 20.0) / 10.0)
        source = rate * (self._filament_g / p.filament_capacity_g - rh)  # g/s, <0 = absorbing
        source = min(source, self._filament_g / h)  # cannot release more than it holds
        room = psychro.absolute_humidity_g_m3(self.ambient_temperature_c, self.ambient_humidity)
        w_eq = room + source / flow
        self._water_g_m3 = w_eq + (self._water_g_m3 - w_eq) * math.exp(-flow * h / p.volume_m3)
        self._filament_g = max(0.0, self._filament_g - source * h)
        # Condensation: whatever exceeds saturation leaves the air.
        self._water_g_m3 = max(0.0, min(self._water_g_m3, saturation))


class SimulatedSensor(Sensor):
    """The :class:`Sensor` face of a :class:`SimulatedBox`."""

    kind = "simulated"
    min_interval_s = 0.0

    def __init__(self, box: SimulatedBox) -> None:
        self.box = box

    def read(self) -> Sample:
        return self.box.read()

    def close(self) -> None:
        pass
