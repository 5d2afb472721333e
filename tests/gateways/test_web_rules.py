"""The web gateway's pure rules: listen addresses, input checks, tokens, sessions, the failed-login
throttle (with a clock passed in) and the event hub's bounds. No server, no sleeps."""

from __future__ import annotations

import asyncio
import logging

import pytest

from filamentctl.core import schema
from filamentctl.errors import ConfigError, UsageError
from filamentctl.gateways.web import auth
from filamentctl.gateways.web.hub import EventHub
from filamentctl.gateways.web.options import (
    MAX_HISTORY_POINTS,
    InvalidInput,
    Listen,
    control_args,
    history_args,
    host_header_is_loopback,
    options_from_reply,
    parse_listen,
    startup_problem,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "host", "port", "loopback"),
    [
        ("127.0.0.1:8780", "127.0.0.1", 8780, True),
        ("127.1.2.3:80", "127.1.2.3", 80, True),
        ("localhost:8780", "localhost", 8780, True),
        ("[::1]:8780", "::1", 8780, True),
        ("0.0.0.0:8780", "0.0.0.0", 8780, False),
        ("[::]:8780", "::", 8780, False),
        ("192.168.1.20:8780", "192.168.1.20", 8780, False),
        ("drybox.local:8780", "drybox.local", 8780, False),
    ],
)
def test_listen_addresses_and_which_are_loopback(
    text: str, host: str, port: int, loopback: bool
) -> None:
    listen = parse_listen(text)
    assert (listen.host, listen.port, listen.loopback) == (host, port, loopback)
    assert schema.parse("web.listen", text) == text


@pytest.mark.parametrize("text", ["8780", "127.0.0.1", "127.0.0.1:0", "1.2.3.4:70000", "[zz]:1"])
def test_malformed_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_listen(text)
    with pytest.raises(ConfigError, match="web.listen"):
        schema.parse("web.listen", text)


def test_a_network_address_needs_a_token_to_start() -> None:
    assert startup_problem(options_from_reply({"settings": {"web.listen": "127.0.0.1:1"}})) is None
    open_lan = options_from_reply({"settings": {"web.listen": "0.0.0.0:8780"}})
    assert "without web.token" in (startup_problem(open_lan) or "")
    guarded = options_from_reply({"settings": {"web.listen": "0.0.0.0:8780", "web.token": "t"}})
    assert startup_problem(guarded) is None
    # --listen wins over web.listen, in both directions.
    assert not options_from_reply({"settings": {}}, "0.0.0.0:1").listen.loopback
    lan = {"settings": {"web.listen": "0.0.0.0:8780"}}
    assert options_from_reply(lan, "127.0.0.1:9").listen == Listen("127.0.0.1", 9)


def test_half_a_tls_configuration_is_refused() -> None:
    with pytest.raises(UsageError, match="go together"):
        options_from_reply({"settings": {"web.tls_cert_file": "/etc/ssl/c.pem"}})
    problems = schema.validate({"web.tls_key_file": "/etc/ssl/k.pem"})
    assert any("web.tls_cert_file and web.tls_key_file" in p for p in problems)


def test_the_token_must_be_long_and_is_secret() -> None:
    assert schema.SCHEMA["web.token"].secret
    with pytest.raises(ConfigError) as exc:
        schema.parse("web.token", "short-secret")
    assert "short-secret" not in str(exc.value)  # a secret is never echoed
    assert schema.parse("web.token", "x" * 16) == "x" * 16
    assert schema.parse("web.token", "") == ""
    assert schema.parse("web.token", "vault:secret/filamentctl#web") == (
        "vault:secret/filamentctl#web"
    )


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8780", True),
        ("localhost:8780", True),
        ("localhost", True),
        ("[::1]:8780", True),
        ("evil.example:8780", False),
        ("192.168.1.2:8780", False),
        ("127.0.0.1.nip.io:8780", False),
        (None, False),
        ("", False),
    ],
)
def test_which_host_headers_count_as_loopback(host: str | None, ok: bool) -> None:
    assert host_header_is_loopback(host) is ok


