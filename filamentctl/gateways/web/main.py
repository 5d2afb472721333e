"""``filamentctl web``: start-up checks, then the aiohttp server until SIGTERM/SIGINT (SIGHUP
reloads the settings).

Start-up, in order, each failure one UserError line with its exit code:

1. the ``web.*`` settings from the service (``gateway.settings``): exit 3 when no service runs,
   4 when this user may not read them (only root or the service's own user may);
2. the listen address (``--listen`` over ``web.listen``) and the rule that a non-loopback
   address needs ``web.token``: exit 2;
3. the TLS certificate and key when configured: exit 2 when they cannot be loaded;
4. binding the address: exit 1 (in use, not this machine's, a privileged port).

Then the gateway runs until a stop signal, surviving the service going away and coming back
(the link reconnects; pages show "disconnected" meanwhile). Changed ``web.*`` settings take
effect on SIGHUP (``systemctl reload filamentctl-web``) or when the gateway restarts.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from filamentctl import protocol
from filamentctl.client import Client, ServiceError
from filamentctl.errors import PermissionDenied, ServiceNotRunning, UsageError, UserError
from filamentctl.gateways.web.options import WebOptions, options_from_reply, startup_problem

log = logging.getLogger("filamentctl.web")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: ``systemctl reload filamentctl-web`` (ExecReload= sends it): fetch the settings again and
#: serve with them (a new token, address or certificate), without leaving systemd's control.
RELOAD_SIGNAL = signal.SIGHUP
RECONNECT_MAX_S = 5.0


def fetch_options(socket_path: Path | None, listen: str | None) -> WebOptions:
    """Ask the service for the ``web.*`` settings and check them (see the module docstring)."""
    try:
        with Client.connect(socket_path, timeout=10.0) as client:
            reply: Any = client.call("gateway.settings", {"gateway": "web"})
    except ServiceNotRunning as exc:
        raise ServiceNotRunning(
            f"the web gateway gets its settings from the service: {exc}"
        ) from None
    except PermissionDenied as exc:
        raise PermissionDenied(f"cannot start the web gateway: {exc}") from None
    except ServiceError as exc:
        if exc.code == protocol.PERMISSION:
            raise PermissionDenied(f"cannot start the web gateway: {exc}") from None
        if exc.code == protocol.UNKNOWN_OP:
            raise UserError(
                "the running service is older than this web gateway (no gateway.settings); "
                "restart the service with this version of filamentctl"
            ) from None
        raise UserError(f"cannot start the web gateway: the service said: {exc}") from None
    if not isinstance(reply, dict):
        raise UserError("cannot start the web gateway: the service sent no settings")
    opts = options_from_reply(reply, listen)
    problem = startup_problem(opts)
    if problem is not None:
        raise UsageError(problem)
    return opts


def tls_context(opts: WebOptions) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP. UsageError when the files are bad."""
    if not opts.tls:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(opts.tls_cert_file, opts.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise UsageError(
            f"cannot load the TLS certificate {opts.tls_cert_file} and key {opts.tls_key_file}: "
            f"{why}; check web.tls_cert_file/web.tls_key_file (PEM files readable by the "
            "gateway's user)"
        ) from None
    return ctx


def run(listen: str | None = None, socket_path: Path | None = None, debug: bool = False) -> int:
    """Run the gateway in the foreground; returns the exit code (0 after a stop signal).

    SIGHUP fetches the settings again and serves with them; if they are no longer usable (a
    token removed from a network address, say) the error ends the gateway like at start.
    """
    while True:
        opts = fetch_options(socket_path, listen)
        ctx = tls_context(opts)
        if not asyncio.run(_serve(opts, ctx, socket_path, debug)):
            return 0
        log.info("SIGHUP: reloading the settings")


async def _serve(
    opts: WebOptions, ctx: ssl.SSLContext | None, socket_path: Path | None, debug: bool
) -> bool:
    """Serve until a stop signal (returns False) or SIGHUP (returns True: serve again)."""
    from aiohttp import web

    from filamentctl.gateways.web.hub import EventHub
    from filamentctl.gateways.web.server import Gateway
    from filamentctl.link import ServiceLink

    loop = asyncio.get_running_loop()
    hub = EventHub(opts.max_event_clients)

    lost = threading.Event()  # set while the service is away (for the log lines)

    def on_event(name: str, data: Any) -> None:
        if name == "status" and lost.is_set():
            lost.clear()
            log.info("the service is back")
        loop.call_soon_threadsafe(hub.publish, name, data)

    def on_disconnect(reason: str, retry_in_s: float, attempt: int) -> None:
        if not lost.is_set():
            lost.set()
            log.warning("lost the service: %s; reconnecting", reason)
        loop.call_soon_threadsafe(hub.disconnected, reason, retry_in_s, attempt)

    # A local socket is cheap to retry: pages recover within seconds of a service restart.
    link = ServiceLink(
        on_event,
        on_disconnect,
        socket_path=socket_path,
        reconnect_max_s=RECONNECT_MAX_S,
        name="web-link",
    )
    gateway = Gateway(opts, link, hub)
    runner = web.AppRunner(
        gateway.app(), access_log=logging.getLogger("filamentctl.web.access") if debug else None
    )
    await runner.setup()
    site = web.TCPSite(
        runner, opts.listen.host, opts.listen.port, ssl_context=ctx, shutdown_timeout=2.0
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise UserError(
            f"cannot listen on {opts.listen.host}:{opts.listen.port}: "
            f"{exc.strerror or exc}; choose another address with --listen or web.listen"
        ) from None
    stop = asyncio.Event()
    reload = False

    def on_reload() -> None:
        nonlocal reload
        reload = True
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(RELOAD_SIGNAL, on_reload)
    link.start()
    log.info(
        "serving box %s at %s (%s; control %s)",
        opts.box,
        opts.listen.url(opts.tls),
        "reading open on loopback" if opts.anonymous_read else "reading needs the token",
        "needs the token" if opts.control_enabled else "off: no web.token",
    )
    try:
        await stop.wait()
    finally:
        if not reload:
            log.info("stopping")
        for sig in (*STOP_SIGNALS, RELOAD_SIGNAL):
            loop.remove_signal_handler(sig)
        await loop.run_in_executor(None, link.stop)
        await runner.cleanup()
    return reload
