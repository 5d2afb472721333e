"""Heater and fan control as pure state machines: hysteresis, manual overrides and safety.

Nothing here touches a clock, a thread or a GPIO pin. Time comes in as ``now`` (float seconds
on a monotonic clock) and readings come in as plain values with their age. Every step takes an
immutable state and returns a :class:`Decision` holding the next state, whether the relay should
be ON, whether that is a change, and a one-line human reason.

The service calls :meth:`HeaterController.observe` / :meth:`FanController.observe` on every new
reading and :meth:`~HeaterController.tick` on a timer, so a dead sensor (which produces no
readings) still turns the heater OFF and overrides still expire. The controller objects are thin
holders of (settings, state); they are not thread-safe: the caller serialises access.

Rules (see ``docs/control.md`` for the user's version):

* Hysteresis. Heater ON below ``min_temp_c``, OFF above ``max_temp_c``; fan ON above
  ``max_humidity``, OFF below ``min_humidity``; unchanged in between and AT either threshold.
  A drying session (``core.drying``) only moves the heater's band and replaces the fan's band
  with its vent schedule (``FanSettings.schedule``); every rule below still applies.
* Manual override ``on``/``off``, optionally until a time; ``auto`` re-evaluates at once.
* Safety, which no override bypasses, in this order of precedence:
  - a latched fault keeps the heater OFF until :meth:`HeaterController.reset`; a latch restored
    at start (the service persists them) starts the controller latched;
  - no reading, a NaN/infinite reading, one older than ``stale_after``, or a sample the reading
    filter rejected (:func:`reject_heater`: NaN, out of range, implausible jump) → heater OFF at
    that step, fan to ``on_fault``; control recovers by itself with the next accepted reading;
  - a rejected sample that was too hot for the sensor to measure latches like the cutoff: an
    implausibly hot reading is treated as hot, never as "no reading";
  - temperature ≥ ``cutoff_temp_c`` → heater OFF and latched. Reset is refused while the last
    known temperature is still at or above the cutoff;
  - runaway: while the heater is ON and the temperature is more than ``runaway_gain_c`` below
    ``max_temp_c``, it must rise by ``runaway_gain_c`` within ``runaway_window_s`` of the start
    of each window, else the heater goes OFF and latches. Close to the target the check pauses
    (a heater legitimately slows down there; ``max_on_s`` still bounds it);
  - ``max_on_s`` caps one continuous ON period: the heater goes OFF and rests for
    ``min_cycle_s`` (a forced rest, not a latch), then normal control (auto or manual) resumes;
  - a latch cancels a manual ON, so a reset never switches the heater straight back on.
* ``min_cycle_s`` only delays switching ON: the relay comes back ON no sooner than
  ``min_cycle_s`` after its last switching (relay and heater wear). Every OFF — automatic, a
  person's, or a safety rule's — is immediate.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from filamentctl.core.duration import format_duration, parse_duration
from filamentctl.core.overrides import MAX_OVERRIDE_S as MAX_OVERRIDE_S
from filamentctl.core.overrides import REQUEST_MODES as REQUEST_MODES
from filamentctl.core.overrides import override_problem as override_problem

Mode = Literal["auto", "manual", "fault"]
RESET_HINT = "run 'filamentctl heater reset'"
#: Shortest rest after heater.max_on_s ended an ON period (longer when min_cycle_s is).
MAX_ON_REST_S = 60.0

#: Turns an override expiry (monotonic seconds) into display text, given ``now``:
#: the service passes one that shows wall-clock time ("until 14:05").
UntilFormatter = Callable[[float, float], str]


def relative_until(until: float, now: float) -> str:
    """Default expiry text: time left, e.g. ``for 1h30m``."""
    return f"for {format_duration(max(0.0, until - now))}"


# --------------------------------------------------------------------------- settings


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return float(value)


def _get(settings: Mapping[str, Any], key: str) -> Any:
    try:
        return settings[key]
    except KeyError:
        raise ValueError(f"missing setting {key}") from None


def _on_off(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("on", "off"):
        raise ValueError(f"{key} must be 'on' or 'off', not {value!r}")
    return text == "on"


@dataclass(frozen=True, slots=True)
class HeaterSettings:
    """Heater thresholds and limits. Raises ValueError when they are inconsistent."""

    enabled: bool
    min_temp_c: float
    max_temp_c: float
    cutoff_temp_c: float
    min_cycle_s: float
    max_on_s: float
    runaway_gain_c: float
    runaway_window_s: float
    stale_after_s: float

    def __post_init__(self) -> None:
        problems = heater_band_problems(self.min_temp_c, self.max_temp_c, self.cutoff_temp_c)
        if problems:
            raise ValueError("; ".join(problems))
        _require(self.min_cycle_s >= 0, "heater.min_cycle_s", self.min_cycle_s, ">= 0")
        _require(self.max_on_s > 0, "heater.max_on_s", self.max_on_s, "> 0")
        _require(self.runaway_gain_c > 0, "heater.runaway_gain_c", self.runaway_gain_c, "> 0")
        _require(self.runaway_window_s > 0, "heater.runaway_window_s", self.runaway_window_s, "> 0")
        _require(self.stale_after_s > 0, "sensor.stale_after", self.stale_after_s, "> 0")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> HeaterSettings:
        """Build from the dotted-key settings mapping; ValueError if a key is missing or bad."""
        return cls(
            enabled=bool(_get(settings, "heater.enabled")),
            min_temp_c=float(_get(settings, "heater.min_temp_c")),
            max_temp_c=float(_get(settings, "heater.max_temp_c")),
            cutoff_temp_c=float(_get(settings, "heater.cutoff_temp_c")),
            min_cycle_s=_seconds(_get(settings, "heater.min_cycle_s"), "heater.min_cycle_s"),
            max_on_s=_seconds(_get(settings, "heater.max_on_s"), "heater.max_on_s"),
            runaway_gain_c=float(_get(settings, "heater.runaway_gain_c")),
            runaway_window_s=_seconds(
                _get(settings, "heater.runaway_window_s"), "heater.runaway_window_s"
            ),
            stale_after_s=_seconds(_get(settings, "sensor.stale_after"), "sensor.stale_after"),
        )

    def thresholds(self) -> dict[str, float | bool]:
        """What ``status`` shows next to the heater."""
        return {
            "enabled": self.enabled,
            "min_temp_c": self.min_temp_c,
            "max_temp_c": self.max_temp_c,
            "cutoff_temp_c": self.cutoff_temp_c,
            "min_cycle_s": self.min_cycle_s,
            "max_on_s": self.max_on_s,
            "runaway_gain_c": self.runaway_gain_c,
            "runaway_window_s": self.runaway_window_s,
            "stale_after_s": self.stale_after_s,
        }


@dataclass(frozen=True, slots=True)
class FanSettings:
    """Fan humidity band and limits. ``on_fault`` is the fan state while readings are bad."""

    enabled: bool
    min_humidity: float
    max_humidity: float
    min_cycle_s: float
    on_fault: bool
    stale_after_s: float
    #: A drying session's vent schedule in place of the humidity band: (on, reason). Everything
    #: else (fault state, manual override, minimum cycle) still applies.
    schedule: tuple[bool, str] | None = None

    def __post_init__(self) -> None:
        problems = fan_band_problems(self.min_humidity, self.max_humidity)
        if problems:
            raise ValueError("; ".join(problems))
        _require(self.min_cycle_s >= 0, "fan.min_cycle_s", self.min_cycle_s, ">= 0")
        _require(self.stale_after_s > 0, "sensor.stale_after", self.stale_after_s, "> 0")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> FanSettings:
        """Build from the dotted-key settings mapping; ValueError if a key is missing or bad."""
        return cls(
            enabled=bool(_get(settings, "fan.enabled")),
            min_humidity=float(_get(settings, "fan.min_humidity")),
            max_humidity=float(_get(settings, "fan.max_humidity")),
            min_cycle_s=_seconds(_get(settings, "fan.min_cycle_s"), "fan.min_cycle_s"),
            on_fault=_on_off(_get(settings, "fan.on_fault"), "fan.on_fault"),
            stale_after_s=_seconds(_get(settings, "sensor.stale_after"), "sensor.stale_after"),
        )

    def thresholds(self) -> dict[str, float | bool | str]:
        """What ``status`` shows next to the fan."""
        return {
            "enabled": self.enabled,
            "min_humidity": self.min_humidity,
            "max_humidity": self.max_humidity,
            "min_cycle_s": self.min_cycle_s,
            "on_fault": "on" if self.on_fault else "off",
            "stale_after_s": self.stale_after_s,
        }


def _num(x: float) -> str:
    return f"{x:g}"


def heater_band_problems(min_c: float, max_c: float, cutoff_c: float) -> list[str]:
    """The heater band's own rule, one line per problem naming the keys (the configuration's
    cross-field check and :class:`HeaterSettings` both use it)."""
    problems = []
    if not min_c < max_c:
        problems.append(
            f"heater.min_temp_c ({_num(min_c)}) must be below heater.max_temp_c ({_num(max_c)})"
        )
    if not max_c < cutoff_c:
        problems.append(
            f"heater.max_temp_c ({_num(max_c)}) must be below heater.cutoff_temp_c "
            f"({_num(cutoff_c)})"
        )
    return problems


def fan_band_problems(min_rh: float, max_rh: float) -> list[str]:
    """The fan band's rule (0 ≤ min < max ≤ 100 %RH), one line per problem."""
    problems = []
    if not min_rh < max_rh:
        problems.append(
            f"fan.min_humidity ({_num(min_rh)}) must be below fan.max_humidity ({_num(max_rh)})"
        )
    if not (0 <= min_rh and max_rh <= 100):
        problems.append("fan.min_humidity and fan.max_humidity must lie within 0-100 %RH")
    return problems


