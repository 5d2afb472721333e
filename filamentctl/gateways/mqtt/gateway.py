"""The MQTT gateway process: the service's socket on one side, an MQTT broker on the other.

Threads: the service link (:class:`~filamentctl.link.ServiceLink`: events, reconnects with
backoff), paho's network loop (``loop_start``: reconnects to the broker with backoff), and the
caller's thread, which runs :meth:`MqttGateway.run`: every decision and every publish happens
there, one job at a time, so the two sides never race. The callbacks only queue jobs.

Availability (``BASE/availability``, retained) is ``online`` only while both the broker and the
service are reachable: the broker publishes the last will ``offline`` when the gateway dies, the
gateway publishes ``offline`` itself when the service goes away and when it stops.

Commands from Home Assistant become the same socket requests as ``filamentctl heater on``
(``heater.set {"mode": "on"}``), so every safety rule applies; a refusal is logged and the
``control`` message is published again, which puts Home Assistant's select back on the real
mode. Retained command messages are ignored: a stale retained ``on`` must not switch a heater on
at the next reconnect.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filamentctl import protocol
from filamentctl.client import Client, ServiceError
from filamentctl.errors import ConfigError, PermissionDenied, UserError
from filamentctl.gateways.mqtt import discovery
from filamentctl.gateways.mqtt.discovery import OFFLINE, ONLINE, Topics
from filamentctl.gateways.mqtt.settings import MqttSettings, from_reply
from filamentctl.link import ServiceLink

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

log = logging.getLogger("filamentctl.mqtt")

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
# Without readings (a stale sensor) the state is re-sent this often, so "reading age" grows in
# Home Assistant instead of freezing at its last value.
IDLE_REFRESH_S = 30.0
SETTINGS_RETRY_S = 30.0  # after the service could not hand out the settings (e.g. Vault down)
PUBLISH_WAIT_S = 5.0
PROBE_TIMEOUT_S = 5.0
KEEPALIVE_S = 60
EVENT_TOPICS = ["reading", "relay", "sensor"]
_AUTH_REASONS = ("not authorized", "bad user name or password")


@dataclass(frozen=True, slots=True)
class _Job:
    kind: str
    data: Any = None
    client: Any = None  # the paho client a broker job came from (older clients' jobs are stale)


class MqttGateway:
    """One box's gateway. :meth:`run` blocks until :meth:`stop` or a fatal error."""

    def __init__(
        self,
        *,
        socket_path: Path | None = None,
        hostname: str | None = None,
        reconnect_min_s: float = RECONNECT_MIN_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
        idle_refresh_s: float = IDLE_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hostname = hostname or socket.gethostname()
        self._min_s = reconnect_min_s
        self._max_s = reconnect_max_s
        self._idle_s = idle_refresh_s
        self._clock = clock
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._refresh_queued = threading.Event()
        self._stopping = threading.Event()
        self._link = ServiceLink(
            self._on_event,
            self._on_service_lost,
            socket_path=socket_path,
            topics=EVENT_TOPICS,
            reconnect_base_s=reconnect_min_s,
            reconnect_max_s=min(reconnect_max_s, 30.0),
            name="mqtt-service-link",
        )
        self.settings: MqttSettings | None = None
        self._client: mqtt.Client | None = None
        self._topics: Topics | None = None
        self._service_up = False
        self._mqtt_up = False
        self._ever_connected = False
        self._published: dict[str, str] = {}  # topic -> last payload (publish on change)
        self._announced: tuple[Any, ...] | None = None
        self._state_seq: Any = None
        self._state_at = 0.0
        self._problem: str | None = None  # the broker problem last logged (once per episode)
        self._service_note: str | None = None  # the service problem last logged
        self._settings_retry_at: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until :meth:`stop`. Raises ConfigError (exit 2) for invalid or disabled
        settings and PermissionDenied (exit 4) when the service will not hand them out; both
        after publishing ``offline`` and closing the connections."""
        self._link.start()
        try:
            while not self._stopping.is_set():
                try:
                    job = self._jobs.get(timeout=self._wait_s())
                except queue.Empty:
                    job = _Job("tick")
                self._handle(job)
        finally:
            self._close()

    def stop(self) -> None:
        """End :meth:`run`: safe from a signal handler and from any thread."""
        self._stopping.set()
        self._jobs.put(_Job("stop"))

    def reload(self) -> None:
        """Fetch the settings from the service again (SIGHUP); reconnects if they changed."""
        self._jobs.put(_Job("reload"))

    def _wait_s(self) -> float:
        if self._settings_retry_at is not None:
            return max(0.05, min(self._idle_s, self._settings_retry_at - self._clock()))
        return self._idle_s

    def _close(self) -> None:
        self._link.stop()
        self._drop_client()

    # -- callbacks (other threads): queue a job, nothing else ---------------------------------
    def _on_event(self, name: str, data: Any) -> None:
        if name == "status":
            self._jobs.put(_Job("service_up"))
        elif not self._refresh_queued.is_set():  # a burst of readings: one refresh is enough
            self._refresh_queued.set()
            self._jobs.put(_Job("refresh"))

    def _on_service_lost(self, reason: str, retry_in_s: float, attempt: int) -> None:
        self._jobs.put(_Job("service_down", (reason, retry_in_s)))

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        failed = bool(getattr(reason, "is_failure", False))
        self._jobs.put(_Job("mqtt_refused" if failed else "mqtt_up", str(reason), client))

    def _on_connect_fail(self, client: mqtt.Client, _userdata: Any) -> None:
        self._jobs.put(_Job("mqtt_unreachable", None, client))

    def _on_disconnect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._jobs.put(_Job("mqtt_down", str(reason), client))

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: Any) -> None:
        self._jobs.put(_Job("command", (message.topic, bytes(message.payload), message.retain)))

    # -- jobs (the run thread) ----------------------------------------------------------------
    def _handle(self, job: _Job) -> None:
        if job.client is not None and job.client is not self._client:
            return  # from a client replaced after a settings change
        kind = job.kind
        if kind == "service_up":
            self._service_connected()
        elif kind == "service_down":
            self._service_lost(*job.data)
        elif kind == "reload":
            if self._service_up:
                self._service_connected(reload=True)
            else:
                log.info("reload: the service is away; its settings are fetched when it is back")
        elif kind == "refresh":
            self._refresh_queued.clear()
            self._sync()
        elif kind == "command":
            self._command(*job.data)
        elif kind == "mqtt_up":
            self._broker_connected()
        elif kind == "mqtt_down":
            self._broker_lost(job.data)
        elif kind == "mqtt_refused":
            self._broker_refused(job.data)
        elif kind == "mqtt_unreachable":
            self._broker_unreachable()
        elif kind == "tick":
            if self._settings_retry_at is not None and self._clock() >= self._settings_retry_at:
                self._service_connected()
            else:
                self._sync()

    # -- the service side ---------------------------------------------------------------------
    def _service_connected(self, reload: bool = False) -> None:
        """The link is (back) up: fetch the settings, (re)connect the broker if they changed."""
        self._settings_retry_at = None
        try:
            reply = self._link.call("gateway.settings", {"gateway": "mqtt"})
        except ServiceError as exc:
            if exc.code == protocol.PERMISSION:
                raise PermissionDenied(f"cannot run the MQTT gateway: {exc}") from None
            log.error(
                "cannot get the MQTT settings from the service: %s; trying again in %.0f s",
                exc,
                SETTINGS_RETRY_S,
            )
            self._settings_retry_at = self._clock() + SETTINGS_RETRY_S
            return
        except UserError as exc:  # gone again: the link reconnects and calls us back
            log.debug("gateway.settings failed: %s", exc)
            return
        settings = from_reply(reply, self._hostname)  # ConfigError: fatal, exit 2
        if not settings.enabled:
            raise ConfigError(
                "the MQTT gateway is disabled (mqtt.enabled is false); enable it with "
                "'filamentctl config set mqtt.enabled true'"
            )
        self._service_up = True
        if not reload or self._service_note is not None:
            log.info(
                "connected to the service (box %s, filamentctl %s)",
                settings.box,
                settings.version or "?",
            )
        self._service_note = None
        if settings != self.settings:
            if reload:
                log.info("the MQTT settings changed: reconnecting to the broker")
            self._connect_broker(settings)
        self._sync(force_control=True)

    def _service_lost(self, reason: str, retry_in_s: float) -> None:
        was_up = self._service_up
        self._service_up = False
        if was_up:
            log.warning(
                "lost the service (%s); the box shows as unavailable in Home Assistant until "
                "it is back; reconnecting",
                reason,
            )
            self._service_note = reason
        elif self._service_note is None:
            log.warning("waiting for the service: %s; retrying with backoff", reason)
            self._service_note = reason
        else:
            log.debug("service still unreachable (%s); next try in %.1f s", reason, retry_in_s)
        if self._mqtt_up and self._topics is not None:
            self._publish(self._topics.availability, OFFLINE)

    def _call_status(self) -> dict[str, Any] | None:
        try:
            status = self._link.call("status")
        except UserError as exc:  # the link notices a lost service and reports it
            log.debug("status failed: %s", exc)
            return None
        return status if isinstance(status, dict) else None

    # -- publishing ---------------------------------------------------------------------------
    def _sync(self, *, force_control: bool = False, force_state: bool = False) -> None:
        """Bring the broker up to date with the service: discovery, availability, state."""
        if not (self._service_up and self._mqtt_up) or self.settings is None:
            return
        status = self._call_status()
        if status is None:
            return
        topics = self._topics
        assert topics is not None
        self._announce(status)
        self._publish(topics.availability, ONLINE)
        state = discovery.state_payload(status)
        now = self._clock()
        if state is not None and (
            force_state or state["seq"] != self._state_seq or now - self._state_at >= self._idle_s
        ):
            self._publish(topics.state, _json(state), force=True)
            self._state_seq, self._state_at = state["seq"], now
        self._publish(topics.control, _json(discovery.control_payload(status)), force=force_control)

    def _announce(self, status: dict[str, Any]) -> None:
        """Discovery configs, again whenever what they describe changed."""
        settings = self.settings
        assert settings is not None
        pressure = discovery.has_pressure(status)
        simulated = bool(status.get("simulated"))
        key = (settings, pressure, simulated)
        if key == self._announced:
            return
        for topic, payload in discovery.discovery_messages(
            settings, has_pressure=pressure, simulated=simulated
        ):
            self._publish(topic, payload, force=True)
        if self._announced is None:
            log.info(
                "published Home Assistant discovery for device %s under %s/",
                settings.node_id,
                settings.discovery_prefix,
            )
        self._announced = key

    def _publish(self, topic: str, payload: str, *, force: bool = False) -> None:
        """A retained publish; skipped when this exact payload is already the retained one."""
        client, settings = self._client, self.settings
        if client is None or settings is None:
            return
        if not force and self._published.get(topic) == payload:
            return
        client.publish(topic, payload, qos=settings.qos, retain=True)
        self._published[topic] = payload

    # -- commands from Home Assistant ---------------------------------------------------------
    def _command(self, topic: str, payload: bytes, retained: bool) -> None:
        if self._topics is None:
            return
        if retained:
            # Never act on a retained command: it would be replayed at every reconnect.
            log.warning("ignored a retained message on %s: commands must not be retained", topic)
            return
        if not payload.strip():  # what clearing a retained message looks like: not a command
            log.debug("ignored an empty message on %s", topic)
            return
        parsed = discovery.parse_command(self._topics, topic, payload)
        if isinstance(parsed, str):
            log.warning("ignored a command from Home Assistant: %s", parsed)
        else:
            op, args = parsed
            what = op.replace(".set", "").replace(".", " ") + (
                f" {args['mode']}" if "mode" in args else ""
            )
            try:
                self._link.call(op, args)
            except ServiceError as exc:
                log.warning("Home Assistant asked for %s; the service refused: %s", what, exc)
            except UserError as exc:
                log.warning("Home Assistant asked for %s; no service: %s", what, exc)
            else:
                log.info("Home Assistant: %s", what)
        # The select follows the real state, also (above all) after a refusal.
        self._sync(force_control=True)

    # -- the broker side ----------------------------------------------------------------------
    def _connect_broker(self, settings: MqttSettings) -> None:
        """A new paho client for ``settings`` (the old one says offline and goes)."""
        self._drop_client()
        client = new_client(settings, will=True)
        # paho doubles the delay after each failed attempt, from min to max (whole seconds).
        client.reconnect_delay_set(max(1, round(self._min_s)), max(1, round(self._max_s)))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client, self.settings, self._topics = client, settings, Topics.of(settings)
        self._mqtt_up, self._problem, self._announced = False, None, None
        self._published.clear()
        log.info(
            "connecting to the MQTT broker at %s as %s (client id %s)",
            settings.where,
            settings.username or "anonymous",
            settings.client_id,
        )
        # connect_async + loop_start: paho's thread makes the first attempt too, and retries
        # it with the same backoff as every later reconnect.
        client.connect_async(settings.host, settings.port, keepalive=KEEPALIVE_S)
        client.loop_start()

    def _drop_client(self) -> None:
        client, topics, settings = self._client, self._topics, self.settings
        self._client = None
        if client is None:
            return
        try:
            if self._mqtt_up and topics is not None and settings is not None:
                info = client.publish(topics.availability, OFFLINE, qos=settings.qos, retain=True)
                info.wait_for_publish(PUBLISH_WAIT_S)
            client.disconnect()
        except (RuntimeError, ValueError, OSError) as exc:
            log.debug("closing the MQTT connection: %s", exc)
        finally:
            client.loop_stop()
            self._mqtt_up = False

    def _broker_connected(self) -> None:
        client, topics, settings = self._client, self._topics, self.settings
        assert client is not None and topics is not None and settings is not None
        self._mqtt_up = True
        if self._problem is not None or not self._ever_connected:
            log.info("connected to the MQTT broker at %s", settings.where)
        self._ever_connected, self._problem = True, None
        # The broker may have lost every retained message (a restart without persistence):
        # publish everything again.
        self._published.clear()
        self._announced = None
        client.subscribe([(topic, settings.qos) for topic in topics.commands])
        if self._service_up:
            self._sync(force_control=True, force_state=True)
        else:
            self._publish(topics.availability, OFFLINE)

    def _broker_lost(self, reason: str) -> None:
        if not self._mqtt_up:
            return  # a refused or failed attempt: already reported
        self._mqtt_up = False
        settings = self.settings
        where = settings.where if settings else "?"
        self._problem = f"lost the MQTT broker at {where} ({reason})"
        log.warning("%s; reconnecting with backoff", self._problem)

    def _broker_refused(self, reason: str) -> None:
        settings = self.settings
        assert settings is not None
        text = f"the MQTT broker at {settings.where} refused the connection: {reason}"
        if reason.lower() in _AUTH_REASONS:
            text += " (check mqtt.username and mqtt.password)"
        self._report(text)

    def _broker_unreachable(self) -> None:
        settings = self.settings
        assert settings is not None
        if self._problem is not None and self._problem.startswith("cannot connect"):
            log.debug("still cannot connect to the MQTT broker at %s", settings.where)
            return
        self._report(f"cannot connect to the MQTT broker at {settings.where}: {probe(settings)}")

    def _report(self, text: str) -> None:
        """A broker problem: one line per episode (a new cause is a new episode)."""
        if text == self._problem:
            log.debug("%s (again)", text)
            return
        self._problem = text
        log.error("%s; retrying with backoff (at most %.0f s apart)", text, self._max_s)


def _json(doc: Any) -> str:
    import json

    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def new_client(settings: MqttSettings, *, will: bool, suffix: str = "") -> mqtt.Client:
    """A configured, unconnected paho client. ConfigError when the TLS CA file is unusable."""
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError:
        raise UserError(
            "paho-mqtt is not installed; install it (pip install 'paho-mqtt>=2') to use the "
            "MQTT gateway"
        ) from None
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=settings.client_id + suffix,
        clean_session=True,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    elif settings.password:
        log.warning("mqtt.password is set but mqtt.username is empty: connecting anonymously")
    if settings.tls:
        try:
            client.tls_set(ca_certs=settings.tls_ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot use mqtt.tls_ca_file {settings.tls_ca_file!r}: {exc}; give the path of "
                "a readable PEM file with the CA that signed the broker's certificate"
            ) from None
    elif settings.tls_ca_file:
        log.warning(
            "mqtt.tls_ca_file is ignored: mqtt.url %s is not mqtts:// (plain MQTT)", settings.url
        )
    if will:
        topics = Topics.of(settings)
        client.will_set(topics.availability, OFFLINE, qos=settings.qos, retain=True)
    return client


def probe(settings: MqttSettings, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Why a connection to the broker fails, in words (paho does not say): a plain TCP connect
    and, for mqtts://, a TLS handshake with the same trust as the gateway's."""
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout) as sock:
            if settings.tls:
                context = ssl.create_default_context(cafile=settings.tls_ca_file or None)
                with context.wrap_socket(sock, server_hostname=settings.host):
                    pass
    except ssl.SSLCertVerificationError as exc:
        return f"TLS: {exc.verify_message} (check mqtt.tls_ca_file and the broker's certificate)"
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc.reason or exc}"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return "the connection failed (the broker closed it)"


