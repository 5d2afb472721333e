"""Helpers for the MQTT gateway tests: a real subscriber, the gateway as a process, a box.

Everything here is real: a paho client against the Mosquitto broker the suite starts, the
gateway as ``python -m filamentctl mqtt`` and the service as ``python -m filamentctl run
--simulate`` (``tests.helpers.ServiceProcess``), each in its own FILAMENTCTL_HOME.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import REPO, ServiceProcess, wait_until


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttProbe:
    """A subscriber (and publisher) that records every message it receives, in order."""

    def __init__(
        self,
        port: int,
        *filters: str,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._filters = filters
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex}"
        )
        if username:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if filters and not self._subscribed.wait(10):
            raise AssertionError(f"probe could not subscribe to {filters}")

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._filters and not reason.is_failure:
            client.subscribe([(f, 1) for f in self._filters])

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Message | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Message], bool] = lambda _m: True,
        timeout: float = 20.0,
        after: int = 0,
    ) -> Message:
        """The first message on ``topic`` (from the ``after``-th on) that satisfies
        ``predicate``."""

        def found() -> Message | None:
            for m in self.on(topic)[after:]:
                if predicate(m):
                    return m
            return None

        result: Message = wait_until(found, timeout=timeout, what=f"a message on {topic}")
        return result

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def sync(self, topic: str) -> None:
        """Publish a marker to ``topic`` (inside a subscribed filter) and wait for it to come
        back: the broker sends retained messages on subscribing, before anything published
        later, so after this every retained message of the subscription has arrived."""
        marker = f"sync-{uuid.uuid4().hex}"
        self.publish(topic, marker)
        self.wait_for(topic, lambda m: m.payload == marker)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GatewayProcess:
    """``python -m filamentctl mqtt`` next to a ServiceProcess (same FILAMENTCTL_HOME)."""

    def __init__(self, service: ServiceProcess, *args: str) -> None:
        # The gateway holds no configuration: its mqtt.* settings come from the service, so
        # they are deliberately not in its environment.
        self.env = {
            k: v for k, v in service.env.items() if not k.startswith(("FILAMENTCTL_MQTT", "VAULT_"))
        }
        self.args = args
        self.log_path = service.home / f"gateway-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "mqtt", *self.args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code (None when it had not been started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def mqtt_env(url: str, base_topic: str, **extra: str) -> dict[str, str]:
    """The service's environment for a box with the gateway enabled (fast readings)."""
    env = {
        "FILAMENTCTL_MQTT__ENABLED": "true",
        "FILAMENTCTL_MQTT__URL": url,
        "FILAMENTCTL_MQTT__BASE_TOPIC": base_topic,
        "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
    }
    env.update(extra)
    return env


def box(env: Mapping[str, str]) -> ServiceProcess:
    """A simulated service with ``env``, started."""
    return ServiceProcess(env=dict(env)).start()


def node_id(base_topic: str) -> str:
    """The discovery node id the gateway derives from the base topic."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "_", base_topic).strip("_")


def status(service: ServiceProcess) -> dict[str, Any]:
    out = service.cli("status", "--json")
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result
