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
        """The running configuration: every key (or ``keys``), where each value came from
        (``sources``: default, stored, env, override) and which keys are stored. Secrets are
        ``(hidden)`` unless ``reveal``, which only root or the service's own user may ask."""
        from filamentctl.core import schema

        keys = req.args.get("keys")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
        ):
            raise ProtocolError(protocol.INVALID_ARGS, "'keys' must be a list of key names")
        reveal = req.args.get("reveal", False)
        if not isinstance(reveal, bool):
            raise ProtocolError(protocol.INVALID_ARGS, "'reveal' must be true or false")
        if reveal:
            _require_admin(conn, "reveal the running service's secrets")
        wanted = list(schema.SCHEMA) if keys is None else keys
        for name in wanted:
            if name not in schema.SCHEMA:
                raise ProtocolError(protocol.INVALID_ARGS, schema.unknown_key_message(name))
        running, stored = self._service.settings, self._stored_keys()
        values = {name: _shown(name, running.get(name), reveal) for name in wanted}
        sources = {name: self._source(name, stored) for name in wanted}
        return {**self._where(), "values": values, "sources": sources, "stored": stored}

    def _source(self, name: str, stored: list[str]) -> str:
        """Where the running value of ``name`` comes from, in the store's order of priority."""
        from filamentctl.core import schema

        if name in self._service.overrides:
            return "override"
        if schema.SCHEMA[name].env in os.environ:
            return "env"
        return "stored" if name in stored else "default"

    def set(self, req: Request, conn: Connection) -> object:
        """Store ``values`` (``[[key, text], ...]`` or ``{key: text}``, validated together: all
        or nothing) and/or remove ``unset`` keys in the service's own configuration, then apply
        them as a reload does.

        An administrator's act (a key like ``retry.alert_command`` runs a program as the
        service user): only root or the service's own user (``permission_denied`` otherwise).
        Logged with the peer and the key names, never the values.
        """
        from filamentctl.core import schema
        from filamentctl.errors import UserError
        from filamentctl.store.settings import set_values, unset_value

        _require_admin(conn, "change the running service's configuration")
        pairs = _pairs(req.args.get("values") or [])
        unset = req.args.get("unset") or []
        if not isinstance(unset, list) or not all(isinstance(k, str) for k in unset):
            raise ProtocolError(protocol.INVALID_ARGS, "'unset' must be a list of key names")
        if not pairs and not unset:
            raise ProtocolError(protocol.INVALID_ARGS, "give 'values' to set or 'unset' keys")
        paths, env = self._service.paths, dict(os.environ)
        try:
            stored = set_values(paths, env, pairs) if pairs else {}
            removed = [name for name in unset if unset_value(paths, env, name)]
        except UserError as exc:
            code = protocol.INVALID_ARGS if exc.exit_code == 2 else protocol.REFUSED
            raise ProtocolError(code, str(exc)) from None
        from filamentctl.service.reload import reload_from_store

        result = reload_from_store(self._service)
        changed = ", ".join(sorted(stored) + [f"-{k}" for k in removed]) or "nothing"
        self._service.control.audit.record("config.set", conn.peer, f"config set: {changed}")
        overridden = [
            n for n in [*stored, *removed] if n in schema.SCHEMA and schema.SCHEMA[n].env in env
        ]
        return {
            **self._where(),
            "set": list(stored),
            "values": {name: _shown(name, value, False) for name, value in stored.items()},
            "unset": removed,
            "env_overrides": overridden,
            "reload": result,
        }

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
            conn,
            "read a gateway's settings",
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


def _require_admin(
    conn: Connection, what: str, advice: str = "run it with sudo (or as the service's user)"
) -> None:
    """Only root or the service's own user (by the socket's peer credentials) may ``what``;
    anyone else gets ``permission_denied`` with ``advice``."""
    if conn.peer.uid not in (0, os.getuid()):
        log.warning("refused to %s: may not %s", conn.peer, what)
        raise ProtocolError(
            protocol.PERMISSION, f"only root or the service's own user may {what}; {advice}"
        )


def _pairs(values: object) -> list[tuple[str, str]]:
    """The wire's ``values`` (a list of ``[key, text]`` pairs, or an object) as pairs; a list
    keeps a key given twice, so the store can refuse it as it does on the command line."""
    if isinstance(values, dict):
        values = [[k, v] for k, v in values.items()]
    if not isinstance(values, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in values
    ):
        raise ProtocolError(
            protocol.INVALID_ARGS, "'values' must be [key, text] pairs or map key names to text"
        )
    return [(k, v) for k, v in values]


def _shown(name: str, value: object, reveal: bool) -> object:
    from filamentctl.core import schema

    return "(hidden)" if schema.masked(name, value, reveal) else value
