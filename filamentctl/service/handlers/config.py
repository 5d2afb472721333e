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
        return {
            "config.reload": self.reload,
            "config.get": self.get,
            "config.set": self.set,
            "gateway.settings": self.gateway_settings,
        }

    def get(self, req: Request, conn: Connection) -> object:
        """The running configuration: every key (or ``keys``), where each value came from,
        secrets masked. Anyone who may use the socket may read it."""
        from filamentctl.core import schema

        keys = req.args.get("keys")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
        ):
            raise ProtocolError(protocol.INVALID_ARGS, "'keys' must be a list of key names")
        wanted = list(schema.SCHEMA) if keys is None else keys
        for name in wanted:
            if name not in schema.SCHEMA:
                raise ProtocolError(protocol.INVALID_ARGS, schema.unknown_key_message(name))
        running = self._service.settings
        values = {name: _shown(name, running.get(name)) for name in wanted}
        return {**self._where(), "values": values, "stored": self._stored_keys()}

    def set(self, req: Request, conn: Connection) -> object:
        """Store ``values`` (``{key: text}``, validated together: all or nothing) and/or remove
        ``unset`` keys in the service's own configuration, then apply them as a reload does.

        An administrator's act (a key like ``retry.alert_command`` runs a program as the
        service user): only root or the service's own user (``permission_denied`` otherwise).
        Logged with the peer and the key names, never the values.
        """
        from filamentctl.errors import UserError
        from filamentctl.store.settings import set_values, unset_value

        _require_admin(conn, "change the running service's configuration")
        values = req.args.get("values") or {}
        unset = req.args.get("unset") or []
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise ProtocolError(protocol.INVALID_ARGS, "'values' must map key names to text")
        if not isinstance(unset, list) or not all(isinstance(k, str) for k in unset):
            raise ProtocolError(protocol.INVALID_ARGS, "'unset' must be a list of key names")
        if not values and not unset:
            raise ProtocolError(protocol.INVALID_ARGS, "give 'values' to set or 'unset' keys")
        paths, env = self._service.paths, dict(os.environ)
        try:
            if values:
                set_values(paths, env, list(values.items()))
            for name in unset:
                unset_value(paths, env, name)
        except UserError as exc:
            code = protocol.INVALID_ARGS if exc.exit_code == 2 else protocol.REFUSED
            raise ProtocolError(code, str(exc)) from None
        from filamentctl.service.reload import reload_from_store

        result = reload_from_store(self._service)
        changed = ", ".join(sorted(values) + [f"-{k}" for k in unset])
        self._service.control.audit.record("config.set", conn.peer, f"config set: {changed}")
        return {**self._where(), "set": sorted(values), "unset": unset, "reload": result}

    def _where(self) -> dict[str, object]:
        paths = self._service.paths
        return {"box": paths.box, "config": str(paths.config_db), "pid": os.getpid()}

    def _stored_keys(self) -> list[str]:
        from filamentctl.store.settings import config_exists, stored_values

        paths = self._service.paths
        if not config_exists(paths.config_db):
            return []
        try:
            return sorted(stored_values(paths, os.environ))
        except Exception:  # status of the store is not this op's business: just no list
            return []

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
        _require_admin(
            conn, "read a gateway's settings (run the gateway as the service user: its unit does)"
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


def _require_admin(conn: Connection, what: str) -> None:
    """Only root or the service's own user (by the socket's peer credentials) may ``what``."""
    if conn.peer.uid not in (0, os.getuid()):
        log.warning("refused to %s: may not %s", conn.peer, what.split(" (")[0])
        raise ProtocolError(
            protocol.PERMISSION,
            f"only root or the service's own user may {what}; run it with sudo (or as the "
            "service's user)",
        )


def _shown(name: str, value: object) -> object:
    from filamentctl.core import schema

    key = schema.SCHEMA[name]
    if key.secret and value:
        return "(hidden)"
    return value