def _require(ok: bool, key: str, value: float, rule: str) -> None:
    if not ok:
        raise ValueError(f"{key} must be {rule} (got {value})")


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Observation:
    """A reading as the controller sees it: the value (°C or %RH) and its age in seconds."""

    value: float
    age_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Override:
    """A manual ``on``/``off``; ``until`` is a monotonic time, None for no expiry."""

    on: bool
    until: float | None = None

    @property
    def word(self) -> str:
        return "on" if self.on else "off"


WAITING_FOR_FIRST_READING = "waiting for the first reading"


@dataclass(frozen=True, slots=True)
class RelayState:
    """What every relay's controller remembers between steps."""

    started_at: float
    on: bool = False
    mode: Mode = "auto"
    reason: str = WAITING_FOR_FIRST_READING  # the same words the first decision gives
    override: Override | None = None
    last_value: float | None = None
    reading_at: float | None = None
    last_switch_at: float | None = None
    rejected: str | None = None  # why the latest sample was rejected; None once one is accepted


@dataclass(frozen=True, slots=True)
class HeaterState(RelayState):
    """The heater's state: the relay's, plus its safety bookkeeping. Build with
    :meth:`initial`."""

    on_since: float | None = None
    fault: str | None = None  # latched fault cause, e.g. "41.0 °C ≥ cutoff 40.0 °C"
    runaway_ref_c: float | None = None
    runaway_since: float | None = None
    rest_until: float | None = None

    @classmethod
    def initial(cls, now: float, fault: str | None = None) -> HeaterState:
        """The state at service start: auto, relay OFF, no reading yet — or latched by ``fault``
        (a latch that survived a restart)."""
        if fault is None:
            return cls(started_at=now)
        return cls(started_at=now, mode="fault", fault=fault, reason=_latched_reason(fault))


