"""The service: the composition root that builds one box's parts and runs them.

It builds, in order, the control loop (relays OFF, a stored latch restored), the history, the
drying session, the sensor and its :class:`~filamentctl.service.sampler.Sampler`, the delivery
worker, the notifier, the socket server (its operations are in ``service.handlers``) and the
metrics endpoint; then it starts the threads: ``sampler`` (reads, stores, controls on each
reading), ``control`` (re-evaluates control on a timer so a dead sensor still turns the heater
OFF), ``delivery`` (drains the backlog) and ``socket`` (+ one thread per client). Every stop
path drives both relays OFF first. The parts use the service through
:class:`~filamentctl.service.api.ServiceAPI`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from filamentctl import __version__, protocol
from filamentctl.core.reading import Reading, Sample
from filamentctl.core.schema import number
from filamentctl.paths import Paths
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.bus import EventBus
from filamentctl.service.delivery_setup import DeliveryHolder
from filamentctl.service.handlers import handler_table
from filamentctl.service.server import Connection, SocketServer

if TYPE_CHECKING:
    from filamentctl.core.validation import ReadingFilter, SensorHealth
    from filamentctl.hw.sensor import Sensor
    from filamentctl.hw.simulated import SimulatedBox
    from filamentctl.service.control import ControlLoop
    from filamentctl.service.delivery import DeliveryWorker
    from filamentctl.service.drying import DryingManager
    from filamentctl.service.lockfile import StateLock
    from filamentctl.service.metrics import MetricsServer
    from filamentctl.service.notify import Notifier
    from filamentctl.service.sampler import Sampler
    from filamentctl.sinks.base import Sink
    from filamentctl.store.history import History

log = logging.getLogger("filamentctl.service")

CONTROL_TICK_S = 0.25


class Service:
    """One box. ``start()`` brings everything up; ``stop()`` is safe from any state, twice.

    ``sink``, ``sensor`` and ``pin_factory`` replace the configured ones (tests, embedding: a
    gpiozero pin factory whose pins the caller reads).
    """

    def __init__(
        self,
        settings: Mapping[str, object],
        paths: Paths,
        *,
        simulate: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        sink: Sink | None = None,
        sensor: Sensor | None = None,
        pin_factory: object | None = None,
        socket_group: str | None = None,
    ) -> None:
        self.settings = dict(settings)
        # Where the configuration and its key came from, for status (never the key itself).
        self.config_origin: dict[str, Any] = {
            "source": getattr(settings, "source", "defaults"),
            **getattr(settings, "key_info", {"key_source": None}),
        }
        # CLI flags outrank stored and env values, also across a live config reload.
        self.overrides: dict[str, object] = {"sensor.type": "simulated"} if simulate else {}
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
        self.last_control_tick = clock()
        self.fatal: BaseException | None = None
        self.handlers = handler_table(self)
        # Built in start(); control, history and the sampler are read through properties that
        # say so when used before it.
        self._control: ControlLoop | None = None
        self._history: History | None = None
        self._sampler: Sampler | None = None
        self._deliveries: DeliveryHolder | None = None
        self.box: SimulatedBox | None = None
        self.server: SocketServer | None = None
        self.metrics: MetricsServer | None = None
        self.notifier: Notifier | None = None  # while notify.urls is set
        self.drying: DryingManager | None = None
        self._state_lock: StateLock | None = None

    # -- the parts ---------------------------------------------------------------------------
    @property
    def control(self) -> ControlLoop:
        return _built(self._control, "control loop")

    @property
    def history(self) -> History:
        return _built(self._history, "history")

    @property
    def sampler(self) -> Sampler:
        return _built(self._sampler, "sampler")

    @property
    def delivery(self) -> DeliveryWorker | None:
        """The running delivery worker, None without a database (or before it could start)."""
        return self._deliveries.worker if self._deliveries is not None else None

    def swap_delivery(self, settings: Mapping[str, object]) -> None:
        """Replace the delivery worker and sink for ``settings`` (a live reload); see
        :meth:`DeliveryHolder.swap`."""
        s = self.settings
        timeout = (number(s, "database.timeout") if "database.timeout" in s else 10.0) + 5.0
        _built(self._deliveries, "delivery").swap(settings, timeout)

    def publish_storage(self, name: str, data: Any) -> None:
        """Delivery events on the bus: ``alert`` as is, the rest as ``storage.<name>``."""
        self.bus.publish(name if name == "alert" else f"storage.{name}", data)

    # What tests and tools read of the sampler, by their old names.
    @property
    def latest(self) -> Reading | None:
        return self.sampler.latest

    @property
    def readings_total(self) -> int:
        return self.sampler.readings_total

    @property
    def filter(self) -> ReadingFilter:
        return self.sampler.filter

    @property
    def health(self) -> SensorHealth:
        return self.sampler.health

    @property
    def awaiting_confirmation(self) -> bool:
        return self.sampler.awaiting_confirmation

    def sample_once(self, previous: Sample | None) -> Sample | None:
        """One sample now (tests drive the sampler with it); see :meth:`Sampler.sample_once`."""
        return self.sampler.sample_once(previous)

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
            self._history = history
            last = history.latest()
            if last is not None:
                log.info("history: readings kept, last #%d", last.seq)
            self._build_drying()
            self._build_sampler()
            self._deliveries = DeliveryHolder(
                history,
                sink=self._sink_override,
                on_event=self.publish_storage,
                stopping=self._stopping,
            )
            self._deliveries.start(self.settings, self._spawn)
            self._start_notifier()
            self.server = SocketServer(self.paths.socket, self.dispatch, group=self._socket_group)
            self.server.start()
            self._start_metrics()
        except BaseException:
            self.stop()
            raise
        self._spawn("sampler", self.sampler.run)
        self._spawn("control", self._control_loop)
        log.info(
            "filamentctl %s running: sensor %s, database %s, socket %s",
            __version__,
            self.sampler.kind,
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
            if t.is_alive():  # loud, never silent: the process ends anyway, relays are OFF
                log.error("thread %s did not stop within 5 s", t.name)
        if self._history is not None:
            try:
                self._history.commit()
            except Exception:
                log.exception("could not commit the last readings")
        if self._deliveries is not None:
            self._deliveries.stop(delivery_timeout)
        if self.drying is not None:
            self.drying.close()  # the session itself stays: it resumes at the next start
        if self._control is not None:
            self._control.close()
        if self.notifier is not None:
            self.notifier.stop()
        if self._sampler is not None:
            try:
                self._sampler.sensor.close()
            except Exception:
                log.debug("sensor close failed", exc_info=True)
        if self._history is not None:
            self._history.close()
        self.bus.close()
        if self._state_lock is not None:
            self._state_lock.release()
        log.info("stopped")

    def safe_off(self, reason: str) -> None:
        """Both relays OFF; never raises (used on every way out)."""
        if self._control is not None:
            self._control.all_off(reason)

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
        self._control = ControlLoop(
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

    def _build_sampler(self) -> None:
        from filamentctl.service.sampler import Sampler

        s = self.settings
        sensor = self._sensor_override
        if sensor is None:
            from filamentctl.hw.factory import make_sensor

            if s["sensor.type"] == "simulated":
                from filamentctl.hw.simulated import SimulatedBox

                self.box = SimulatedBox(
                    clock=self.clock,
                    heater_on=self.control.heater_is_on,
                    fan_on=self.control.fan_is_on,
                )
            sensor = make_sensor(s, clock=self.clock, box=self.box)
        self._sampler = Sampler(
            self.settings,
            sensor,
            self.control,
            self.history,
            self.bus,
            clock=self.clock,
            wall_ns=self.wall_ns,
            stopping=self._stopping,
            delivery=lambda: self.delivery,
            on_reading=self._drying_step,
        )

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
        sampler = self.sampler
        reading = sampler.reading_status(now)
        storage = _built(self._deliveries, "delivery").status(str(self.settings["database.type"]))
        sensor = {"type": sampler.kind, **sampler.health.snapshot(now)}
        out: dict[str, Any] = {
            "version": __version__,
            "protocol": protocol.VERSION,
            "uptime_s": round(now - self.started_at, 3),
            "simulated": self.box is not None,
            "readings_total": sampler.readings_total,
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

    # -- the socket ---------------------------------------------------------------------------
    def dispatch(self, req: Request, conn: Connection) -> Any:
        """Run one request's handler (``service.handlers``); unknown ops and arguments are
        refused with ``unknown_op`` / ``invalid_args``."""
        handler = self.handlers.get(req.op)
        if handler is None:
            raise ProtocolError(
                protocol.UNKNOWN_OP,
                f"unknown operation {req.op!r}; known: " + ", ".join(sorted(self.handlers)),
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


T = TypeVar("T")


def _built(part: T | None, name: str) -> T:
    if part is None:
        raise RuntimeError(f"the service's {name} is built by start()")
    return part
