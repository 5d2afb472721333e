"""The web gateway's aiohttp application: the page, the JSON API and the event stream.

Routes (docs/web.md has the long form):

* ``GET /`` and ``/static/...`` — the page; public (it holds no data).
* ``GET /api/session`` — box name, whether this client is logged in, its CSRF token; public.
* ``POST /api/login`` (token as JSON or form field) / ``POST /api/logout`` — browser sessions.
* ``GET /api/status``, ``GET /api/history?since=6h&step=60``, ``GET /api/events`` (SSE) — read.
* ``POST /api/heater``, ``/api/fan`` (``{"mode": "on"|"off"|"auto", "for": "2h"}``),
  ``POST /api/heater/reset``, ``/api/fan/reset`` — control.

Who may do what: reading needs the token (``Authorization: Bearer``) or a login session, except
on a loopback listen address where a request that names a loopback ``Host`` and came through
no proxy may read without one. Every control request needs the token or a session, and a
session's request must also carry its CSRF token (``X-CSRF-Token``). Wrong tokens are throttled
per address (:class:`~filamentctl.gateways.web.auth.LoginThrottle`).

Answers: 401 without valid credentials, 403 for a missing CSRF token or control with no
``web.token`` configured, 409 when the service refuses (a safety rule, with its reason), 422
for invalid input, 429 while an address is locked out, 503 while the service is unreachable
or the event streams are full. Every response carries the security headers of
:data:`SECURITY_HEADERS`.

Only :mod:`filamentctl.gateways.web.main` imports this module, when the gateway starts: it
loads aiohttp, which the CLI must not pay for.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from filamentctl import __version__, protocol
from filamentctl.client import ServiceError
from filamentctl.errors import ServiceNotRunning, UserError
from filamentctl.gateways.web import auth
from filamentctl.gateways.web.hub import EventHub
from filamentctl.gateways.web.options import (
    InvalidInput,
    WebOptions,
    control_args,
    history_args,
    host_header_is_loopback,
)

log = logging.getLogger("filamentctl.web")

STATIC_DIR = Path(__file__).resolve().parent / "static"  # package data, next to this module
CSRF_HEADER = "X-CSRF-Token"
KEEPALIVE_S = 15.0  # an SSE comment this often: proxies keep the stream, dead peers show up
MAX_BODY = 16 * 1024

#: On every response: no inline script or style, nothing from elsewhere, never in a frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), usb=(), serial=()",
    "Server": "filamentctl",
}

# Socket error codes → HTTP status: a refusal keeps the CLI's meaning.
_STATUS_OF_CODE = {
    protocol.REFUSED: 409,
    protocol.NOT_SIMULATED: 409,
    protocol.INVALID_ARGS: 422,
    protocol.PERMISSION: 403,
    protocol.TIMEOUT: 504,
}


class Link(Protocol):
    """What the server needs of :class:`filamentctl.link.ServiceLink`."""

    def call(self, op: str, args: dict[str, Any] | None = None) -> Any: ...


class ApiError(Exception):
    """An answer other than success: rendered as ``{"error": {"code", "message"}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: ``kind`` is "token" (Bearer), "session" (cookie) or "anonymous"."""

    kind: str
    session: auth.Session | None = None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str, ensure_ascii=False)
    return web.Response(text=body, status=status, content_type="application/json", headers=headers)


def error_response(exc: ApiError) -> web.Response:
    return _json(
        {"error": {"code": exc.code, "message": exc.message}}, exc.status, headers=exc.headers
    )


class Gateway:
    """The handlers and the state they share (sessions, throttle, hub, link)."""

    def __init__(
        self,
        opts: WebOptions,
        link: Link,
        hub: EventHub,
        *,
        clock: Callable[[], float] = time.monotonic,
        calls: int = 4,
    ) -> None:
        self.opts = opts
        self.link = link
        self.hub = hub
        self.sessions = auth.SessionStore(opts.session_s, clock)
        self.throttle = auth.LoginThrottle(clock=clock)
        # Socket calls block: a few worker threads, so a burst of requests cannot flood the
        # service with connections.
        self._pool = ThreadPoolExecutor(max_workers=calls, thread_name_prefix="web-call")
        self.cookie_name = f"filamentctl_{opts.box}"

    # -- the app --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY)
        app.on_response_prepare.append(_security_headers)
        app.on_shutdown.append(self._on_shutdown)
        r = app.router
        r.add_get("/", self.index)
        r.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
        r.add_get("/api/session", self.session)
        r.add_post("/api/login", self.login)
        r.add_post("/api/logout", self.logout)
        r.add_get("/api/status", self.status)
        r.add_get("/api/history", self.history)
        r.add_get("/api/events", self.events)
        for relay in ("heater", "fan"):
            r.add_post(f"/api/{relay}", functools.partial(self.set_relay, relay))
            r.add_post(f"/api/{relay}/reset", functools.partial(self.reset_relay, relay))
        return app

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.hub.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @web.middleware
    async def _errors(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/") or exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            keep = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            return error_response(ApiError(exc.status, code, exc.reason, keep))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return error_response(
                ApiError(500, "internal", "internal error in the web gateway; see its log")
            )

    # -- who is asking --------------------------------------------------------------------------
    def _client(self, request: web.Request) -> str:
        return request.remote or "unknown"

    def _caller(self, request: web.Request) -> Caller | None:
        """The authenticated caller, None when the request carries no credentials.

        A wrong token is an ApiError (401, or 429 when the address is locked out); a token is
        not even compared while its address is locked out.
        """
        header = request.headers.get("Authorization")
        if header is not None:
            addr = self._client(request)
            wait = self.throttle.retry_after(addr)
            if wait > 0:
                raise _too_many(wait)
            if auth.token_matches(auth.bearer_token(header), self.opts.token):
                self.throttle.succeeded(addr)
                return Caller("token")
            wait = self.throttle.failed(addr)
            if wait > 0:
                raise _too_many(wait)
            raise self._unauthorized("wrong or malformed Authorization header")
        session = self.sessions.get(request.cookies.get(self.cookie_name))
        if session is not None:
            return Caller("session", session)
        return None

    def _anonymous_read_ok(self, request: web.Request) -> bool:
        """Tokenless reading: loopback listen address, a loopback Host, and no proxy."""
        return (
            self.opts.anonymous_read
            and host_header_is_loopback(request.headers.get("Host"))
            and "Forwarded" not in request.headers
            and "X-Forwarded-For" not in request.headers
        )

    def _unauthorized(self, why: str) -> ApiError:
        if self.opts.control_enabled:
            message = f"{why}: send 'Authorization: Bearer TOKEN' or log in"
        else:
            message = f"{why}, but this box has no web.token: only loopback reading works"
        return ApiError(
            401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="filamentctl"'}
        )

    def require_read(self, request: web.Request) -> Caller:
        caller = self._caller(request)
        if caller is not None:
            return caller
        if self._anonymous_read_ok(request):
            return Caller("anonymous")
        raise self._unauthorized("reading needs the token")

    def require_control(self, request: web.Request) -> Caller:
        if not self.opts.control_enabled:
            raise ApiError(
                403,
                "control_disabled",
                "switching is off because web.token is not set; set it with "
                "'filamentctl config set web.token' and restart the web gateway",
            )
        caller = self._caller(request)
        if caller is None:
            raise self._unauthorized("switching needs the token")
        if caller.kind == "session":
            self._check_csrf(request, caller)
        return caller

    def _check_csrf(self, request: web.Request, caller: Caller) -> None:
        """A cookie travels with any request the browser makes: prove the page sent this one."""
        assert caller.session is not None
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise ApiError(403, "csrf", "cross-site request refused")
        if not caller.session.csrf_matches(request.headers.get(CSRF_HEADER)):
            raise ApiError(
                403,
                "csrf",
                f"missing or wrong {CSRF_HEADER} header: reload the page (scripts: use the "
                "Bearer token instead of a cookie)",
            )

    # -- the service --------------------------------------------------------------------------
    async def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        """One socket request on a worker thread; service errors become ApiErrors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self.link.call, op, args)
        except ServiceError as exc:
            status = _STATUS_OF_CODE.get(exc.code, 502)
            raise ApiError(status, exc.code, str(exc)) from None
        except ServiceNotRunning as exc:
            raise ApiError(
                503, "service_unavailable", f"the filamentctl service is not reachable: {exc}"
            ) from None
        except UserError as exc:
            raise ApiError(502, "service_error", str(exc)) from None

    # -- handlers -----------------------------------------------------------------------------
    async def index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def session(self, request: web.Request) -> web.Response:
        try:
            caller = self._caller(request)
        except ApiError:
            caller = None  # a wrong token here just means "not logged in"
        return _json(
            {
                "box": self.opts.box,
                "version": __version__,
                "authenticated": caller is not None,
                "csrf_token": caller.session.csrf if caller and caller.session else None,
                "read_requires_login": caller is None and not self._anonymous_read_ok(request),
                "control_enabled": self.opts.control_enabled,
                "service_connected": self.hub.connected,
            }
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        if not self.opts.control_enabled:
            raise ApiError(
                403, "login_disabled", "logins are off: web.token is not set on this box"
            )
        addr = self._client(request)
        wait = self.throttle.retry_after(addr)
        if wait > 0:
            raise _too_many(wait)
        form = request.content_type != "application/json"
        if form:
            data: Any = dict(await request.post())
        else:
            try:
                data = await request.json()
            except ValueError:
                raise ApiError(422, "invalid_input", "the body is not valid JSON") from None
        given = data.get("token") if isinstance(data, dict) else None
        if not isinstance(given, str) or not auth.token_matches(given, self.opts.token):
            wait = self.throttle.failed(addr)
            if wait > 0:
                raise _too_many(wait)
            raise ApiError(401, "unauthorized", "wrong token")
        self.throttle.succeeded(addr)
        session = self.sessions.create()
        log.info("login from %s", addr)
        response: web.StreamResponse
        if form:  # the page without JavaScript: back to it
            response = web.Response(status=303, headers={"Location": "/"})
        else:
            response = _json({"authenticated": True, "csrf_token": session.csrf})
        response.set_cookie(
            self.cookie_name,
            session.id,
            max_age=int(self.opts.session_s),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.opts.tls or None,
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if caller is not None and caller.session is not None:
            self._check_csrf(request, caller)
            self.sessions.drop(caller.session.id)
        response = _json({"authenticated": False})
        response.del_cookie(self.cookie_name, path="/")
        return response

    async def status(self, request: web.Request) -> web.Response:
        self.require_read(request)
        return _json(await self.call("status"))

    async def history(self, request: web.Request) -> web.Response:
        self.require_read(request)
        try:
            args = history_args(request.query)
        except InvalidInput as exc:
            raise ApiError(422, "invalid_input", str(exc)) from None
        return _json(await self.call("history", args))

    async def set_relay(self, relay: str, request: web.Request) -> web.Response:
        caller = self.require_control(request)
        if request.content_type != "application/json":
            raise ApiError(
                415, "unsupported_media_type", "send JSON with 'Content-Type: application/json'"
            )
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(422, "invalid_input", "the body is not valid JSON") from None
        try:
            args = control_args(body)
        except InvalidInput as exc:
            raise ApiError(422, "invalid_input", str(exc)) from None
        log.info(
            "%s.set %s%s by %s from %s",
            relay,
            args["mode"],
            f" for {args['for_s']:g} s" if "for_s" in args else "",
            caller.kind,
            self._client(request),
        )
        return _json(await self.call(f"{relay}.set", args))

    async def reset_relay(self, relay: str, request: web.Request) -> web.Response:
        caller = self.require_control(request)
        log.info("%s.reset by %s from %s", relay, caller.kind, self._client(request))
        return _json(await self.call(f"{relay}.reset"))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``status`` first, then the service's events and ``link``."""
        self.require_read(request)
        sub = self.hub.subscribe()
        if sub is None:
            raise ApiError(
                503,
                "too_many_streams",
                f"{self.hub.max_clients} event streams are open already (web.max_event_clients)",
                {"Retry-After": "30"},
            )
        try:
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-store",
                    "X-Accel-Buffering": "no",  # nginx: pass events on at once
                }
            )
            await response.prepare(request)
            await response.write(b"retry: 3000\n\n")
            try:
                first: tuple[str, Any] = ("status", await self.call("status"))
            except ApiError:
                first = ("link", self.hub.link)
            await response.write(_sse(*first))
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if event is None:
                    break
                await response.write(_sse(*event))
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away
        finally:
            self.hub.unsubscribe(sub)
        return response


def _sse(name: str, data: Any) -> bytes:
    payload = json.dumps(
        data, separators=(",", ":"), allow_nan=False, default=str, ensure_ascii=False
    )
    return f"event: {name}\ndata: {payload}\n\n".encode()


def _too_many(wait: float) -> ApiError:
    seconds = max(1, int(wait + 0.999))
    return ApiError(
        429,
        "too_many_attempts",
        f"too many wrong tokens from this address; try again in {seconds} s",
        {"Retry-After": str(seconds)},
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, static files and errors included, gets these (and API answers are
    never cached)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    elif "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"