@dataclass(frozen=True, slots=True)
class FanState(RelayState):
    """The fan's state (the relay's). Build with :meth:`initial`."""

    @classmethod
    def initial(cls, now: float) -> FanState:
        """The state at service start: auto, relay OFF, no reading yet."""
        return cls(started_at=now)


S = TypeVar("S", HeaterState, FanState)


@dataclass(frozen=True, slots=True)
class Decision(Generic[S]):
    """The outcome of one step: apply ``on`` to the relay; log ``reason`` when ``changed``."""

    state: S
    on: bool
    changed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class RequestResult(Generic[S]):
    """Outcome of an override or reset request.

    ``reason`` is the decision's reason when accepted, or why it was refused and what to do.
    Either way ``decision`` is the re-evaluation at ``now`` (a refused request changes nothing
    but the passing of time); apply its ``on`` to the relay like any other decision.
    """

    accepted: bool
    reason: str
    decision: Decision[S]


@dataclass(frozen=True, slots=True)
class ControlStatus:
    """What ``status`` reports for one relay's control (the pin level comes from the relay)."""

    on: bool
    mode: Mode
    reason: str
    override: str | None  # "on" | "off" | None
    override_until: float | None  # monotonic seconds; the service converts for display
    override_remaining_s: float | None
    latched: str | None
    thresholds: Mapping[str, float | bool | str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "on": self.on,
            "mode": self.mode,
            "reason": self.reason,
            "override": self.override,
            "override_until": self.override_until,
            "override_remaining_s": self.override_remaining_s,
            "latched": self.latched,
            "thresholds": dict(self.thresholds),
        }


# --------------------------------------------------------------------------- shared helpers


def _span(seconds: float, *, up: bool = False) -> str:
    """'31 s' for short spans (rounded, or rounded up for time still to wait), else '2m5s'."""
    whole = math.ceil(seconds - 1e-9) if up else round(seconds)
    whole = max(whole, 1 if up else 0)
    if whole < 120:
        return f"{whole} s"
    return format_duration(whole)


def _onoff(on: bool) -> str:
    return "ON" if on else "OFF"


def _observe(
    value: float | None, reading_at: float | None, obs: Observation | None, now: float
) -> tuple[float | None, float | None]:
    if obs is None:
        return value, reading_at
    # A reading stamped in the future (clock step) counts as brand new, not as negative age.
    return obs.value, now - max(0.0, obs.age_s)


