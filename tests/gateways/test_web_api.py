"""The web gateway's HTTP API against a real simulated service: the real ``filamentctl run
--simulate`` and the real ``filamentctl web`` on a free loopback port, spoken to over HTTP.

One service and gateway serve the module; a test that changes the box puts it back. Tests that
lock an address out, stop the service or need other settings start their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateways.webgateway import (
    TOKEN,
    EventStream,
    Reply,
    WebGateway,
    cli_ok,
    service_env,
    status_json,
)
from tests.helpers import ServiceProcess, wait_until

pytestmark = pytest.mark.slow

MAX_STREAMS = 3


@pytest.fixture(scope="module")
def box() -> Iterator[tuple[ServiceProcess, WebGateway]]:
    service = ServiceProcess(env=service_env(web__max_event_clients=str(MAX_STREAMS))).start()
    gateway = WebGateway(service)
    try:
        gateway.start()
        yield service, gateway
    finally:
        gateway.stop()
        service.cleanup()


@pytest.fixture
def service(box: tuple[ServiceProcess, WebGateway]) -> ServiceProcess:
    return box[0]


@pytest.fixture
def web(box: tuple[ServiceProcess, WebGateway]) -> WebGateway:
    return box[1]


@pytest.fixture
def relays_back_to_auto(service: ServiceProcess) -> Iterator[None]:
    yield
    cli_ok(service, "sim", "clear")
    for relay in ("heater", "fan"):
        service.cli(relay, "reset")
        service.cli(relay, "auto")


def _reading(reply: Reply) -> dict[str, Any] | None:
    if reply.status != 200:
        return None
    reading: dict[str, Any] | None = reply.json()["reading"]
    return reading


def test_status_shows_the_simulated_reading(service: ServiceProcess, web: WebGateway) -> None:
    cli_ok(service, "sim", "set", "--temperature", "20", "--humidity", "33.3")
    try:
        reading = wait_until(
            lambda: (
                (r := _reading(web.get("/api/status")))
                and r["temperature_c"] == 20.0
                and r["humidity"] == 33.3
                and r
            ),
            what="the simulated 20.0 °C / 33.3 % in /api/status",
        )
    finally:
        cli_ok(service, "sim", "clear")
    assert reading["temperature_f"] == 68.0
    assert reading["dew_point_c"] == pytest.approx(3.5, abs=0.2)
    assert "age_s" in reading


def test_events_stream_a_status_then_readings(web: WebGateway) -> None:
    with web.events() as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        name, first = stream.next()
        assert name == "status" and "heater" in first
        reading = stream.until("reading")
    assert isinstance(reading["temperature_c"], float)
    assert reading["seq"] > first["reading"]["seq"]


def test_history_is_averaged_into_steps(web: WebGateway) -> None:
    rows = wait_until(
        lambda: (
            (r := web.get("/api/history?since=1h&step=1")).status == 200
            and len(r.json()) >= 3
            and r.json()
        ),
        what="three 1 s buckets of history",
    )
    assert {"time_ns", "temperature_c", "humidity", "seq"} <= set(rows[0])
    assert [r["time_ns"] for r in rows] == sorted(r["time_ns"] for r in rows)
    # Readings come every 0.2 s: a 1 s bucket averages several (its seq is the first one's).
    gaps = [b["seq"] - a["seq"] for a, b in zip(rows, rows[1:], strict=False)]
    assert max(gaps) >= 3, gaps
    span_s = (rows[-1]["time_ns"] - rows[0]["time_ns"]) / 1e9
    minutes = web.get("/api/history?since=1h&step=60").json()
    assert 1 <= len(minutes) <= span_s / 60 + 2


@pytest.mark.usefixtures("relays_back_to_auto")
def test_heater_on_needs_the_token_and_then_switches_it(
    service: ServiceProcess, web: WebGateway
) -> None:
    refused = web.post("/api/heater", {"mode": "on"})
    assert refused.status == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = web.post("/api/heater", {"mode": "on"}, token="not-the-token-at-all-000")
    assert wrong.status == 401
    assert status_json(service)["heater"]["mode"] == "auto"

    done = web.post("/api/heater", {"mode": "on", "for": "2h"}, token=TOKEN)
    assert done.status == 200, done.body
    assert done.json()["mode"] == "manual"
    heater = status_json(service)["heater"]
    assert heater["mode"] == "manual" and heater["on"] is True
    assert heater["override_until"] is not None

    assert web.post("/api/heater", {"mode": "auto"}, token=TOKEN).status == 200
    assert status_json(service)["heater"]["mode"] == "auto"


@pytest.mark.usefixtures("relays_back_to_auto")
def test_a_switch_refused_during_a_latched_fault_is_409_with_the_reason(
    service: ServiceProcess, web: WebGateway
) -> None:
    cli_ok(service, "sim", "set", "--temperature", "70")
    wait_until(lambda: status_json(service)["heater"]["latched"], what="the cutoff to latch")
    refused = web.post("/api/heater", {"mode": "on"}, token=TOKEN)
    assert refused.status == 409
    error = refused.json()["error"]
    assert error["code"] == "refused"
    assert "latched" in error["message"] and "cutoff" in error["message"]
    assert status_json(service)["heater"]["on"] is False
    # Reset is refused while it is still too hot, and works once the cause is gone.
    assert web.post("/api/heater/reset", token=TOKEN).status == 409
    cli_ok(service, "sim", "clear")
    wait_until(
        lambda: web.post("/api/heater/reset", token=TOKEN).status == 200,
        what="the reset to be accepted",
    )
    assert status_json(service)["heater"]["latched"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "sideways"},
        {"mode": "auto", "for": "2h"},
        {"mode": "on", "for": "-1h"},
        {"mode": "on", "for": "0"},
        {"mode": "on", "for": "soon"},
        {"mode": "on", "until": "2h"},
        ["on"],
        {},
    ],
)
def test_invalid_control_input_is_422(web: WebGateway, body: Any) -> None:
    reply = web.post("/api/fan", body, token=TOKEN)
    assert reply.status == 422, reply.body
    assert reply.json()["error"]["code"] == "invalid_input"


def test_malformed_requests_are_refused_with_the_reason(web: WebGateway) -> None:
    not_json = web.post(
        "/api/fan", raw=b"{mode: on", headers={"Content-Type": "application/json"}, token=TOKEN
    )
    assert not_json.status == 422
    form = web.post(
        "/api/fan",
        raw=b"mode=on",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        token=TOKEN,
    )
    assert form.status == 415
    for query in ("since=banana", "since=1h&step=0.5", "since=24h&step=1", "since=1h&x=1"):
        reply = web.get(f"/api/history?{query}")
        assert reply.status == 422, query
        assert reply.json()["error"]["message"]


@pytest.mark.usefixtures("relays_back_to_auto")
def test_a_cookie_post_without_the_csrf_token_is_403(
    service: ServiceProcess, web: WebGateway
) -> None:
    cookie, csrf = web.login()
    raw_cookie = next(iter(web.post("/api/login", {"token": TOKEN}).cookies.values()))
    assert "HttpOnly" in raw_cookie and "SameSite=Strict" in raw_cookie and "Path=/" in raw_cookie

    no_csrf = web.post("/api/fan", {"mode": "off"}, cookie=cookie)
    assert no_csrf.status == 403
    assert no_csrf.json()["error"]["code"] == "csrf"
    wrong = web.post("/api/fan", {"mode": "off"}, cookie=cookie, headers={"X-CSRF-Token": "x"})
    assert wrong.status == 403
    cross_site = web.post(
        "/api/fan",
        {"mode": "off"},
        cookie=cookie,
        headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status == 403
    assert status_json(service)["fan"]["mode"] == "auto"

    ok = web.post("/api/fan", {"mode": "off"}, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert ok.status == 200, ok.body
    assert status_json(service)["fan"]["mode"] == "manual"

    session = web.get("/api/session", cookie=cookie).json()
    assert session["authenticated"] is True and session["csrf_token"] == csrf
    logout = web.post("/api/logout", {}, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert logout.status == 200
    after = web.post("/api/fan", {"mode": "auto"}, cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert after.status == 401


def test_reading_from_off_loopback_needs_the_token(web: WebGateway) -> None:
    assert web.get("/api/status").status == 200  # loopback listen, loopback Host
    # A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) sends its own Host;
    # a reverse proxy says so in its headers: neither reads without the token.
    for headers in ({"Host": "evil.example:80"}, {"X-Forwarded-For": "192.0.2.7"}):
        refused = web.get("/api/status", headers=headers)
        assert refused.status == 401, headers
        assert web.get("/api/session", headers=headers).json()["read_requires_login"] is True
        assert web.get("/api/status", headers=headers, token=TOKEN).status == 200


def test_login_is_refused_with_a_wrong_token(web: WebGateway) -> None:
    reply = web.post("/api/login", {"token": "wrong-token-wrong-token"})
    assert reply.status == 401
    assert not reply.cookies
    web.post("/api/login", {"token": TOKEN})  # a success ends this address's episode


SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def assert_security_headers(reply_headers: Any, what: str) -> None:
    csp = reply_headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp, what
    assert "frame-ancestors 'none'" in csp, what
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    assert "default-src 'none'" in csp, what
    for name, value in SECURITY.items():
        assert reply_headers.get(name) == value, f"{name} on {what}"


def test_security_headers_are_on_every_response(web: WebGateway) -> None:
    cases = [
        ("GET", "/", None, None, 200),
        ("GET", "/static/app.js", None, None, 200),
        ("GET", "/static/app.css", None, None, 200),
        ("GET", "/static/icon.svg", None, None, 200),
        ("GET", "/static/missing.js", None, None, 404),
        ("GET", "/static/../server.py", None, None, 404),
        ("GET", "/missing", None, None, 404),
        ("GET", "/api/missing", None, None, 404),
        ("DELETE", "/api/status", None, None, 405),
        ("GET", "/api/status", None, None, 200),
        ("GET", "/api/session", None, None, 200),
        ("POST", "/api/heater", {"mode": "on"}, None, 401),
        ("POST", "/api/heater", {"mode": "up"}, TOKEN, 422),
        ("GET", "/api/history?since=x", None, None, 422),
    ]
    for method, path, body, token, expected in cases:
        reply = web.request(method, path, body, token=token)
        assert reply.status == expected, (method, path, reply.body)
        assert_security_headers(reply.headers, f"{method} {path} ({reply.status})")
        if path.startswith("/api/"):
            assert reply.headers["Cache-Control"] == "no-store"
            assert reply.headers["Content-Type"].startswith("application/json")
        assert "aiohttp" not in (reply.headers.get("Server") or "")
    with web.events() as stream:
        assert_security_headers(stream.headers, "GET /api/events")
    page = web.get("/").body.decode()
    assert "<script>" not in page and "onclick" not in page.lower() and "style=" not in page


def test_the_number_of_event_streams_is_bounded(web: WebGateway) -> None:
    with contextlib.ExitStack() as stack:
        streams: list[EventStream] = []
        for _ in range(MAX_STREAMS):
            stream = stack.enter_context(web.events())
            assert stream.status == 200
            assert stream.next()[0] == "status"
            streams.append(stream)
        extra = web.get("/api/events")
        assert extra.status == 503
        assert extra.json()["error"]["code"] == "too_many_streams"
        assert extra.headers["Retry-After"]
    # The closed streams are noticed at their next event; then there is room again.
    wait_until(lambda: _stream_opens(web), what="a free event stream slot")


def _stream_opens(web: WebGateway) -> bool:
    with web.events() as stream:
        return stream.status == 200


def test_wrong_tokens_lock_the_address_out_and_are_logged_once(service: ServiceProcess) -> None:
    web = WebGateway(service).start()  # its own gateway: the lockout must not leak
    try:
        replies = [
            web.post("/api/login", {"token": f"wrong-token-number-{i:04d}"}) for i in range(4)
        ]
        assert [r.status for r in replies] == [401] * 4
        locked = web.post("/api/heater", {"mode": "on"}, token="wrong-token-number-0005")
        assert locked.status == 429
        assert int(locked.headers["Retry-After"]) >= 1
        # Locked out: even the right token is not looked at, for the API and for logins.
        assert web.post("/api/heater", {"mode": "auto"}, token=TOKEN).status == 429
        assert web.post("/api/login", {"token": TOKEN}).status == 429
        for _ in range(10):
            web.post("/api/login", {"token": "still-wrong-still-wrong"})
    finally:
        web.stop()
    log = web.log()
    assert log.count("wrong token from 127.0.0.1") == 1, log
    assert TOKEN not in log and "wrong-token-number" not in log


def test_the_gateway_survives_the_service_going_away_and_coming_back() -> None:
    service = ServiceProcess(env=service_env()).start()
    web = WebGateway(service).start()
    try:
        with web.events(timeout=30) as stream:
            assert stream.next()[0] == "status"
            # Readings flow only once the gateway's link is up: its "connected" event (sent when
            # the link came up after this stream began) is then behind us.
            assert stream.until("reading")["temperature_c"] is not None
            service.stop()
            link = stream.until("link")
            assert link["connected"] is False and link["reason"]
            down = web.get("/api/status")
            assert down.status == 503
            assert down.json()["error"]["code"] == "service_unavailable"
            assert_security_headers(down.headers, "503")
            assert web.post("/api/heater", {"mode": "off"}, token=TOKEN).status == 503
            service.start()
            assert stream.until("link")["connected"] is True
            assert "heater" in stream.until("status")
            assert stream.until("reading")["temperature_c"] is not None
        assert web.get("/api/status").status == 200
        assert web.proc is not None and web.proc.poll() is None
    finally:
        web.stop()
        service.cleanup()
