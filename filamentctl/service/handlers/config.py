"""``config.reload`` and ``gateway.settings``: the configuration of the running service."""

from __future__ import annotations

import logging
import os

from filamentctl import __version__, protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.api import ServiceAPI
from filamentctl.service.handlers.args import Handler
from filamentctl.service.server import Connection

log = logging.getLogger("filamentctl.service")

#: Gateways that may ask for their settings over the socket (``gateway.settings``).
GATEWAYS = ("web", "mqtt")


class ConfigOps:
    def __init__(self, service: ServiceAPI) -> None:
        self._service = service

    def ops(self) -> dict[str, Handler]:
        return {"config.reload": self.reload, "gateway.settings": self.gateway_settings}

    def reload(self, req: Request, conn: Connection) -> object:
        from filamentctl.service.reload import reload_from_store

        result = reload_from_store(self._service)
        changed = ", ".join(result.get("changed", ())) or "nothing"
        self._service.control.audit.record(
            "config.reload", conn.peer, f"config reload: changed {changed}"
        )
        return result

    def gateway_settings(self, req: Request, conn: Connection) -> object:
        """A gateway's own settings (``web.*``, ``mqtt.*``), secrets resolved.

        Gateways hold no configuration key: they ask the service. Only root or the service's own
        user may ask (a gateway's unit runs as that user); other socket-group members get
        ``permission_denied``, since the answer carries the gateway's secrets.
        """
        name = req.args.get("gateway")
        if name not in GATEWAYS:
            raise ProtocolError(
                protocol.INVALID_ARGS, f"'gateway' must be one of: {', '.join(GATEWAYS)}"
            )
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
            resolved = with_secrets(self._service.settings, prefix)
        except Exception as exc:  # Vault down: say so, never the value
            raise ProtocolError(
                protocol.REFUSED, f"cannot read a secret of the {name} gateway: {exc}"
            ) from None
        out = {k: v for k, v in resolved.items() if k.startswith(prefix)}
        log.info("gateway.settings: %s settings sent to %s", name, conn.peer)
        return {"box": self._service.paths.box, "version": __version__, "settings": out}