def _sensor_problem(
    value: float | None,
    reading_at: float | None,
    started_at: float,
    stale_after: float,
    now: float,
) -> tuple[str | None, bool]:
    """(what is wrong with the input or None, still waiting for the first reading)."""
    if value is None or reading_at is None:
        waited = now - started_at
        if waited > stale_after:
            return f"no reading for {_span(waited)}", False
        return None, True
    if not math.isfinite(value):
        return f"invalid reading ({value})", False
    age = now - reading_at
    if age > stale_after:
        return f"reading {_span(age)} old (limit {_span(stale_after)})", False
    return None, False


def _input_problem(
    st: HeaterState | FanState, stale_after: float, now: float
) -> tuple[str | None, bool]:
    """:func:`_sensor_problem`, plus a rejected latest sample (which counts until the next
    accepted one: a filter that throws readings away must not leave the last good one in charge).
    """
    problem, waiting = _sensor_problem(
        st.last_value, st.reading_at, st.started_at, stale_after, now
    )
    if problem is None and st.rejected is not None:
        return f"reading rejected ({st.rejected})", False
    return problem, waiting


def _expire(override: Override | None, now: float) -> tuple[Override | None, str]:
    if override is not None and override.until is not None and now >= override.until:
        return None, f"manual {override.word} expired; "
    return override, ""


def _manual_reason(override: Override, now: float, fmt: UntilFormatter) -> str:
    if override.until is None:
        return f"manual {override.word}"
    return f"manual {override.word} {fmt(override.until, now)}"


def _check_request(mode: str, until: float | None, now: float) -> None:
    if mode not in REQUEST_MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of: auto, on, off")
    if until is not None:
        if mode == "auto":
            raise ValueError("an expiry only applies to 'on' or 'off', not 'auto'")
        if not math.isfinite(until) or until <= now:
            raise ValueError("the override must expire in the future")


def _hold(last_switch_at: float | None, min_cycle_s: float, now: float) -> float:
    """Seconds normal control must still wait before switching (0 when free to switch)."""
    if last_switch_at is None:
        return 0.0
    return max(0.0, min_cycle_s - (now - last_switch_at))


def _held_by_min_cycle(
    switch: Callable[[S, bool, Mode, str, float], Decision[S]],
    st: S,
    want: bool,
    why: str,
    mode: Mode,
    min_cycle_s: float,
    now: float,
) -> Decision[S]:
    """Normal control's last step: switch to ``want``, except that switching ON waits until
    ``min_cycle_s`` has passed since the last switching. Switching OFF never waits."""
    wait = _hold(st.last_switch_at, min_cycle_s, now) if want and not st.on else 0.0
    if wait > 0:
        reason = f"min cycle: holding {_onoff(st.on)} for {_span(wait, up=True)} ({why})"
        return switch(st, st.on, mode, reason, now)
    return switch(st, want, mode, why, now)


def _status(
    on: bool,
    mode: Mode,
    reason: str,
    override: Override | None,
    latched: str | None,
    thresholds: Mapping[str, float | bool | str],
    now: float,
) -> ControlStatus:
    until = override.until if override is not None else None
    return ControlStatus(
        on=on,
        mode=mode,
        reason=reason,
        override=override.word if override is not None else None,
        override_until=until,
        override_remaining_s=None if until is None else max(0.0, until - now),
        latched=latched,
        thresholds=thresholds,
    )


# --------------------------------------------------------------------------- heater


def _heater_switch(
    st: HeaterState, on: bool, mode: Mode, reason: str, now: float
) -> Decision[HeaterState]:
    changed = on != st.on
    if changed:
        if on:
            # Each ON period starts a fresh runaway window at the current temperature.
            st = replace(
                st,
                last_switch_at=now,
                on_since=now,
                runaway_ref_c=st.last_value,
                runaway_since=now,
            )
        else:
            st = replace(
                st, last_switch_at=now, on_since=None, runaway_ref_c=None, runaway_since=None
            )
    st = replace(st, on=on, mode=mode, reason=reason)
    return Decision(st, on, changed, reason)


def _latch(st: HeaterState, cause: str, now: float) -> Decision[HeaterState]:
    # A latch cancels a manual ON so that a later reset cannot switch the heater straight on.
    override = st.override if st.override is not None and not st.override.on else None
    st = replace(st, fault=cause, override=override)
    return _heater_switch(st, False, "fault", _latched_reason(cause), now)


def _latched_reason(cause: str) -> str:
    return f"safety: {cause} (latched; {RESET_HINT})"