def test_control_bodies_become_socket_arguments() -> None:
    assert control_args({"mode": "on"}) == {"mode": "on"}
    assert control_args({"mode": "off", "for": "1h30m"}) == {"mode": "off", "for_s": 5400.0}
    assert control_args({"mode": "on", "for": 90}) == {"mode": "on", "for_s": 90.0}
    assert control_args({"mode": "auto", "for": None}) == {"mode": "auto"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "ON"}, "'mode' must be auto, on or off"),
        ({"state": "off"}, "unknown field"),
        ({"mode": "auto", "for": "1h"}, "applies to 'on' and 'off' only"),
        ({"mode": "on", "for": "0s"}, "positive number of seconds"),
        ({"mode": "on", "for": "400d"}, "at most a year"),
        ({"mode": "on", "for": True}, "duration"),
        ({"mode": "on", "for": "2 weeks"}, "invalid 'for'"),
        ("on", "JSON object"),
    ],
)
def test_bad_control_bodies_say_what_is_allowed(body: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        control_args(body)


def test_history_queries_are_bounded() -> None:
    assert history_args({"since": "6h", "step": "60"}) == {
        "since_s": 21600.0,
        "step_s": 60.0,
        "limit": MAX_HISTORY_POINTS,
    }
    assert history_args({})["since_s"] == 3600.0
    assert history_args({"since": "24h"})["step_s"] == 120.0  # 720 points by default
    with pytest.raises(InvalidInput, match="points"):
        history_args({"since": "30d", "step": "60"})
    with pytest.raises(InvalidInput, match="unknown parameter"):
        history_args({"limit": "5"})


def test_tokens_compare_only_when_one_is_configured() -> None:
    assert auth.token_matches("a" * 20, "a" * 20)
    assert not auth.token_matches("a" * 19, "a" * 20)
    assert not auth.token_matches("", "")
    assert not auth.token_matches(None, "a" * 20)
    assert auth.bearer_token("Bearer abc") == "abc"
    assert auth.bearer_token("bearer  abc ") == "abc"
    assert auth.bearer_token("Basic abc") is None
    assert auth.bearer_token("Bearer") is None


def test_sessions_expire_and_are_bounded() -> None:
    clock = Clock()
    store = auth.SessionStore(3600, clock, max_sessions=3)
    first = store.create()
    assert store.get(first.id) is first
    assert first.csrf_matches(first.csrf) and not first.csrf_matches("nope")
    assert not first.csrf_matches(None)
    assert first.id != first.csrf
    clock.now += 3600
    assert store.get(first.id) is None
    sessions = [store.create() for _ in range(4)]
    assert len(store) == 3
    assert store.get(sessions[0].id) is None  # the oldest made room
    store.drop(sessions[-1].id)
    assert store.get(sessions[-1].id) is None


def test_the_throttle_locks_out_after_five_failures_and_doubles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    throttle = auth.LoginThrottle(limit=5, lockout_s=60, max_lockout_s=200, clock=clock)
    with caplog.at_level(logging.WARNING, logger="filamentctl.web"):
        assert [throttle.failed("192.0.2.7") for _ in range(4)] == [0.0] * 4
        assert throttle.retry_after("192.0.2.7") == 0
        assert throttle.failed("192.0.2.7") == 60
        assert throttle.retry_after("192.0.2.7") == 60
        assert throttle.retry_after("192.0.2.8") == 0  # per address
        clock.now += 60
        assert throttle.retry_after("192.0.2.7") == 0
        for _ in range(4):
            throttle.failed("192.0.2.7")
        assert throttle.failed("192.0.2.7") == 120
        clock.now += 120
        for _ in range(4):
            throttle.failed("192.0.2.7")
        assert throttle.failed("192.0.2.7") == 200  # capped
        starts = [r for r in caplog.records if "wrong token from 192.0.2.7" in r.getMessage()]
        assert len(starts) == 1  # once per episode, not per failure
        throttle.succeeded("192.0.2.7")
        ends = [r for r in caplog.records if "episode is over" in r.getMessage()]
        assert len(ends) == 1 and "15 wrong token(s)" in ends[0].getMessage()
        assert throttle.retry_after("192.0.2.7") == 0


def test_a_quiet_address_starts_a_new_episode(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttle = auth.LoginThrottle(quiet_s=600, clock=clock)
    with caplog.at_level(logging.WARNING, logger="filamentctl.web"):
        throttle.failed("198.51.100.1")
        clock.now += 601
        throttle.failed("198.51.100.1")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("wrong token from 198.51.100.1" in m for m in messages) == 2
    assert sum("episode is over" in m for m in messages) == 1


def test_the_hub_bounds_streams_and_drops_a_client_that_stops_reading() -> None:
    async def scenario() -> None:
        hub = EventHub(max_clients=2, queue_size=3)
        reader = hub.subscribe()
        stalled = hub.subscribe()
        assert reader is not None and stalled is not None
        assert hub.subscribe() is None
        hub.publish("status", {"x": 1})
        assert await reader.queue.get() == (
            "link",
            {"connected": True, "reason": None, "retry_in_s": None},
        )
        for i in range(3):
            hub.publish("reading", {"seq": i})
            assert (await reader.queue.get())[0] in ("status", "reading")
        assert stalled.dropped and stalled not in hub.subscribers
        assert await stalled.queue.get() is None  # told to end, its backlog gone
        assert hub.slow_clients_dropped == 1
        hub.disconnected("gone", 1.0, 1)
        assert hub.connected is False
        while not reader.queue.empty():
            last = reader.queue.get_nowait()
        assert last == ("link", {"connected": False, "reason": "gone", "retry_in_s": 1.0})
        hub.close()
        assert await reader.queue.get() is None

    asyncio.run(scenario())
