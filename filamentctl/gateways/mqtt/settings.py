"""The gateway's settings: what the service's ``gateway.settings`` reply says, checked and typed.

The service validated these keys when they were stored; they are checked again here with the same
schema, because a gateway must not trust a reply it cannot vouch for (a newer service, a hand-made
socket). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from filamentctl.core import schema
from filamentctl.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """One box's MQTT settings. ``password`` is never part of ``repr`` (logs, tracebacks)."""

    box: str
    version: str
    enabled: bool
    url: str
    host: str
    port: int
    tls: bool
    username: str
    password: str = field(repr=False)
    tls_ca_file: str
    client_id: str
    discovery_prefix: str
    base_topic: str
    qos: int

    @property
    def node_id(self) -> str:
        """The Home Assistant discovery node id: the base topic made safe (``filamentctl_dryer``).

        Derived from the base topic so that two boxes that publish apart are two devices apart.
        """
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.base_topic).strip("_") or "filamentctl"

    @property
    def where(self) -> str:
        """The broker as a user wrote it, without credentials (for log lines)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def from_reply(reply: Mapping[str, Any], hostname: str) -> MqttSettings:
    """Typed settings from a ``gateway.settings`` reply (``{"box", "version", "settings"}``).

    Missing keys take the schema's defaults (an older service). Raises ConfigError naming the
    key for an invalid value; the message never contains the password.
    """
    box = str(reply.get("box") or "default")
    given = reply.get("settings")
    if not isinstance(given, Mapping):
        raise ConfigError("the service's gateway.settings reply has no settings")
    values: dict[str, Any] = {}
    for name, key in schema.SCHEMA.items():
        if name.startswith("mqtt."):
            raw = given.get(name, key.default)
            # A secret arrives resolved (no vault: reference left); check only its type.
            values[name] = raw if key.secret and isinstance(raw, str) else schema.check(name, raw)
    url = values["mqtt.url"]
    scheme, rest = url.split("://", 1)
    hostport = rest.rstrip("/")
    m = re.fullmatch(r"(\[[^\]]+\]|[^:]+)(?::(\d+))?", hostport)
    if m is None:  # the schema's validator already refused anything else
        raise ConfigError(f"invalid value {url!r} for mqtt.url")
    host = m.group(1).strip("[]")
    port = int(m.group(2)) if m.group(2) else DEFAULT_PORTS[scheme]
    return MqttSettings(
        box=box,
        version=str(reply.get("version") or ""),
        enabled=bool(values["mqtt.enabled"]),
        url=url,
        host=host,
        port=port,
        tls=scheme == "mqtts",
        username=values["mqtt.username"],
        password=values["mqtt.password"],
        tls_ca_file=values["mqtt.tls_ca_file"],
        client_id=values["mqtt.client_id"] or _default_client_id(hostname, box),
        discovery_prefix=values["mqtt.discovery_prefix"],
        base_topic=values["mqtt.base_topic"] or f"filamentctl/{box}",
        qos=int(values["mqtt.qos"]),
    )


def _default_client_id(hostname: str, box: str) -> str:
    # The broker drops an older session with the same id: two Pis both running box "default"
    # must not take turns kicking each other off, so the host is part of the id.
    host = re.sub(r"[^A-Za-z0-9_-]", "-", hostname.split(".")[0]) or "host"
    return f"filamentctl-{host}-{box}"[:128]