def decide_heater(
    settings: HeaterSettings,
    state: HeaterState,
    observation: Observation | None,
    now: float,
    format_until: UntilFormatter = relative_until,
) -> Decision[HeaterState]:
    """One heater step at ``now``: with a new ``observation`` (°C), or None on a timer tick.

    The stages, in order: the input (disabled, latched, no valid fresh reading), the safety
    rules on the temperature (:func:`_heater_safety`), then normal control (manual or the band)
    held by the minimum cycle. Never raises for any reading value (NaN, inf, stale are handled
    as safety faults).
    """
    s = settings
    value, reading_at = _observe(state.last_value, state.reading_at, observation, now)
    override, expired = _expire(state.override, now)
    st = replace(state, last_value=value, reading_at=reading_at, override=override)
    if observation is not None:
        st = replace(st, rejected=None)

    if not s.enabled:
        return _heater_switch(st, False, "auto", "disabled (heater.enabled = false)", now)
    if st.fault is not None:
        return _heater_switch(st, False, "fault", _latched_reason(st.fault), now)
    problem, waiting = _input_problem(st, s.stale_after_s, now)
    if waiting:
        return _heater_switch(st, False, "auto", WAITING_FOR_FIRST_READING, now)
    if problem is not None or value is None:
        return _heater_switch(st, False, "fault", f"safety: {problem}", now)

    st, safety = _heater_safety(s, st, value, now)
    if safety is not None:
        return safety
    normal_mode: Mode = "manual" if st.override is not None else "auto"
    want, why = _heater_wanted(s, st, value, now, format_until)
    return _held_by_min_cycle(
        _heater_switch, st, want, expired + why, normal_mode, s.min_cycle_s, now
    )


def _heater_safety(
    s: HeaterSettings, st: HeaterState, temp: float, now: float
) -> tuple[HeaterState, Decision[HeaterState] | None]:
    """The rules on a valid, fresh temperature: cutoff, runaway, maximum ON time and the rest
    after it. Returns the state to go on with and the decision when a rule acts (else None)."""
    if temp >= s.cutoff_temp_c:
        return st, _latch(st, f"{temp:.1f} °C ≥ cutoff {s.cutoff_temp_c:.1f} °C", now)
    normal_mode: Mode = "manual" if st.override is not None else "auto"
    if st.on:
        ref, since = st.runaway_ref_c, st.runaway_since
        # Close to the target a heater legitimately slows down, so auto control pauses the
        # check there. A manual ON has no target: a sensor that fell out of the box reads flat
        # whatever the heater does, so the check always runs.
        near_target = st.override is None and temp >= s.max_temp_c - s.runaway_gain_c
        if ref is None or since is None or near_target or temp >= ref + s.runaway_gain_c:
            st = replace(st, runaway_ref_c=temp, runaway_since=now)
        elif now - since >= s.runaway_window_s:
            cause = (
                f"runaway: heater ON but {ref:.1f} → {temp:.1f} °C in {_span(now - since)} "
                f"(needs +{s.runaway_gain_c:.1f} °C within {_span(s.runaway_window_s)})"
            )
            return st, _latch(st, cause, now)
        on_for = now - st.on_since if st.on_since is not None else 0.0
        if on_for >= s.max_on_s:
            # The rest is at least MAX_ON_REST_S even with min_cycle_s = 0: a cap that lets the
            # heater back on 250 ms later would be no cap at all.
            rest = max(s.min_cycle_s, MAX_ON_REST_S)
            st = replace(st, rest_until=now + rest)
            why = f"safety: ON for {_span(on_for)} (heater.max_on_s); resting OFF for {_span(rest)}"
            return st, _heater_switch(st, False, normal_mode, why, now)
    if st.rest_until is not None:
        if now < st.rest_until:
            why = (
                f"safety: resting OFF for {_span(st.rest_until - now, up=True)} after "
                f"{_span(s.max_on_s)} ON (heater.max_on_s)"
            )
            return st, _heater_switch(st, False, normal_mode, why, now)
        st = replace(st, rest_until=None)
    return st, None


def _heater_wanted(
    s: HeaterSettings, st: HeaterState, temp: float, now: float, format_until: UntilFormatter
) -> tuple[bool, str]:
    """What normal control wants (manual override, else the band) and why."""
    if st.override is not None:
        return st.override.on, _manual_reason(st.override, now, format_until)
    if temp < s.min_temp_c:
        return True, f"auto: {temp:.1f} °C < {s.min_temp_c:.1f} °C"
    if temp > s.max_temp_c:
        return False, f"auto: {temp:.1f} °C > {s.max_temp_c:.1f} °C"
    return st.on, (
        f"auto: {temp:.1f} °C within {s.min_temp_c:.1f}–{s.max_temp_c:.1f} °C, "
        f"staying {_onoff(st.on)}"
    )