def remove_discovery(
    socket_path: Path | None, hostname: str | None = None, timeout_s: float = 10.0
) -> list[str]:
    """Clear the box's retained messages (discovery configs, state, control, availability).

    Asks the service for the settings (ServiceNotRunning: exit 3; PermissionDenied: exit 4) and
    raises UserError when the broker cannot be reached or refuses. Returns the topics cleared.
    """
    with Client.connect(socket_path, timeout=timeout_s) as service:
        try:
            reply = service.call("gateway.settings", {"gateway": "mqtt"})
        except ServiceError as exc:
            if exc.code == protocol.PERMISSION:
                raise PermissionDenied(f"cannot read the MQTT settings: {exc}") from None
            raise
    settings = from_reply(reply, hostname or socket.gethostname())
    topics = Topics.of(settings)
    cleared = [*discovery.all_config_topics(settings), topics.state, topics.control]
    cleared.append(topics.availability)
    client = new_client(settings, will=False, suffix="-cleanup")
    answered = threading.Event()
    refusal: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            refusal.append(str(reason))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=KEEPALIVE_S)
    except OSError:
        raise UserError(
            f"cannot connect to the MQTT broker at {settings.where}: {probe(settings)}; "
            "check mqtt.url"
        ) from None
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            raise UserError(
                f"the MQTT broker at {settings.where} did not answer in {timeout_s:g} s"
            )
        if refusal:
            auth = refusal[0].lower() in _AUTH_REASONS
            hint = " (check mqtt.username and mqtt.password)" if auth else ""
            raise UserError(
                f"the MQTT broker at {settings.where} refused the connection: {refusal[0]}{hint}"
            )
        infos = [client.publish(t, b"", qos=max(1, settings.qos), retain=True) for t in cleared]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise UserError(
                    f"the MQTT broker at {settings.where} did not confirm the removal in "
                    f"{timeout_s:g} s; run it again"
                )
        client.disconnect()
    finally:
        client.loop_stop()
    return cleared
