"""The service: wires sensor, history, delivery, relays and the socket together.

Threads: ``sampler`` (reads the sensor, stores readings, drives control on each reading),
``control`` (re-evaluates control on a timer so a dead sensor still turns the heater OFF),
``delivery`` (drains the backlog), ``socket`` (+ one thread per client). Every stop path drives
both relays OFF first.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from filamentctl import __version__, protocol
from filamentctl.core.reading import Reading, Sample
from filamentctl.paths import Paths
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.bus import EventBus
from filamentctl.service.server import Connection, SocketServer

log = logging.getLogger("filamentctl.service")

CONTROL_TICK_S = 0.25
# The sampler re-reads sensor.read_interval at least this often while it sleeps, so a reload
# from a long interval to a short one applies within this long, not after the old interval.
SAMPLER_RECHECK_S = 1.0
RETENTION_EVERY_S = 3600.0
SINK_RETRY_S = 30.0  # how often to retry building a sink whose secret is in an unreachable Vault
SUBSCRIBER_SEND_TIMEOUT_S = 10.0
CONFIRM_AFTER_S = 0.5  # the read that confirms a first sample comes this soon (or the sensor's min)
# One history reply at most this many readings (ask for step_s to cover long spans); the reply
# is read and sent in chunks, so this bounds its length, not the service's memory.
HISTORY_LIMIT = 100_000
MAX_SINCE_S = 100 * 366 * 86400.0
# A history reply must be taken by its client within this long in all, or it is dropped.
HISTORY_SEND_S = 60.0
MAX_IDS = 10_000  # dead-letter ids in one replay/purge request
#: Gateways that may ask for their settings over the socket (``gateway.settings``).
GATEWAYS = ("web", "mqtt")


class Service:
    """One box. ``start()`` brings everything up; ``stop()`` is safe from any state, twice."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        paths: Paths,
        *,
        simulate: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        sink: Any = None,
        sensor: Any = None,
        pin_factory: Any = None,
        socket_group: str | None = None,
    ) -> None:
        self.settings = dict(settings)
        # Where the configuration and its key came from, for status (never the key itself).
        self.config_origin: dict[str, Any] = {
            "source": getattr(settings, "source", "defaults"),
            **getattr(settings, "key_info", {"key_source": None}),
        }
        # CLI flags outrank stored and env values, also across a live config reload.
        self.overrides: dict[str, Any] = {"sensor.type": "simulated"} if simulate else {}
        self.settings.update(self.overrides)
        self.paths = paths
        self.simulate = simulate
        self.clock = clock
        self.wall_ns = wall_ns
        self.bus = EventBus()
        self.started_at = clock()
        self._stopping = threading.Event()
        self._stopped = False
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._sink_override = sink
        self._sensor_override = sensor
        self._pin_factory = pin_factory
        self._socket_group = socket_group
        self.readings_total = 0
        self.latest: Reading | None = None
        self.latest_at: float | None = None  # clock() when the latest reading was taken
        self.last_control_tick = clock()
        self.fatal: BaseException | None = None
        self.awaiting_confirmation = False  # the filter holds a first sample back
        self._pending_since: float | None = None  # clock() of the oldest uncommitted reading
        self._delivery_setup_error: str | None = None
        # Built in start():
        self.history: Any = None
        self.delivery: Any = None
        self.sensor: Any = None
        self.box: Any = None
        self.control: Any = None
        self.server: SocketServer | None = None
        self.metrics: Any = None
        self.notifier: Any = None  # service.notify.Notifier while notify.urls is set
        self._state_lock: Any = None
        self.drying: Any = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        from filamentctl.service.lockfile import StateLock
        from filamentctl.store.history import History
        from filamentctl.store.trust import check_paths

        s = self.settings
        # Before any file is opened: directories others can write, symlinks in our places.
        check_paths(self.paths)
        self._state_lock = StateLock(self.paths.state_dir)
        self._state_lock.acquire()
        try:
            self._build_control()
            # A damaged history is kept aside, never fatal.
            history = History.from_settings(self.paths.history_db, s, recover_corrupt=True)
            history.open()
            # Only an open history is kept: stop() after a failed open must not try to commit.
            self.history = history
            last = self.history.latest()
            if last is not None:
                log.info("history: %s readings kept, last #%d", "existing", last.seq)
            self._build_drying()
            self._build_sensor()
            self._build_delivery()
            self._start_notifier()
            self.server = SocketServer(self.paths.socket, self.dispatch, group=self._socket_group)
            self.server.start()
            self._start_metrics()
        except BaseException:
            self.stop()
            raise
        self._spawn("sampler", self._sampler_loop)
        self._spawn("control", self._control_loop)
        log.info(
            "filamentctl %s running: sensor %s, database %s, socket %s",
            __version__,
            self.sensor_kind,
            s["database.type"],
            self.paths.socket,
        )

    def _start_metrics(self) -> None:
        listen = str(self.settings.get("metrics.listen") or "")
        if not listen:
            return
        from filamentctl.service.metrics import start_metrics_server

        try:
            self.metrics = start_metrics_server(listen, self.status)
        except (ValueError, OSError) as exc:  # a busy port must not stop the box
            log.error("metrics endpoint not started on %s: %s", listen, exc)

    def _start_notifier(self) -> None:
        # Only with notify.urls set: without it, neither the notifier nor Apprise is loaded.
        if str(self.settings.get("notify.urls") or "").strip():
            from filamentctl.service.notify import start_notifier

            self.notifier = start_notifier(self)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # a dying thread must stop the service, relays OFF
                log.critical(
                    "thread %s failed: %r — stopping with relays OFF", name, exc, exc_info=True
                )
                self.fatal = exc
                self.safe_off(f"internal error in {name}")
                self._stopping.set()

        t = threading.Thread(target=guarded, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def request_stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopping.wait(timeout)

    def stop(self, delivery_timeout: float = 10.0) -> None:
        """Relays OFF, then stop threads, deliver what we can in ``delivery_timeout``, close."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.safe_off("service stopping")
        self._stopping.set()
        if self.server is not None:
            self.server.stop()
        if self.metrics is not None:
            self.metrics.stop()
        for t in self._threads:
            t.join(timeout=5.0)
        if self.history is not None:
            try:
                self.history.commit()
            except Exception:
                log.exception("could not commit the last readings")
        if self.delivery is not None:
            self.delivery.stop(delivery_timeout)
        if self.drying is not None:
            self.drying.close()  # the session itself stays: it resumes at the next start
        if self.control is not None:
            self.control.close()
        if self.notifier is not None:
            self.notifier.stop()
        if self.sensor is not None:
            try:
                self.sensor.close()
            except Exception:
                log.debug("sensor close failed", exc_info=True)
        if self.history is not None:
            self.history.close()
        self.bus.close()
        if self._state_lock is not None:
            self._state_lock.release()
        log.info("stopped")

    def safe_off(self, reason: str) -> None:
        """Both relays OFF; never raises (used on every way out)."""
        if self.control is not None:
            self.control.all_off(reason)

    # -- construction -----------------------------------------------------------------------
    def _build_control(self) -> None:
        from filamentctl.service.control import ControlLoop
        from filamentctl.store.latch import LatchStore
        from filamentctl.store.pins import PinRecord

        # Which pins this box drives, for `filamentctl relays-off` after a crash (before they are
        # claimed: a crash while claiming must still be covered).
        try:
            PinRecord.from_settings(self.settings).save(self.paths.state_dir)
        except OSError as exc:
            log.warning("could not record the relay pins for 'filamentctl relays-off': %s", exc)
        self.control = ControlLoop(
            self.settings,
            clock=self.clock,
            publish=self.bus.publish,
            simulate=self.simulate,
            pin_factory=self._pin_factory,
            latch_store=LatchStore(self.paths.state_dir),
        )

    def _build_drying(self) -> None:
        from filamentctl.service.drying import DryingManager

        self.drying = DryingManager(
            self.settings,
            self.paths.state_dir,
            self.control,
            self.history,
            publish=self.bus.publish,
            clock=self.clock,
            wall_ns=self.wall_ns,
        )
        self.drying.resume()  # after the control loop restored any latch: the latch wins

    def _drying_step(self, reading: Reading | None = None) -> None:
        """Feed the drying session a reading, or tick it; an internal error ends the session
        (heater back to its storage band) instead of the service."""
        if self.drying is None:
            return
        try:
            if reading is not None:
                self.drying.on_reading(reading)
            else:
                self.drying.tick()
        except Exception as exc:
            log.exception("drying: internal error")
            self.drying.abandon(f"internal error: {type(exc).__name__}")

    def _build_sensor(self) -> None:
        from filamentctl.core.validation import ReadingFilter, SensorHealth

        s = self.settings
        if self._sensor_override is not None:
            self.sensor = self._sensor_override
        else:
            from filamentctl.hw.factory import make_sensor

            if s["sensor.type"] == "simulated":
                from filamentctl.hw.simulated import SimulatedBox

                self.box = SimulatedBox(
                    clock=self.clock,
                    heater_on=self.control.heater_is_on,
                    fan_on=self.control.fan_is_on,
                )
            self.sensor = make_sensor(s, clock=self.clock, box=self.box)
        self.sensor_kind = str(getattr(self.sensor, "kind", s["sensor.type"]))
        self.filter = ReadingFilter.from_settings(s)
        self.health = SensorHealth(self.clock(), stale_after_s=float(s["sensor.stale_after"]))

    def _build_delivery(self) -> None:
        s = self.settings
        if self._sink_override is None and s["database.type"] == "none":
            self.delivery = None
            return
        from filamentctl.store.vault import VaultUnreachable

        try:
            sink = self._make_sink()
        except VaultUnreachable as exc:
            # The network (or Vault) may come up after us at boot: sample, control and keep the
            # history now, and start delivering once the secret can be read.
            self._delivery_setup_error = str(exc)
            log.error("delivery not started yet: %s; retrying every %.0f s", exc, SINK_RETRY_S)
            self._spawn("delivery-setup", self._retry_delivery_setup)
            return
        self._start_delivery(sink)

    def _make_sink(self) -> Any:
        if self._sink_override is not None:
            return self._sink_override
        from filamentctl.service.secrets import with_secrets
        from filamentctl.sinks.base import create_sink

        return create_sink(with_secrets(self.settings, "database."))

    def _start_delivery(self, sink: Any) -> None:
        from filamentctl.service.delivery import DeliveryWorker

        worker = DeliveryWorker(self.history, sink, self.settings, on_event=self.publish_storage)
        worker.start()
        self.delivery = worker
        self._delivery_setup_error = None

    def _retry_delivery_setup(self) -> None:
        from filamentctl.store.vault import VaultUnreachable

        while not self._stopping.wait(SINK_RETRY_S):
            try:
                sink = self._make_sink()
            except VaultUnreachable as exc:
                self._delivery_setup_error = str(exc)
                continue
            with self._lock:
                if self._stopping.is_set() or self.delivery is not None:
                    return
                self._start_delivery(sink)
            log.info("delivery to %s started", self.settings["database.type"])
            return

    # -- sampling ---------------------------------------------------------------------------
    def _read_interval(self, min_interval: float) -> float:
        # Read on every use: a live config reload may change it.
        return max(float(self.settings["sensor.read_interval"]), min_interval)

    def _sampler_loop(self) -> None:
        from filamentctl.core.schedule import next_slot

        min_interval = float(getattr(self.sensor, "min_interval_s", 0))
        last_commit = self.clock()
        last_retention = self.clock() - RETENTION_EVERY_S  # run once at start
        next_at = self.clock()
        previous: Sample | None = None
        while not self._stopping.is_set():
            read_at = self.clock()
            commit_every = float(self.settings["storage.commit_interval"])
            previous = self.sample_once(previous)
            now = self.clock()
            if now - last_commit >= commit_every or self._batch_due(now):
                self._commit()
                last_commit = now
            if self.delivery is None and now - last_retention >= RETENTION_EVERY_S:
                # With a database the delivery worker does this; without one, we do.
                last_retention = now
                self._apply_retention()
            next_at = next_slot(next_at, now, self._read_interval(min_interval))
            if self.awaiting_confirmation:
                # A first sample waits for a second that agrees: take that one soon, not a
                # whole (possibly long) read interval later.
                next_at = min(next_at, now + max(min_interval, CONFIRM_AFTER_S))
            self._sleep_until_next_read(next_at, read_at, min_interval)

    def _sleep_until_next_read(self, next_at: float, read_at: float, min_interval: float) -> None:
        """Sleep until the next slot, in slices that re-read the interval, never longer than one
        interval in all (a reload to a shorter interval, a clock jump: see core.schedule)."""
        from filamentctl.core.schedule import read_wait_s

        waited = 0.0
        while True:
            interval = self._read_interval(min_interval)
            wait = read_wait_s(next_at, read_at, interval, self.clock(), waited)
            if wait <= 0:
                return
            step = min(wait, SAMPLER_RECHECK_S)
            if self._stopping.wait(step):
                return
            waited += step

    def sample_once(self, previous: Sample | None) -> Sample | None:
        """Read, validate, store, publish and control on one sample; returns the last accepted."""
        from filamentctl.core.validation import Rejected, Unconfirmed
        from filamentctl.hw.sensor import SensorError

        try:
            raw = self.sensor.read()
        except SensorError as exc:
            self._sensor_failed(self.clock(), str(exc))
            return previous
        except Exception as exc:  # a driver bug is a sensor fault, not a service crash
            self._sensor_failed(self.clock(), f"{type(exc).__name__}: {exc}")
            return previous
        # The sample's moment: after the read returned (a DHT read with retries takes seconds).
        now = self.clock()
        time_ns = self.wall_ns()
        try:
            sample = self.filter.check(raw, previous)
        except Unconfirmed:
            self.awaiting_confirmation = True
            return previous  # a first sample waits for the next one to agree: not a fault
        except Rejected as exc:
            # Safety first, before any logging: the heater goes OFF at this very read.
            self.control.on_rejected(str(exc), now, too_hot=exc.too_hot)
            event = self.health.reject(now, str(exc), key=exc.reason)
            self._log_health(event, logging.WARNING)
            return previous
        self.awaiting_confirmation = False
        # Control first: it must never wait for the history (a long query holds its lock).
        self.control.on_reading(sample, now)
        with self._lock:
            seq = self.history.next_seq()
            reading = Reading(
                time_ns, seq, sample.temperature_c, sample.humidity, sample.pressure_hpa
            )
            self.history.add(reading)
            self.latest = reading
            self.latest_at = now
            self.readings_total += 1
        self._sensor_ok(now)
        self.bus.publish("reading", reading.to_dict())
        self._drying_step(reading)
        return sample

    def _sensor_failed(self, now: float, message: str) -> None:
        self._log_health(self.health.failed(now, message), logging.WARNING)

    def _sensor_ok(self, now: float) -> None:
        self._log_health(self.health.ok(now), logging.INFO)

    def _log_health(self, event: Any, level: int) -> None:
        """One log line per fault episode (start, change of cause, end), never one per read."""
        if event is None:
            return
        log.log(level, "sensor %s: %s", self.sensor_kind, event.message)
        self.bus.publish(
            "sensor",
            {
                "type": self.sensor_kind,
                "event": event.kind,
                "message": event.message,
                **self.health.snapshot(self.clock()),
            },
        )

    def _apply_retention(self) -> None:
        try:
            removed = self.history.apply_retention(self.wall_ns())
        except Exception as exc:
            log.error("history: retention failed (%s)", exc)
            return
        if removed:
            log.info("history: removed %d readings older than storage.retention_days", removed)

    def _batch_due(self, now: float) -> bool:
        """Whether the uncommitted readings make a delivery batch due now (size or flush
        interval): then they are committed at once rather than at the next commit interval,
        since delivery only ever sends committed readings."""
        delivery = self.delivery
        if delivery is None:
            return False
        pending = self.history.pending_count()
        if pending and self._pending_since is None:
            self._pending_since = self.latest_at if self.latest_at is not None else now
        return bool(delivery.wants_commit(pending, self._pending_since, now))

    def _commit(self) -> None:
        oldest_at = self._pending_since
        try:
            n = self.history.commit()
        except Exception as exc:  # disk full, I/O error: keep sampling and controlling
            log.error("history: cannot write readings (%s); keeping them in memory", exc)
            return
        if not self.history.pending_count():
            self._pending_since = None
        if n and self.delivery is not None:
            self.delivery.committed(self.history.last_committed_seq(), oldest_at)

    # -- control timer ----------------------------------------------------------------------
    def _control_loop(self) -> None:
        while not self._stopping.wait(CONTROL_TICK_S):
            self.control.tick(self.clock())
            self._drying_step()
            self.last_control_tick = self.clock()

    def control_healthy(self) -> bool:
        """For the systemd watchdog: the control timer ran recently and the relays respond."""
        recent = self.clock() - self.last_control_tick < 5 * CONTROL_TICK_S + 1.0
        return recent and (self.control is None or self.control.healthy())

    # -- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        reading: dict[str, Any] | None = None
        if self.latest is not None:
            reading = self.latest.to_dict()
            reading["age_s"] = round(now - (self.latest_at or now), 3)
        storage = self._storage_status()
        sensor = {"type": self.sensor_kind, **self.health.snapshot(now)}
        out: dict[str, Any] = {
            "version": __version__,
            "protocol": protocol.VERSION,
            "uptime_s": round(now - self.started_at, 3),
            "simulated": self.box is not None,
            "readings_total": self.readings_total,
            "reading": reading,
            "sensor": sensor,
            "storage": storage,
            "config": dict(self.config_origin),
        }
        out.update(self.control.status(now))
        out["notifications"] = self._notify_status()
        out["drying"] = self.drying.status() if self.drying is not None else None
        return out

    def _notify_status(self) -> dict[str, Any]:
        if self.notifier is None and not self.settings.get("notify.urls"):
            return {"enabled": False, "targets": 0}
        from filamentctl.service.notify import status_of

        return status_of(self)

    def _storage_status(self) -> dict[str, Any]:
        if self.delivery is not None:
            out = dict(self.delivery.status())
            out["history_error"] = self.history.last_commit_error
            out["history_recovered"] = self.history.recovered
            return out
        counters = self.history.counters()
        waiting = self._delivery_setup_error
        return {
            "history_error": self.history.last_commit_error,
            "history_recovered": self.history.recovered,
            "consecutive_failures": 0,
            "errors_total": 0,
            "alert": None,
            "last_success": None,
            "backend": self.settings["database.type"] if waiting else "none",
            "connected": False,
            "backlog": 0,
            "oldest_unsent_age_s": None,
            "written": counters.get("written", 0),
            "dropped": counters.get("dropped", 0),
            "rejected": counters.get("rejected", 0),
            "dead_letter": counters.get("dead_letter", 0),
            "last_error": waiting,
            "next_retry_s": None,
        }

    # -- socket operations: one handler per op ----------------------------------------------
    def dispatch(self, req: Request, conn: Connection) -> Any:
        handler = self._handlers().get(req.op)
        if handler is None:
            raise ProtocolError(
                protocol.UNKNOWN_OP,
                f"unknown operation {req.op!r}; known: " + ", ".join(sorted(self._handlers())),
            )
        allowed = protocol.OP_ARGS.get(req.op, ())
        unknown = sorted(str(name) for name in req.args if name not in allowed)
        if unknown:  # a typo must not be silently ignored (e.g. a misspelt for_s)
            raise ProtocolError(
                protocol.INVALID_ARGS,
                f"unknown argument(s) for {req.op}: {', '.join(unknown)[:200]}; "
                + (f"it takes: {', '.join(allowed)}" if allowed else "it takes none"),
            )
        return handler(req, conn)

    def _handlers(self) -> dict[str, Callable[[Request, Connection], Any]]:
        return {
            "ping": lambda req, conn: {"pong": True, "version": __version__},
            "status": lambda req, conn: self.status(),
            "read": self.op_read,
            "history": self.op_history,
            "subscribe": self.op_subscribe,
            "flush": self.op_flush,
            "sim.set": self.op_sim_set,
            "sim.clear": self.op_sim_clear,
            "heater.set": lambda req, conn: self.control.set_mode(
                "heater", req.args, self.clock(), peer=conn.peer
            ),
            "heater.reset": lambda req, conn: self.control.reset(
                "heater", self.clock(), peer=conn.peer
            ),
            "fan.set": lambda req, conn: self.control.set_mode(
                "fan", req.args, self.clock(), peer=conn.peer
            ),
            "fan.reset": lambda req, conn: self.control.reset("fan", self.clock(), peer=conn.peer),
            "deadletter.list": lambda req, conn: self.history.deadletter_list(),
            "deadletter.replay": self.op_deadletter_replay,
            "config.reload": self.op_config_reload,
            "deadletter.purge": self.op_deadletter_purge,
            "gateway.settings": self.op_gateway_settings,
            "notify.test": self.op_notify_test,
            "dry.start": lambda req, conn: self.drying.op_start(req.args, peer=conn.peer),
            "dry.stop": lambda req, conn: self.drying.op_stop(req.args, peer=conn.peer),
            "dry.status": lambda req, conn: self.drying.status(),
            "dry.profiles": lambda req, conn: self.drying.op_profiles(req.args),
            "dry.history": lambda req, conn: self.drying.op_history(req.args),
        }

    def op_notify_test(self, req: Request, conn: Connection) -> Any:
        from filamentctl.service.notify import handle_test

        return handle_test(self, req, conn)

    def op_config_reload(self, req: Request, conn: Connection) -> Any:
        from filamentctl.service.reload import handle_config_reload

        result = handle_config_reload(self, req, conn)
        changed = ", ".join(result.get("changed", ())) or "nothing"
        self.control.audit.record("config.reload", conn.peer, f"config reload: changed {changed}")
        return result

    def op_gateway_settings(self, req: Request, conn: Connection) -> Any:
        """A gateway's own settings (``web.*``, ``mqtt.*``), secrets resolved.

        Gateways hold no configuration key: they ask the service. Only root or the service's own
        user may ask (a gateway's unit runs as that user); other socket-group members get
        ``permission_denied``, since the answer carries the gateway's secrets.
        """
        import os

        name = req.args.get("gateway")
        if name not in GATEWAYS:
            raise ProtocolError(
                protocol.INVALID_ARGS, f"'gateway' must be one of: {', '.join(GATEWAYS)}"
            )
        unknown = set(req.args) - {"gateway"}
        if unknown:
            raise ProtocolError(protocol.INVALID_ARGS, f"unknown argument(s): {sorted(unknown)}")
        if conn.peer.uid not in (0, os.getuid()):
            log.warning("gateway.settings refused to %s (not root or the service user)", conn.peer)
            raise ProtocolError(
                protocol.PERMISSION,
                "only root or the service's own user may read a gateway's settings; "
                "run the gateway as the service user (its systemd unit does)",
            )
        from filamentctl.service.secrets import with_secrets

        prefix = f"{name}."
        try:
            resolved = with_secrets(self.settings, prefix)
        except Exception as exc:  # Vault down: say so, never the value
            raise ProtocolError(
                protocol.REFUSED, f"cannot read a secret of the {name} gateway: {exc}"
            ) from None
        out = {k: v for k, v in resolved.items() if k.startswith(prefix)}
        log.info("gateway.settings: %s settings sent to %s", name, conn.peer)
        return {"box": self.paths.box, "version": __version__, "settings": out}

    def op_deadletter_replay(self, req: Request, conn: Connection) -> Any:
        ids = _ids_arg(req.args)
        if self.delivery is None:
            raise ProtocolError(protocol.REFUSED, "no database is configured (database.type none)")
        return self.delivery.replay_dead_letters(ids)

    def op_deadletter_purge(self, req: Request, conn: Connection) -> Any:
        ids = _ids_arg(req.args)
        purged = self.history.deadletter_purge(ids)
        log.info("dead-letter: purged %d entries (peer %s)", purged, conn.peer)
        return {"purged": purged}

    def op_read(self, req: Request, conn: Connection) -> Any:
        if self.latest is None:
            raise ProtocolError(
                protocol.REFUSED,
                "no reading yet: the sensor has not produced a "
                "valid sample (see 'filamentctl status')",
            )
        out = self.latest.to_dict()
        out["age_s"] = round(self.clock() - (self.latest_at or self.clock()), 3)
        return out

    def op_history(self, req: Request, conn: Connection) -> Any:
        """Readings (or bucket averages) as one reply sent in pieces: read in chunks from a
        read-only connection, so neither the sampler's lock nor the service's memory is held
        by a long answer (the server runs at most a few of these at once)."""
        import json

        from filamentctl.service.server import Streamed

        since_s = _number_arg(req.args, "since_s", 86400.0, minimum=0.0, maximum=MAX_SINCE_S)
        limit = int(_number_arg(req.args, "limit", HISTORY_LIMIT, 1, maximum=HISTORY_LIMIT))
        since_ns = self.wall_ns() - int(since_s * 1e9)
        if "step_s" in req.args:
            step_s = _number_arg(req.args, "step_s", 60.0, minimum=1.0, maximum=MAX_SINCE_S)
            chunks = self.history.iter_downsample(since_ns, int(step_s * 1e9), limit)
        else:
            chunks = self.history.iter_query(since_ns, limit)

        def encoded() -> Iterator[bytes]:
            yield b"["
            first = True
            for chunk in chunks:
                if not chunk:
                    continue
                rows = [r.to_dict() for r in chunk]
                # The chunk's array without its brackets: the pieces make one JSON array.
                text = json.dumps(rows, separators=(",", ":"), default=str, allow_nan=False)
                yield (text[1:-1] if first else "," + text[1:-1]).encode()
                first = False
            yield b"]"

        return Streamed(encoded(), deadline_s=HISTORY_SEND_S)

    def op_subscribe(self, req: Request, conn: Connection) -> Any:
        topics = req.args.get("topics")
        if topics is not None and (
            not isinstance(topics, list) or not all(isinstance(t, str) for t in topics)
        ):
            raise ProtocolError(protocol.INVALID_ARGS, "'topics' must be a list of strings")
        unknown = sorted(set(topics or ()) - set(protocol.TOPICS))
        if unknown:
            raise ProtocolError(
                protocol.INVALID_ARGS,
                f"unknown topic(s) {unknown}; known: {', '.join(protocol.TOPICS)}",
            )
        sub = self.bus.subscribe(frozenset(topics) if topics else None)
        # A subscriber that stops reading is dropped after this long, not waited on forever.
        conn.sock.settimeout(SUBSCRIBER_SEND_TIMEOUT_S)
        try:
            conn.send_event(req.id, "status", self.status())
            while not conn.closed.is_set() and not self._stopping.is_set():
                item = sub.get(timeout=1.0)
                if item is None:
                    if _peer_gone(conn):  # quiet topics: notice a client that went away
                        break
                    continue
                if not conn.send_event(req.id, item[0], item[1]):
                    break
        finally:
            self.bus.unsubscribe(sub)
        return {"ended": True}

    def publish_storage(self, name: str, data: Any) -> None:
        """Delivery events on the bus: ``alert`` as is, the rest as ``storage.<name>``."""
        self.bus.publish(name if name == "alert" else f"storage.{name}", data)

    def op_flush(self, req: Request, conn: Connection) -> Any:
        """Deliver the backlog now, for at most ``timeout`` s (≤ MAX_FLUSH_TIMEOUT_S); the flush
        ends early when its client hangs up, so it never holds a slot for nobody."""
        timeout = _number_arg(
            req.args, "timeout", 60.0, minimum=0.1, maximum=protocol.MAX_FLUSH_TIMEOUT_S
        )
        self._commit()
        if self.delivery is None:
            return {"delivered": 0, "remaining": 0, "ok": True, "error": None, "backend": "none"}

        def progress(delivered: int, total: int) -> None:
            conn.send_event(req.id, "flush.progress", {"delivered": delivered, "total": total})

        return self.delivery.flush(timeout, progress, cancelled=conn.gone)

    def _require_sim(self) -> Any:
        if self.box is None:
            raise ProtocolError(
                protocol.NOT_SIMULATED,
                "sim works only against a simulated service (filamentctl run --simulate)",
            )
        return self.box

    def op_sim_set(self, req: Request, conn: Connection) -> Any:
        box = self._require_sim()
        args = req.args
        unknown = set(args) - {"temperature", "humidity", "fault"}
        if unknown:
            raise ProtocolError(
                protocol.INVALID_ARGS, f"unknown sim.set argument(s): {sorted(unknown)}"
            )
        t = args.get("temperature")
        h = args.get("humidity")
        fault = args.get("fault")
        for name, v in (("temperature", t), ("humidity", h)):
            if v is not None and (
                not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
            ):
                raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be a finite number")
        if fault is not None and fault not in ("stale", "error", "nan", "spike"):
            raise ProtocolError(protocol.INVALID_ARGS, "'fault' must be stale, error, nan or spike")
        box.set(temperature_c=t, humidity=h, fault=fault)
        # A pinned value is a deliberate change, not an implausible jump. A fault is not: the
        # filter must meet the injected spikes exactly as it would a real sensor's.
        if t is not None or h is not None:
            self.filter.trust_next()
        log.info("sim: set %s (peer %s)", dict(args), conn.peer)
        return box.state()

    def op_sim_clear(self, req: Request, conn: Connection) -> Any:
        box = self._require_sim()
        box.clear()
        # Back from pinned values to the model is as deliberate as sim.set: not an implausible
        # jump (readings were rejected for seconds after `sim clear`).
        self.filter.trust_next()
        log.info("sim: cleared")
        return box.state()


def _peer_gone(conn: Connection) -> bool:
    """True when the client closed its end (see Connection.gone), consuming nothing."""
    return conn.gone()


def _ids_arg(args: Mapping[str, Any]) -> list[int] | None:
    ids = args.get("ids")
    if ids is None:
        return None
    if (
        not isinstance(ids, list)
        or len(ids) > MAX_IDS
        or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= protocol.MAX_ID
            for i in ids
        )
    ):
        raise ProtocolError(
            protocol.INVALID_ARGS,
            f"'ids' must be a list of at most {MAX_IDS} dead-letter ids "
            f"(integers from 1 to {protocol.MAX_ID})",
        )
    return ids


def _number_arg(
    args: Mapping[str, Any],
    name: str,
    default: float,
    minimum: float,
    maximum: float = float("inf"),
) -> float:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be a number")
    if value < minimum:
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be at least {minimum:g}")
    if value > maximum:
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be at most {maximum:g}")
    return float(value)