def reject_heater(
    settings: HeaterSettings,
    state: HeaterState,
    reason: str,
    now: float,
    format_until: UntilFormatter = relative_until,
    *,
    over_temperature: bool = False,
) -> Decision[HeaterState]:
    """The reading filter rejected the sample taken at ``now`` (``reason``: NaN, out of range,
    implausible jump): heater OFF at once, and until the next accepted reading.

    ``over_temperature``: the sample was hotter than the sensor can measure. That is treated as
    hot, not as missing: the heater latches OFF exactly like the cutoff (when enabled).
    """
    st = replace(state, rejected=reason)
    if over_temperature and settings.enabled and st.fault is None:
        override, _ = _expire(st.override, now)
        return _latch(replace(st, override=override), f"over-temperature: {reason}", now)
    return decide_heater(settings, st, None, now, format_until)


def request_heater(
    settings: HeaterSettings,
    state: HeaterState,
    mode: str,
    until: float | None,
    now: float,
    format_until: UntilFormatter = relative_until,
) -> RequestResult[HeaterState]:
    """Apply ``heater on|off|auto`` (``until``: monotonic expiry or None) and re-evaluate at once.

    Raises ValueError for an unknown mode, an expiry on ``auto`` or an expiry not after ``now``
    (usage errors). Refuses ``on`` (accepted False, with a reason that says what to do) while
    the heater is disabled, latched, resting after ``max_on_s``, or without a fresh valid reading;
    ``off`` and ``auto`` are always accepted.
    """
    _check_request(mode, until, now)
    if mode == "on":
        refusal = _heater_on_refusal(settings, state, now)
        if refusal is not None:
            current = decide_heater(settings, state, None, now, format_until)
            return RequestResult(False, refusal, current)
    override = None if mode == "auto" else Override(on=mode == "on", until=until)
    decision = decide_heater(settings, replace(state, override=override), None, now, format_until)
    return RequestResult(True, decision.reason, decision)


def _heater_on_refusal(s: HeaterSettings, st: HeaterState, now: float) -> str | None:
    if not s.enabled:
        return (
            "heater is disabled (heater.enabled = false); "
            "enable it with 'filamentctl config set heater.enabled true'"
        )
    if st.fault is not None:
        return f"heater is latched off by a safety fault: {st.fault}; {RESET_HINT} first"
    problem, waiting = _input_problem(st, s.stale_after_s, now)
    if waiting:
        return "heater cannot be switched on yet: no reading so far; wait for the sensor"
    if problem is not None:
        return (
            f"heater cannot be switched on: {problem}; it needs a fresh, valid reading "
            "(check the sensor with 'filamentctl status')"
        )
    if st.rest_until is not None and now < st.rest_until:
        return (
            f"heater is resting after {_span(s.max_on_s)} ON (heater.max_on_s); "
            f"try again in {_span(st.rest_until - now, up=True)}"
        )
    return None


def reset_heater(
    settings: HeaterSettings,
    state: HeaterState,
    now: float,
    format_until: UntilFormatter = relative_until,
) -> RequestResult[HeaterState]:
    """Clear a latched fault (``heater reset``) and re-evaluate at once.

    Refused while the last known temperature is still at or above the cutoff: the latch exists
    because the box overheated, and clearing it before the box cools would only re-latch (or,
    with a bad sensor, hide the problem). With nothing latched it is an accepted no-op.
    """
    if state.fault is None:
        current = decide_heater(settings, state, None, now, format_until)
        return RequestResult(True, "heater has no latched fault; nothing to reset", current)
    last = state.last_value
    if last is not None and math.isfinite(last) and last >= settings.cutoff_temp_c:
        current = decide_heater(settings, state, None, now, format_until)
        return RequestResult(
            False,
            f"cannot reset: temperature {last:.1f} °C is still ≥ cutoff "
            f"{settings.cutoff_temp_c:.1f} °C; let the box cool below it first",
            current,
        )
    cleared = replace(state, fault=None, runaway_ref_c=None, runaway_since=None)
    decision = decide_heater(settings, cleared, None, now, format_until)
    return RequestResult(True, f"fault cleared; {decision.reason}", decision)


def heater_status(settings: HeaterSettings, state: HeaterState, now: float) -> ControlStatus:
    """The heater part of ``status``, from the state left by the last step."""
    return _status(
        state.on, state.mode, state.reason, state.override, state.fault, settings.thresholds(), now
    )


# --------------------------------------------------------------------------- fan


def _fan_switch(st: FanState, on: bool, mode: Mode, reason: str, now: float) -> Decision[FanState]:
    changed = on != st.on
    if changed:
        st = replace(st, last_switch_at=now)
    st = replace(st, on=on, mode=mode, reason=reason)
    return Decision(st, on, changed, reason)


