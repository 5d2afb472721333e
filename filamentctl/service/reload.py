"""Live reload: apply a changed configuration to the running service without a restart.

The ``config.reload`` socket op (sent by ``filamentctl config set/unset/import/edit``) reloads the
settings from the store and calls :func:`apply_reload`, which diffs old and new and applies:

- heater/fan thresholds and limits, ``sensor.stale_after``: the controllers are reconfigured and
  re-evaluated at once (a latched safety fault stays latched);
- reading filter (offsets, jump limits): in place;
- ``sensor.read_interval``, ``storage.commit_interval``: in ``service.settings``, which the
  sampler reads on every loop;
- ``storage.max_backlog``/``storage.retention_days``: on the history;
- ``database.*``, ``writer.*``, ``retry.*``, ``data.*``: a new delivery worker with a new sink.
  The backlog lives in the history with a per-sink cursor, so nothing is lost: the old worker
  gets a short last attempt, the new one continues from its cursor (a new backend's cursor starts
  at the oldest undelivered reading);
- ``notify.*``: the notifier is started, stopped or reconfigured (``service.notify``);
- ``log.level``: the logger's level (unless the service runs with ``--debug``);
- ``dry.*``, ``box.volume_l``: in ``service.settings``, which a drying session reads on each tick
  (a lower cap lowers a running session's target at once).
- ``web.*``, ``mqtt.*``: not the service's; the gateways read them when they start.

Keys that need the hardware rebuilt (sensor type and pins, relay enable/pins/polarity, metrics
listener, log format) keep their running value and are returned in ``restart_required``.
Replies and logs name keys only, never values (secrets).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from filamentctl.service.api import ServiceAPI

log = logging.getLogger("filamentctl.service")

# Keys whose change needs a restart: they pick hardware, pins or listeners at start.
RESTART_KEYS = frozenset(
    {
        "sensor.type",
        "sensor.gpio_pin",
        "sensor.i2c_address",
        "heater.enabled",
        "heater.gpio_pin",
        "heater.active_high",
        "fan.enabled",
        "fan.gpio_pin",
        "fan.active_high",
        "metrics.listen",
        "log.format",
    }
)
# Which part of the running service applies a changed key (unless it needs a restart):
# "settings" parts read service.settings on every use (the sampler's intervals; a running drying
# session follows dry.* and box.* at once); "gateway" keys belong to the gateway processes, which
# read them when they start. Every key of the schema is either here or in RESTART_KEYS (a test
# checks that).
_PARTS_OF_KEY: dict[str, tuple[str, ...]] = {
    "sensor.read_interval": ("settings",),
    "storage.commit_interval": ("settings",),
    "sensor.stale_after": ("control", "sensor"),
    "sensor.temperature_offset": ("sensor",),
    "sensor.humidity_offset": ("sensor",),
    "sensor.max_jump_c": ("sensor",),
    "sensor.max_jump_rh": ("sensor",),
    "storage.max_backlog": ("history",),
    "storage.retention_days": ("history",),
    "log.level": ("log",),
}
_PARTS_OF_SECTION: dict[str, tuple[str, ...]] = {
    "heater": ("control",),
    "fan": ("control",),
    "database": ("delivery",),
    "writer": ("delivery",),
    "retry": ("delivery",),
    "data": ("delivery",),
    "notify": ("notifications",),
    "dry": ("settings",),
    "box": ("settings",),
    "web": ("gateway",),
    "mqtt": ("gateway",),
}


def parts_of(key: str) -> tuple[str, ...]:
    """The parts that apply ``key`` when it changes without a restart (empty for a key that
    only takes effect at the next start)."""
    return _PARTS_OF_KEY.get(key) or _PARTS_OF_SECTION.get(key.split(".", 1)[0], ())


_reload_lock = threading.Lock()  # one reload at a time


def _needs_restart(key: str, old: Mapping[str, object], new: Mapping[str, object]) -> bool:
    # Switching a relay OFF for good must never wait for a restart (its pin stays claimed
    # until then, which is harmless); enabling one does, because the pin is claimed at start.
    if key in ("heater.enabled", "fan.enabled") and old.get(key) and not new.get(key):
        return False
    return key in RESTART_KEYS


def changed_keys(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    """Keys whose value differs (or exists on one side only), sorted."""
    return sorted(k for k in set(old) | set(new) if old.get(k, _NONE) != new.get(k, _NONE))


_NONE = object()


def apply_reload(service: ServiceAPI, new_settings: Mapping[str, object]) -> dict[str, Any]:
    """Apply ``new_settings`` (complete, validated) to a running :class:`Service`.

    Returns ``{"changed": [...], "applied": [...], "restart_required": [...], "errors": [...]}``
    (key names only). A part that fails (e.g. a sink that cannot be built) keeps its old
    settings and is reported in ``errors``; the rest is still applied.
    """
    with _reload_lock:
        return _apply(service, new_settings)


def _apply(service: ServiceAPI, new_settings: Mapping[str, object]) -> dict[str, Any]:
    old = dict(service.settings)
    new = dict(new_settings)
    if service.simulate:
        new["sensor.type"] = "simulated"  # `run --simulate` wins over the stored sensor
    changed = changed_keys(old, new)
    restart = [k for k in changed if _needs_restart(k, old, new)]
    # What runs: the new values, except those that need a restart.
    effective = {**new, **{k: old[k] for k in restart if k in old}}
    applied: list[str] = []
    errors: list[str] = []
    live = [k for k in changed if k not in restart]
    if not live:
        return _report(changed, applied, restart, errors)

    def keys_of(part: str) -> list[str]:
        return [k for k in live if part in parts_of(k)]

    # Plain values first: the sampler and status read service.settings.
    service.settings.update({k: effective[k] for k in live if k in effective})
    applied.extend(keys_of("settings"))

    def apply_part(part: str, apply: Callable[[], None]) -> None:
        """Apply one part's changed keys; when that fails, the part keeps its old values (in
        service.settings too) and the failure is reported, and the other parts still apply."""
        keys = keys_of(part)
        if not keys:
            return
        try:
            apply()
        except Exception as exc:
            errors.append(f"{part}: {_one_line(exc)}")
            service.settings.update({k: old[k] for k in keys if k in old})
        else:
            applied.extend(keys)

    apply_part("control", lambda: service.control.reconfigure(effective, service.clock()))
    apply_part("sensor", lambda: service.sampler.reconfigure(effective))
    apply_part("history", lambda: service.history.reconfigure(effective))
    apply_part("delivery", lambda: service.swap_delivery(effective))
    apply_part("notifications", lambda: _reconfigure_notifier(service, effective))
    if "log.level" in live:
        _apply_log_level(str(old.get("log.level", "info")), str(effective["log.level"]))
        applied.append("log.level")

    return _report(changed, applied, restart, errors)


def _report(
    changed: list[str], applied: list[str], restart: list[str], errors: list[str]
) -> dict[str, Any]:
    if changed:
        log.info(
            "configuration reloaded: applied %s%s%s",
            ", ".join(sorted(set(applied))) or "nothing",
            f"; restart needed for {', '.join(restart)}" if restart else "",
            f"; failed: {'; '.join(errors)}" if errors else "",
        )
    return {
        "changed": changed,
        "applied": sorted(set(applied)),
        "restart_required": restart,
        "errors": errors,
    }


def _reconfigure_notifier(service: ServiceAPI, settings: Mapping[str, object]) -> None:
    # Imported here: without notify.urls the notifier (and Apprise) is never loaded.
    from filamentctl.service.notify import reconfigure_service

    reconfigure_service(service, settings)


def _apply_log_level(old: str, new: str) -> None:
    logger = logging.getLogger("filamentctl")
    old_level = getattr(logging, old.upper(), logging.INFO)
    # Under --debug the level is DEBUG whatever log.level says: leave it alone.
    if logger.level not in (old_level, logging.NOTSET):
        return
    logger.setLevel(getattr(logging, new.upper(), logging.INFO))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def reload_from_store(service: ServiceAPI, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Load the settings as ``run`` did (store, environment, run's overrides) and apply them.

    Raises ProtocolError(REFUSED) with the one-line reason when the configuration cannot be
    loaded (e.g. cannot decrypt); the running settings then stay as they are.
    """
    from filamentctl import protocol
    from filamentctl.errors import UserError
    from filamentctl.protocol import ProtocolError
    from filamentctl.store.settings import load_settings

    try:
        settings = load_settings(service.paths, env, overrides=service.overrides)
    except UserError as exc:
        raise ProtocolError(protocol.REFUSED, f"configuration not reloaded: {exc}") from None
    try:
        from filamentctl.store import vault

        vault.clear_cache()  # a changed reference must be read again
    except Exception:
        log.debug("could not clear the Vault cache", exc_info=True)
    return apply_reload(service, settings)
