"""What the web gateway runs with, and the checks on what its clients send. Pure: no I/O.

:func:`options_from_reply` turns the service's ``gateway.settings`` answer (plus ``--listen``)
into :class:`WebOptions`; :func:`startup_problem` says why the gateway must not start (a network
address without a token). :func:`control_args` and :func:`history_args` turn API input into the
arguments of the socket operations, raising :class:`InvalidInput` (HTTP 422) with one line
saying what is allowed.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from filamentctl.core.duration import parse_duration
from filamentctl.core.overrides import override_problem
from filamentctl.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:8780"
#: Most chart points one ``/api/history`` request may ask for (reply size and service time).
MAX_HISTORY_POINTS = 10_000
#: Points per chart when the request gives no ``step`` (the terminal dashboard's 720).
DEFAULT_POINTS = 720
MODES = ("on", "off", "auto")

_LISTEN = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")


class InvalidInput(ValueError):
    """A request's input is not acceptable; the message says what is (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class Listen:
    """A host and port to listen on. ``host`` has no brackets (``::1``, not ``[::1]``)."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """True only for addresses that cannot be reached from another machine."""
        return is_loopback_host(self.host)

    def url(self, tls: bool = False) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "<this machine's address>"
        return f"{'https' if tls else 'http'}://{host}:{self.port}/"


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal; any other name counts as reachable (it may
    resolve to a network address)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text: str, what: str = "--listen") -> Listen:
    """``127.0.0.1:8780``, ``0.0.0.0:8780``, ``[::1]:8780`` → :class:`Listen`; UsageError else."""
    m = _LISTEN.fullmatch(text.strip())
    port = int(m.group(2)) if m else 0
    if m is None or not 1 <= port <= 65535:
        raise UsageError(
            f"invalid {what} {text!r}: use HOST:PORT, e.g. 127.0.0.1:8780, 0.0.0.0:8780 "
            "or [::1]:8780"
        )
    return Listen(m.group(1).strip("[]"), port)


@dataclass(frozen=True, slots=True)
class WebOptions:
    """Everything the running gateway needs; built once at start."""

    listen: Listen
    token: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_event_clients: int = 16
    session_s: float = 168 * 3600.0
    box: str = "default"
    service_version: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def anonymous_read(self) -> bool:
        """Reading without the token is allowed only when nobody else can connect."""
        return self.listen.loopback

    @property
    def control_enabled(self) -> bool:
        return bool(self.token)


def options_from_reply(reply: Mapping[str, Any], listen_override: str | None = None) -> WebOptions:
    """Options from a ``gateway.settings`` reply; ``--listen`` wins over ``web.listen``.

    Raises UsageError for a malformed listen address or half a TLS configuration.
    """
    settings = reply.get("settings") or {}
    if listen_override is not None:
        listen = parse_listen(listen_override)
    else:
        listen = parse_listen(str(settings.get("web.listen") or DEFAULT_LISTEN), "web.listen")
    cert = str(settings.get("web.tls_cert_file") or "")
    key = str(settings.get("web.tls_key_file") or "")
    if bool(cert) != bool(key):
        raise UsageError(
            "web.tls_cert_file and web.tls_key_file go together: set both for HTTPS, or neither"
        )
    return WebOptions(
        listen=listen,
        token=str(settings.get("web.token") or ""),
        tls_cert_file=cert,
        tls_key_file=key,
        max_event_clients=int(settings.get("web.max_event_clients") or 16),
        session_s=float(settings.get("web.session_hours") or 168) * 3600.0,
        box=str(reply.get("box") or "default"),
        service_version=str(reply.get("version") or ""),
    )


def startup_problem(opts: WebOptions) -> str | None:
    """Why the gateway must not start with these options (one line), or None."""
    if not opts.listen.loopback and not opts.token:
        return (
            f"refusing to listen on {opts.listen.host}:{opts.listen.port} without web.token: "
            "anyone on the network could read and switch the box; set one with "
            "'filamentctl config set web.token' (it prompts) or listen on 127.0.0.1"
        )
    return None


def host_header_is_loopback(host: str | None) -> bool:
    """Whether a request's ``Host`` names this machine's loopback (``localhost:8780``,
    ``127.0.0.1``, ``[::1]:8780``). Guards tokenless reading against DNS rebinding: a page from
    elsewhere that points its own name at 127.0.0.1 still sends that name."""
    if not host:
        return False
    host = host.strip()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback_host(name)


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"'{name}' must be a duration such as \"2h\" or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise InvalidInput(f"invalid '{name}': {exc}") from None
    else:
        raise InvalidInput(f"'{name}' must be a duration such as \"2h\" or a number of seconds")
    if not math.isfinite(seconds):
        raise InvalidInput(f"'{name}' must be a finite duration")
    return seconds


def control_args(body: Any) -> dict[str, Any]:
    """``{"mode": "on", "for": "2h"}`` → ``heater.set``/``fan.set`` arguments.

    Raises InvalidInput for anything else: not an object, unknown fields, a mode other than
    on/off/auto, ``for`` with auto, a duration that is not positive or longer than a year.
    """
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object such as {"mode": "on", "for": "2h"}')
    unknown = sorted(set(body) - {"mode", "for"})
    if unknown:
        raise InvalidInput(f"unknown field(s) {unknown}; send 'mode' and optionally 'for'")
    mode = body.get("mode")
    seconds = None if body.get("for") is None else _seconds(body["for"], "for")
    # The same rule as the socket's and the CLI's (core.control), worded for this API.
    problem = override_problem(mode, seconds, for_name="'for'")
    if problem is not None:
        raise InvalidInput(problem)
    args: dict[str, Any] = {"mode": mode}
    if seconds is not None:
        args["for_s"] = seconds
    return args


def history_args(query: Mapping[str, str]) -> dict[str, Any]:
    """``?since=6h&step=60`` → ``history`` arguments (always averaged into ``step`` buckets).

    ``since`` defaults to 1h; ``step`` (seconds or a duration, at least 1 s) defaults to
    ``since`` / 720. Raises InvalidInput for unknown parameters, bad durations, or more than
    :data:`MAX_HISTORY_POINTS` points.
    """
    unknown = sorted(set(query) - {"since", "step"})
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {unknown}; use since and step")
    since = _seconds(query.get("since", "1h"), "since")
    if since <= 0:
        raise InvalidInput("'since' must be longer than 0 s, e.g. 1h, 6h, 24h")
    if "step" in query:
        step = _seconds(query["step"], "step")
        if step < 1:
            raise InvalidInput("'step' must be at least 1 second")
    else:
        step = max(1.0, since / DEFAULT_POINTS)
    if since / step > MAX_HISTORY_POINTS:
        raise InvalidInput(
            f"since/step asks for {since / step:.0f} points; at most {MAX_HISTORY_POINTS}: "
            "use a larger step"
        )
    return {"since_s": since, "step_s": step, "limit": MAX_HISTORY_POINTS}