def decide_fan(
    settings: FanSettings,
    state: FanState,
    observation: Observation | None,
    now: float,
    format_until: UntilFormatter = relative_until,
) -> Decision[FanState]:
    """One fan step at ``now``: with a new ``observation`` (%RH), or None on a timer tick.

    Bad input (none for ``stale_after``, NaN, stale) puts the fan in its ``on_fault`` state,
    ignoring ``min_cycle_s`` and overrides; it recovers by itself. Never raises.
    """
    s = settings
    value, reading_at = _observe(state.last_value, state.reading_at, observation, now)
    override, expired = _expire(state.override, now)
    st = replace(state, last_value=value, reading_at=reading_at, override=override)
    if observation is not None:
        st = replace(st, rejected=None)

    if not s.enabled:
        return _fan_switch(st, False, "auto", "disabled (fan.enabled = false)", now)

    problem, waiting = _input_problem(st, s.stale_after_s, now)
    if problem is not None:
        return _fan_switch(
            st,
            s.on_fault,
            "fault",
            f"safety: {problem}; fan {_onoff(s.on_fault)} (fan.on_fault)",
            now,
        )

    normal_mode: Mode = "manual" if st.override is not None else "auto"
    if st.override is not None:
        want = st.override.on
        why = _manual_reason(st.override, now, format_until)
    elif waiting or value is None:
        want, why = False, WAITING_FOR_FIRST_READING
    elif s.schedule is not None:
        want, why = s.schedule
    elif value > s.max_humidity:
        want, why = True, f"auto: {value:.1f} % > {s.max_humidity:.1f} %"
    elif value < s.min_humidity:
        want, why = False, f"auto: {value:.1f} % < {s.min_humidity:.1f} %"
    else:
        want = st.on
        why = (
            f"auto: {value:.1f} % within {s.min_humidity:.1f}–{s.max_humidity:.1f} %, "
            f"staying {_onoff(st.on)}"
        )
    return _held_by_min_cycle(_fan_switch, st, want, expired + why, normal_mode, s.min_cycle_s, now)


def reject_fan(
    settings: FanSettings,
    state: FanState,
    reason: str,
    now: float,
    format_until: UntilFormatter = relative_until,
    *,
    over_temperature: bool = False,
) -> Decision[FanState]:
    """The reading filter rejected the sample taken at ``now``: the fan goes to ``on_fault``
    until the next accepted reading (``over_temperature`` changes nothing for the fan)."""
    return decide_fan(settings, replace(state, rejected=reason), None, now, format_until)


def request_fan(
    settings: FanSettings,
    state: FanState,
    mode: str,
    until: float | None,
    now: float,
    format_until: UntilFormatter = relative_until,
) -> RequestResult[FanState]:
    """Apply ``fan on|off|auto`` and re-evaluate at once.

    Raises ValueError for usage errors (as :func:`request_heater`). Refuses ``on`` while the fan
    is disabled, and ``on``/``off`` when readings are bad and the request contradicts the fault
    state (``fan.on_fault``), since the fault state overrides manual control.
    """
    _check_request(mode, until, now)
    refusal: str | None = None
    if mode == "on" and not settings.enabled:
        refusal = (
            "fan is disabled (fan.enabled = false); "
            "enable it with 'filamentctl config set fan.enabled true'"
        )
    elif mode != "auto" and (mode == "on") != settings.on_fault:
        problem, _ = _input_problem(state, settings.stale_after_s, now)
        if problem is not None:
            refusal = (
                f"fan is held {_onoff(settings.on_fault)} (fan.on_fault) because of {problem}; "
                "it follows requests again when fresh readings return"
            )
    if refusal is not None:
        return RequestResult(False, refusal, decide_fan(settings, state, None, now, format_until))
    override = None if mode == "auto" else Override(on=mode == "on", until=until)
    decision = decide_fan(settings, replace(state, override=override), None, now, format_until)
    return RequestResult(True, decision.reason, decision)


def reset_fan(
    settings: FanSettings,
    state: FanState,
    now: float,
    format_until: UntilFormatter = relative_until,
) -> RequestResult[FanState]:
    """``fan reset``: the fan has no latching fault (its fault state clears by itself): a no-op."""
    current = decide_fan(settings, state, None, now, format_until)
    return RequestResult(True, "fan has no latched fault; nothing to reset", current)


def fan_status(settings: FanSettings, state: FanState, now: float) -> ControlStatus:
    """The fan part of ``status``, from the state left by the last step."""
    return _status(
        state.on, state.mode, state.reason, state.override, None, settings.thresholds(), now
    )


