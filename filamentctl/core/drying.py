"""Drying sessions: material profiles, the vent schedule, the end rule and the water estimate.

Pure: no clocks, files or threads. Times are Unix seconds (wall clock) handed in by the caller,
because a session outlives the process that started it (it resumes after a restart).

A session only moves the heater's target band (``target − BAND_C`` … ``target``) and vents the
box on a schedule; every safety rule of ``core.control`` still applies. How it works (the user's
version is ``docs/drying.md``):

* **Profiles** give each material a target temperature and a minimum and maximum time. The
  target never exceeds the cap: ``dry.max_temp_c``, and never closer than ``CUTOFF_MARGIN_C`` to
  ``heater.cutoff_temp_c``. A profile above the cap runs at the cap (and says so); an explicit
  ``--temp`` above it is refused.
* **Venting.** Every ``dry.vent_every`` the fan vents for ``dry.vent_for`` at the end of the
  period; the box is closed in between. Closed, the box's absolute humidity (AH) rises by what
  the filament releases; each vent swaps the moist air for room air.
* **The trend** is the slope of AH against time over the last ``dry.plateau_window``, using only
  closed-box readings (vents and ``SETTLE_S`` after each are left out) and fitting each closed
  stretch with its own intercept (a pooled within-stretch regression). Vent drops and sensor gaps
  therefore never count as trend; what is left is the filament's release rate over the box volume.
* **The end rule.** A session ends on ``plateau`` once its minimum time has passed and the whole
  ±2-standard-error band of the trend lies within ±``dry.plateau_slope`` (noise can only delay
  the end, never bring it forward), with the window at least half covered by closed-box readings
  from two stretches or more; or on ``time`` at its maximum time, whichever comes first.
* **Water removed** = box volume × the AH drop across each vent (median of the readings in the
  minute before it against those around its end). It is a lower bound: water that leaks out
  between vents is not counted.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from filamentctl.core.duration import format_duration, parse_duration

#: Width of the heater band during a session: ON below target − BAND_C, OFF above target.
BAND_C = 2.0
#: The drying target always stays this far below heater.cutoff_temp_c (overshoot after OFF).
CUTOFF_MARGIN_C = 5.0
#: Lowest target a session accepts (below it a session would not dry anything).
MIN_TARGET_C = 30.0
#: After each vent the air mixes and the heater recovers: readings left out of the trend.
SETTLE_S = 60.0
#: Readings before a vent (and on each side of its end) that measure its AH drop.
BEFORE_S = 60.0
AROUND_END_S = 30.0
#: With slow sampling those windows widen up to this many times (see vent_drop).
WIDEN = 4
#: Per-vent uncertainty of the measured AH drop (sensor noise on two medians), g/m³.
DROP_NOISE_G_M3 = 0.05
#: Relative uncertainty of the free air volume (spools displace air; box.volume_l is an estimate).
VOLUME_UNCERTAINTY = 0.2
#: The trend's standard errors the end rule adds on each side.
TREND_SIGMAS = 2.0
#: Least share of the window covered by closed-box readings for a plateau decision.
MIN_COVERAGE = 0.5
#: A gap between readings longer than this splits a closed stretch in two.
GAP_SPLIT_S = 120.0

END_REASONS = ("plateau", "time", "stopped", "fault")
_HOUR = 3600.0


class DryingError(ValueError):
    """A session cannot be planned as asked; the message says why and what to do."""


class UnknownMaterial(DryingError):
    """No profile has that name."""


class AboveCap(DryingError):
    """An explicit target above the cap."""


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class Profile:
    """One material: target temperature, minimum and maximum time. ``source`` says where the
    figures come from (``built-in``, ``dry.profiles`` or ``built-in, changed by dry.profiles``)."""

    name: str
    temp_c: float
    min_s: float
    max_s: float
    source: str = "built-in"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "temp_c": self.temp_c,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "source": self.source,
        }


def _p(name: str, temp_c: float, hours: float) -> Profile:
    # The maker gives one time; our minimum is half of it (see docs/drying.md): the plateau
    # can shorten a session, but never below half of what the maker recommends.
    return Profile(name, temp_c, hours * _HOUR / 2, hours * _HOUR)


#: Bambu Lab's drying table (forced-air oven column); sources per figure in docs/drying.md.
BUILTIN: tuple[Profile, ...] = (
    _p("PLA", 55.0, 8),
    _p("PETG", 63.0, 8),
    _p("ABS", 80.0, 8),
    _p("ASA", 80.0, 8),
    _p("TPU", 70.0, 8),
    _p("PA", 80.0, 10),
    _p("PC", 80.0, 8),
    _p("PVA", 80.0, 10),
    _p("PETG-CF", 63.0, 8),
    _p("PA-CF", 80.0, 10),
)
#: Other names people use for a built-in profile.
ALIASES = {"NYLON": "PA"}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+_ -]{0,31}")
_PROFILE_KEYS = ("temp_c", "min", "max")
PROFILE_TEMP_RANGE_C = (MIN_TARGET_C, 120.0)
PROFILE_MIN_S = 60.0
PROFILE_MAX_S = 7 * 86400.0
_PROFILES_HINT = (
    'a JSON object of profiles, e.g. {"PLA+": {"temp_c": 50, "min": "3h", "max": "6h"}} '
    "(temp_c in °C; min and max as durations; a built-in profile may change just one of them)"
)


def _key(name: str) -> str:
    key = name.strip().upper()
    return ALIASES.get(key, key)


def _duration(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DryingError(f'{where} must be a duration such as "4h"')
    try:
        seconds = parse_duration(value) if isinstance(value, str) else float(value)
    except ValueError as exc:
        raise DryingError(f"{where}: {exc}") from None
    if not math.isfinite(seconds) or not PROFILE_MIN_S <= seconds <= PROFILE_MAX_S:
        raise DryingError(
            f"{where} must be from 1m to 7d (a bare number counts as seconds), not {value!r}"
        )
    return seconds


def load_profiles(custom: Mapping[str, Any] | None = None) -> dict[str, Profile]:
    """The built-in profiles with ``dry.profiles`` applied, keyed by upper-case name.

    A custom entry named like a built-in one (case-insensitive) changes the figures it gives;
    any other name is a new profile and needs all of ``temp_c``, ``min`` and ``max``. Raises
    DryingError, one line naming the entry, for anything else.
    """
    out = {p.name.upper(): p for p in BUILTIN}
    for raw_name, spec in (custom or {}).items():
        if not isinstance(raw_name, str) or not _NAME.fullmatch(raw_name.strip()):
            raise DryingError(
                f"profile name {raw_name!r} must be 1-32 letters, digits, '+', '-', '_' or spaces"
            )
        name = raw_name.strip()
        if not isinstance(spec, Mapping):
            raise DryingError(f"profile {name!r} must be an object with temp_c, min and max")
        unknown = sorted(set(spec) - set(_PROFILE_KEYS))
        if unknown:
            raise DryingError(
                f"profile {name!r} has unknown field(s) {', '.join(map(str, unknown))}; "
                "use temp_c, min and max"
            )
        base = out.get(_key(name))
        if base is None and not all(k in spec for k in _PROFILE_KEYS):
            raise DryingError(f"new profile {name!r} needs temp_c, min and max")
        temp = spec.get("temp_c", base.temp_c if base else None)
        if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not math.isfinite(temp):
            raise DryingError(f"profile {name!r}: temp_c must be a number of °C")
        low, high = PROFILE_TEMP_RANGE_C
        if not low <= temp <= high:
            raise DryingError(
                f"profile {name!r}: temp_c must be from {low:g} to {high:g} °C, not {temp:g}"
            )
        min_s = _duration(spec["min"], f"profile {name!r}: min") if "min" in spec else None
        max_s = _duration(spec["max"], f"profile {name!r}: max") if "max" in spec else None
        lo = min_s if min_s is not None else (base.min_s if base else 0.0)
        hi = max_s if max_s is not None else (base.max_s if base else 0.0)
        if lo > hi:
            raise DryingError(
                f"profile {name!r}: min ({format_duration(lo)}) must not exceed max "
                f"({format_duration(hi)})"
            )
        if base is not None:
            out[base.name.upper()] = Profile(
                base.name, float(temp), lo, hi, "built-in, changed by dry.profiles"
            )
        else:
            out[name.upper()] = Profile(name, float(temp), lo, hi, "dry.profiles")
    return out


def profiles_problem(value: Any) -> str | None:
    """Schema validator for ``dry.profiles``: None when valid, else what is wrong and allowed."""
    try:
        load_profiles(value)
    except DryingError as exc:
        return f"{_PROFILES_HINT}; {exc}"
    return None


def find_profile(profiles: Mapping[str, Profile], name: str) -> Profile:
    """The profile called ``name`` (any case; ``nylon`` is PA). UnknownMaterial lists them."""
    found = profiles.get(_key(name))
    if found is None:
        known = ", ".join(p.name for p in profiles.values())
        raise UnknownMaterial(
            f"no drying profile for {name.strip()!r}; known: {known} "
            "(add your own with 'filamentctl config set dry.profiles ...')"
        )
    return found


# --------------------------------------------------------------------------- settings


def _seconds(value: Any) -> float:
    return parse_duration(value) if isinstance(value, str) else float(value)


@dataclass(frozen=True, slots=True)
class DryingSettings:
    """What sessions need from the configuration. Build with :meth:`from_settings`."""

    max_temp_c: float = 50.0
    cutoff_temp_c: float = 60.0
    plateau_window_s: float = 3600.0
    plateau_slope: float = 1.0  # g/m³ per hour
    vent_every_s: float = 600.0
    vent_for_s: float = 60.0
    volume_l: float = 50.0
    profiles: Mapping[str, Profile] = field(default_factory=load_profiles)

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> DryingSettings:
        """From the dotted-key settings; DryingError when ``dry.profiles`` is invalid."""
        raw = s.get("dry.profiles") or {}
        return cls(
            max_temp_c=float(s["dry.max_temp_c"]),
            cutoff_temp_c=float(s["heater.cutoff_temp_c"]),
            plateau_window_s=_seconds(s["dry.plateau_window"]),
            plateau_slope=float(s["dry.plateau_slope"]),
            vent_every_s=_seconds(s["dry.vent_every"]),
            vent_for_s=_seconds(s["dry.vent_for"]),
            volume_l=float(s["box.volume_l"]),
            profiles=load_profiles(raw if isinstance(raw, Mapping) else {}),
        )

    @property
    def cap_c(self) -> float:
        """The highest target a session may use."""
        return min(self.max_temp_c, self.cutoff_temp_c - CUTOFF_MARGIN_C)

    @property
    def cap_reason(self) -> str:
        """Which setting sets the cap, in words."""
        if self.max_temp_c <= self.cutoff_temp_c - CUTOFF_MARGIN_C:
            return "dry.max_temp_c"
        return f"{CUTOFF_MARGIN_C:g} °C below heater.cutoff_temp_c {self.cutoff_temp_c:g} °C"

    def cap_text(self) -> str:
        return f"{self.cap_c:g} °C ({self.cap_reason})"


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class Plan:
    """What a session will do: the material, its target (capped) and its time limits."""

    material: str
    target_c: float
    profile_temp_c: float
    capped: bool
    min_s: float
    max_s: float

    @property
    def band(self) -> tuple[float, float]:
        """The heater band during the session: (ON below, OFF above)."""
        return (self.target_c - BAND_C, self.target_c)


def plan_session(
    settings: DryingSettings,
    material: str,
    temp_c: float | None = None,
    for_s: float | None = None,
) -> Plan:
    """Plan a session for ``material``; ``temp_c`` replaces the profile's target and ``for_s``
    its maximum time (the minimum is then at most ``for_s``).

    Raises UnknownMaterial (listing the profiles), AboveCap (naming the cap) for a ``temp_c``
    above it, and DryingError for a target below MIN_TARGET_C, a cap below it, or a bad
    ``for_s``. A profile above the cap is not an error: it runs at the cap (``capped``).
    """
    profile = find_profile(settings.profiles, material)
    cap = settings.cap_c
    if cap < MIN_TARGET_C:
        raise DryingError(
            f"the drying cap is {settings.cap_text()}, below the {MIN_TARGET_C:g} °C a session "
            "needs; raise dry.max_temp_c (and heater.cutoff_temp_c)"
        )
    if temp_c is not None:
        if not math.isfinite(temp_c):
            raise DryingError("the target temperature must be a number of °C")
        if temp_c > cap:
            raise AboveCap(
                f"{temp_c:g} °C is above the drying cap of {settings.cap_text()}; "
                f"use --temp {cap:g} or less"
            )
        if temp_c < MIN_TARGET_C:
            raise DryingError(
                f"{temp_c:g} °C is too low to dry anything; use at least {MIN_TARGET_C:g} °C"
            )
        target, capped = float(temp_c), False
    else:
        target, capped = min(profile.temp_c, cap), profile.temp_c > cap
    max_s = profile.max_s
    if for_s is not None:
        if not math.isfinite(for_s) or for_s <= 0 or for_s > PROFILE_MAX_S:
            raise DryingError("--for must be a duration from 1s to 7d")
        max_s = float(for_s)
    return Plan(profile.name, target, profile.temp_c, capped, min(profile.min_s, max_s), max_s)


# --------------------------------------------------------------------------- schedule


def in_vent(elapsed_s: float, every_s: float, for_s: float) -> bool:
    """Whether the schedule vents ``elapsed_s`` into a session: the last ``for_s`` of each
    ``every_s`` period (the box is closed first, so it warms up before the first vent)."""
    if elapsed_s < 0 or for_s <= 0:
        return False
    return elapsed_s % every_s >= every_s - for_s


def vent_span(index: int, every_s: float, for_s: float) -> tuple[float, float]:
    """(start, end) of vent number ``index`` (from 0), in seconds into the session."""
    end = (index + 1) * every_s
    return end - for_s, end


def _closed(elapsed_s: float, every_s: float, for_s: float) -> bool:
    """Closed-box time that counts for the trend: not venting, not settling after a vent."""
    if elapsed_s < 0:
        return False
    phase = elapsed_s % every_s
    if phase >= every_s - for_s:
        return False
    # The first period has no vent before it: nothing to settle from.
    return elapsed_s < every_s or phase >= SETTLE_S


# --------------------------------------------------------------------------- trend


@dataclass(frozen=True, slots=True)
class Point:
    """One accepted reading during a session: wall time (s), AH (g/m³), temperature (°C)."""

    t: float
    ah: float
    temperature_c: float


@dataclass(frozen=True, slots=True)
class Trend:
    """The closed-box AH slope over the window (g/m³ per hour) and how well it is known."""

    slope: float
    stderr: float
    samples: int
    stretches: int
    coverage: float  # share of the window covered by the closed stretches used

    def to_dict(self) -> dict[str, Any]:
        return {
            "slope_g_m3_h": round(self.slope, 4),
            "stderr_g_m3_h": round(self.stderr, 4),
            "samples": self.samples,
            "stretches": self.stretches,
            "coverage": round(self.coverage, 3),
        }


def closed_trend(
    points: Iterable[Point],
    started_at: float,
    now: float,
    window_s: float,
    every_s: float,
    for_s: float,
) -> Trend | None:
    """The pooled within-stretch least-squares slope of AH over ``[now − window_s, now]``.

    Only closed-box readings count (see :func:`_closed`); readings are grouped by vent period
    and split further at gaps longer than GAP_SPLIT_S; each group has its own intercept and
    needs three readings. None when fewer than two groups or four readings remain.
    """
    since = max(started_at, now - window_s)
    groups: dict[tuple[int, int], list[tuple[float, float]]] = {}
    last: dict[int, tuple[float, int]] = {}
    for p in points:
        if not since <= p.t <= now or not math.isfinite(p.ah):
            continue
        elapsed = p.t - started_at
        if not _closed(elapsed, every_s, for_s):
            continue
        period = int(elapsed // every_s)
        prev_t, part = last.get(period, (p.t, 0))
        if p.t - prev_t > GAP_SPLIT_S:
            part += 1
        last[period] = (p.t, part)
        groups.setdefault((period, part), []).append(((p.t - since) / _HOUR, p.ah))
    used = [g for g in groups.values() if len(g) >= 3]
    n = sum(len(g) for g in used)
    if len(used) < 2 or n < 4:
        return None
    sxx = sxy = 0.0
    means: list[tuple[float, float]] = []
    for g in used:
        mx = sum(x for x, _ in g) / len(g)
        my = sum(y for _, y in g) / len(g)
        means.append((mx, my))
        for x, y in g:
            sxx += (x - mx) ** 2
            sxy += (x - mx) * (y - my)
    if sxx <= 0:
        return None
    slope = sxy / sxx
    rss = 0.0
    for g, (mx, my) in zip(used, means, strict=True):
        for x, y in g:
            rss += (y - my - slope * (x - mx)) ** 2
    dof = n - len(used) - 1
    stderr = math.sqrt(rss / dof / sxx) if dof > 0 else math.inf
    span = sum((g[-1][0] - g[0][0]) * _HOUR for g in used)
    coverage = span / window_s if window_s > 0 else 0.0
    return Trend(slope, stderr, n, len(used), min(1.0, coverage))


def is_plateau(trend: Trend | None, slope_limit: float) -> bool:
    """The trend shows a plateau: well covered, and its ±TREND_SIGMAS band within the limit."""
    if trend is None or trend.coverage < MIN_COVERAGE or trend.stretches < 2:
        return False
    return abs(trend.slope) + TREND_SIGMAS * trend.stderr < slope_limit


def end_reason(plan: Plan, elapsed_s: float, plateau: bool) -> str | None:
    """``time`` at the maximum time, ``plateau`` after the minimum time, else None."""
    if elapsed_s >= plan.max_s:
        return "time"
    if plateau and elapsed_s >= plan.min_s:
        return "plateau"
    return None


# --------------------------------------------------------------------------- water


def vent_drop(
    points: Sequence[Point], started_at: float, index: int, every_s: float, for_s: float
) -> float | None:
    """The AH drop (g/m³) across vent ``index``: median of the readings in the BEFORE_S before
    it minus the median of those within AROUND_END_S of its end; None without readings on both
    sides. Never negative (a vent cannot add water the filament did not release).

    With slow sampling (a reading a minute) a window may hold none: it widens up to
    ``WIDEN``-fold, never into the previous vent's settling, the first half of this vent or the
    next vent.
    """
    start, end = vent_span(index, every_s, for_s)
    t0, t1 = started_at + start, started_at + end
    closed_from = started_at + (end - every_s + SETTLE_S if index > 0 else 0.0)
    next_vent = t1 + every_s - for_s
    before: list[float] = []
    after: list[float] = []
    for scale in (1, 2, WIDEN):
        lo = max(t0 - BEFORE_S * scale, closed_from)
        before = before or [p.ah for p in points if lo <= p.t < t0]
        lo, hi = (
            max(t1 - AROUND_END_S * scale, t0 + for_s / 2),
            min(t1 + AROUND_END_S * scale, next_vent),
        )
        after = after or [p.ah for p in points if lo <= p.t <= hi]
    if not before or not after:
        return None
    return max(0.0, statistics.median(before) - statistics.median(after))


def water_uncertainty_g(removed_g: float, vents_measured: int, volume_l: float) -> float:
    """± grams on the water estimate: the free volume (VOLUME_UNCERTAINTY) and each vent's
    sensor noise (DROP_NOISE_G_M3), added in quadrature. Leaks make the estimate a lower bound
    on top of this."""
    volume_m3 = volume_l / 1000.0
    noise = DROP_NOISE_G_M3 * volume_m3 * math.sqrt(max(0, vents_measured))
    return math.hypot(VOLUME_UNCERTAINTY * removed_g, noise)


# --------------------------------------------------------------------------- the session


@dataclass(frozen=True, slots=True)
class SessionState:
    """What is stored about a running session (it resumes from this after a restart)."""

    id: str
    material: str
    target_c: float
    profile_temp_c: float
    capped: bool
    min_s: float
    max_s: float
    started_at: float  # Unix seconds
    water_g: float = 0.0
    vents_done: int = 0  # vents whose drop has been measured or given up on
    vents_measured: int = 0
    peak_c: float | None = None

    @property
    def plan(self) -> Plan:
        return Plan(
            self.material,
            self.target_c,
            self.profile_temp_c,
            self.capped,
            self.min_s,
            self.max_s,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "material": self.material,
            "target_c": self.target_c,
            "profile_temp_c": self.profile_temp_c,
            "capped": self.capped,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "started_at": self.started_at,
            "water_g": self.water_g,
            "vents_done": self.vents_done,
            "vents_measured": self.vents_measured,
            "peak_c": self.peak_c,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionState:
        """Raises ValueError (naming the field) when ``data`` is not a stored session."""

        def num(name: str, *, optional: bool = False) -> Any:
            value = data.get(name)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"field {name!r} is not a number")
            if not math.isfinite(value):
                raise ValueError(f"field {name!r} is not finite")
            return value

        for name in ("id", "material"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(f"field {name!r} is missing")
        state = cls(
            id=str(data["id"]),
            material=str(data["material"]),
            target_c=float(num("target_c")),
            profile_temp_c=float(num("profile_temp_c")),
            capped=bool(data.get("capped", False)),
            min_s=float(num("min_s")),
            max_s=float(num("max_s")),
            started_at=float(num("started_at")),
            water_g=float(num("water_g")),
            vents_done=int(num("vents_done")),
            vents_measured=int(num("vents_measured")),
            peak_c=None if data.get("peak_c") is None else float(num("peak_c")),
        )
        if state.max_s <= 0 or state.min_s < 0 or state.vents_done < 0:
            raise ValueError("times and counts must not be negative")
        return state


@dataclass(frozen=True, slots=True)
class Expectation:
    """How a running session is expected to end, and when (Unix seconds)."""

    reason: str
    at: float
    note: str


class DryingSession:
    """A running session: its stored state and the readings of the last window.

    Not thread-safe (the caller serialises). ``observe`` each accepted reading; ``check`` on a
    timer returns the end reason once one applies. Resuming after a restart is building one
    from the stored state and the readings the history kept since (``points``).
    """

    TREND_EVERY_S = 30.0  # recompute the trend at most this often (session time)

    def __init__(
        self, state: SessionState, settings: DryingSettings, points: Iterable[Point] = ()
    ) -> None:
        self.state = state
        self.settings = settings
        self.points: list[Point] = []
        self.trend: Trend | None = None
        self._trend_at: float | None = None
        self.changed = False  # the stored state is out of date (water, vents, peak)
        for p in sorted(points, key=lambda p: p.t):
            self.observe(p)

    @property
    def plan(self) -> Plan:
        return self.state.plan

    def elapsed(self, now: float) -> float:
        """Seconds since the start (0 when the wall clock went backwards)."""
        return max(0.0, now - self.state.started_at)

    def observe(self, point: Point) -> None:
        """An accepted reading taken at ``point.t``."""
        if point.t < self.state.started_at or not math.isfinite(point.ah):
            return
        if self.points and point.t <= self.points[-1].t:
            return  # a reading already seen (resume overlap) or out of order
        self.points.append(point)
        peak = self.state.peak_c
        if math.isfinite(point.temperature_c) and (peak is None or point.temperature_c > peak):
            self.state = replace(self.state, peak_c=point.temperature_c)
            self.changed = True
        self._trim(point.t)

    def _trim(self, now: float) -> None:
        s = self.settings
        keep_from = now - max(s.plateau_window_s, s.vent_every_s) - s.vent_every_s - BEFORE_S
        if self.points and self.points[0].t < keep_from:
            self.points = [p for p in self.points if p.t >= keep_from]

    def vent_on(self, now: float) -> bool:
        """Whether the schedule vents now."""
        s = self.settings
        return in_vent(self.elapsed(now), s.vent_every_s, s.vent_for_s)

    def measure_vents(self, now: float) -> None:
        """Account the water of every vent whose measuring time is over."""
        s = self.settings
        elapsed = self.elapsed(now)
        while True:
            index = self.state.vents_done
            _start, end = vent_span(index, s.vent_every_s, s.vent_for_s)
            if elapsed < end + AROUND_END_S * WIDEN:
                return
            drop = vent_drop(
                self.points, self.state.started_at, index, s.vent_every_s, s.vent_for_s
            )
            water, measured = self.state.water_g, self.state.vents_measured
            if drop is not None:
                water += drop * s.volume_l / 1000.0
                measured += 1
            self.state = replace(
                self.state, water_g=water, vents_done=index + 1, vents_measured=measured
            )
            self.changed = True

    def update_trend(self, now: float, *, force: bool = False) -> Trend | None:
        """Recompute the trend (at most every TREND_EVERY_S unless ``force``)."""
        if force or self._trend_at is None or abs(now - self._trend_at) >= self.TREND_EVERY_S:
            s = self.settings
            self.trend = closed_trend(
                self.points,
                self.state.started_at,
                now,
                s.plateau_window_s,
                s.vent_every_s,
                s.vent_for_s,
            )
            self._trend_at = now
        return self.trend

    def plateau(self, now: float) -> bool:
        """The plateau condition alone (whatever the minimum time)."""
        if self.elapsed(now) < self.settings.plateau_window_s:
            return False  # a window that reaches back before the start is not a full window
        return is_plateau(self.update_trend(now), self.settings.plateau_slope)

    def check(self, now: float) -> str | None:
        """``plateau`` or ``time`` once the session should end, else None (accounts vents)."""
        self.measure_vents(now)
        elapsed = self.elapsed(now)
        plateau = elapsed >= self.plan.min_s and self.plateau(now)
        return end_reason(self.plan, elapsed, plateau)

    def expectation(self, now: float) -> Expectation:
        """Which end is expected and when: the plateau (at the minimum time, or now) when the
        trend already shows one, else the maximum time."""
        start = self.state.started_at
        if self.plateau(now):
            at = max(now, start + self.plan.min_s)
            return Expectation("plateau", at, "the filament has stopped giving off water")
        limit = self.settings.plateau_slope
        return Expectation(
            "time",
            start + self.plan.max_s,
            f"or earlier, once the humidity trend stays within ±{limit:g} g/m³/h",
        )

    def water(self) -> tuple[float, float]:
        """(grams removed so far, ± grams)."""
        st = self.state
        spread = water_uncertainty_g(st.water_g, st.vents_measured, self.settings.volume_l)
        return st.water_g, spread


def duration_text(seconds: float) -> str:
    """``4h``, ``1h30m``: whole minutes for long spans, as ``format_duration`` writes them."""
    if seconds >= 600:
        seconds = round(seconds / 60.0) * 60.0
    return format_duration(max(0.0, seconds))