# --------------------------------------------------------------------------- holders


P = TypeVar("P", HeaterSettings, FanSettings)


class _Controller(ABC, Generic[P, S]):
    """Holds one relay's settings and state; each method is one pure step that replaces it.

    Subclasses name the pure functions of their relay; the holder only threads the state.
    """

    def __init__(self, settings: P, state: S, format_until: UntilFormatter) -> None:
        self.settings: P = settings
        self.state: S = state
        self.format_until = format_until

    @abstractmethod
    def _decide(self, observation: Observation | None, now: float) -> Decision[S]: ...

    @abstractmethod
    def _reject(self, reason: str, now: float, over_temperature: bool) -> Decision[S]: ...

    @abstractmethod
    def _request(self, mode: str, until: float | None, now: float) -> RequestResult[S]: ...

    @abstractmethod
    def _reset(self, now: float) -> RequestResult[S]: ...

    @abstractmethod
    def status(self, now: float) -> ControlStatus: ...

    def _keep(self, decision: Decision[S]) -> Decision[S]:
        self.state = decision.state
        return decision

    def observe(self, value: float, age_s: float, now: float) -> Decision[S]:
        """A new reading (°C for the heater, %RH for the fan) sampled ``age_s`` before ``now``."""
        return self._keep(self._decide(Observation(value, age_s), now))

    def tick(self, now: float) -> Decision[S]:
        """Re-evaluate without a new reading (staleness, expiry, max on-time)."""
        return self._keep(self._decide(None, now))

    def reject(self, reason: str, now: float, *, over_temperature: bool = False) -> Decision[S]:
        """The sample read at ``now`` was rejected; see :func:`reject_heater`/:func:`reject_fan`."""
        return self._keep(self._reject(reason, now, over_temperature))

    def request(self, mode: str, until: float | None, now: float) -> RequestResult[S]:
        """``on|off|auto``; see :func:`request_heater` / :func:`request_fan`."""
        result = self._request(mode, until, now)
        self.state = result.decision.state
        return result

    def reset(self, now: float) -> RequestResult[S]:
        """``reset``; see :func:`reset_heater` / :func:`reset_fan`."""
        result = self._reset(now)
        self.state = result.decision.state
        return result

    def reconfigure(self, settings: P, now: float) -> Decision[S]:
        """Apply changed settings and re-evaluate at once (a latch stays latched)."""
        self.settings = settings
        return self.tick(now)


class HeaterController(_Controller[HeaterSettings, HeaterState]):
    """The heater's settings and state. ``latched``: a fault cause restored from a previous run
    (the controller starts latched OFF until :meth:`reset`)."""

    def __init__(
        self,
        settings: HeaterSettings,
        now: float,
        format_until: UntilFormatter = relative_until,
        *,
        latched: str | None = None,
    ) -> None:
        super().__init__(settings, HeaterState.initial(now, latched), format_until)

    def _decide(self, observation: Observation | None, now: float) -> Decision[HeaterState]:
        return decide_heater(self.settings, self.state, observation, now, self.format_until)

    def _reject(self, reason: str, now: float, over_temperature: bool) -> Decision[HeaterState]:
        return reject_heater(
            self.settings,
            self.state,
            reason,
            now,
            self.format_until,
            over_temperature=over_temperature,
        )

    def _request(self, mode: str, until: float | None, now: float) -> RequestResult[HeaterState]:
        return request_heater(self.settings, self.state, mode, until, now, self.format_until)

    def _reset(self, now: float) -> RequestResult[HeaterState]:
        return reset_heater(self.settings, self.state, now, self.format_until)

    def status(self, now: float) -> ControlStatus:
        return heater_status(self.settings, self.state, now)


class FanController(_Controller[FanSettings, FanState]):
    """The fan's settings and state."""

    def __init__(
        self, settings: FanSettings, now: float, format_until: UntilFormatter = relative_until
    ) -> None:
        super().__init__(settings, FanState.initial(now), format_until)

    def _decide(self, observation: Observation | None, now: float) -> Decision[FanState]:
        return decide_fan(self.settings, self.state, observation, now, self.format_until)

    def _reject(self, reason: str, now: float, over_temperature: bool) -> Decision[FanState]:
        return reject_fan(self.settings, self.state, reason, now, self.format_until)

    def _request(self, mode: str, until: float | None, now: float) -> RequestResult[FanState]:
        return request_fan(self.settings, self.state, mode, until, now, self.format_until)

    def _reset(self, now: float) -> RequestResult[FanState]:
        return reset_fan(self.settings, self.state, now, self.format_until)

    def status(self, now: float) -> ControlStatus:
        return fan_status(self.settings, self.state, now)
