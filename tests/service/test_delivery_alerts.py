"""Delivery alerts on their own: one per failure episode and kind, and what an alert carries.

The alerter is driven directly with the failure counts the delivery engine would pass. Its
``run_command`` hook records the environment a command would get; the real shell command (and
what it inherits) runs in tests/service/test_delivery_engine.py.
"""

from __future__ import annotations

import logging

import pytest

from filamentctl.core.reading import iso_utc
from filamentctl.service.alerts import Alerter

T0 = 1_780_000_000 * 1_000_000_000


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []
        self.commands: list[dict[str, str]] = []

    def alerter(self, threshold: int, command: str = "", backlog: int = 7) -> Alerter:
        def count() -> int:
            if backlog < 0:
                raise RuntimeError("database is locked")
            return backlog

        return Alerter(
            "vm",
            threshold,
            command,
            backlog=count,
            emit=lambda name, details: self.events.append((name, details)),
            wall_clock_ns=lambda: T0,
            run_command=self.commands.append,
        )


def test_an_alert_is_due_once_when_the_failures_reach_the_threshold() -> None:
    alerter = Recorder().alerter(threshold=3)
    kinds = [alerter.failed("HTTP 503: busy", n, auth=False) for n in range(1, 7)]
    assert kinds == [None, None, "delivery", None, None, None]
    assert alerter.current() == {
        "kind": "delivery",
        "message": "HTTP 503: busy",
        "since": iso_utc(T0),
    }


def test_an_auth_failure_alerts_at_once_even_after_a_delivery_alert() -> None:
    alerter = Recorder().alerter(threshold=1)
    assert alerter.failed("connection refused", 1, auth=False) == "delivery"
    assert alerter.failed("HTTP 401: unauthorized", 2, auth=True) == "auth"
    assert alerter.failed("HTTP 401: unauthorized", 3, auth=True) is None
    current = alerter.current()
    assert current is not None and current["kind"] == "auth"


def test_a_threshold_of_zero_never_alerts_for_failures_but_still_for_credentials() -> None:
    alerter = Recorder().alerter(threshold=0)
    assert [alerter.failed("busy", n, auth=False) for n in range(1, 50)] == [None] * 49
    assert alerter.current() is None
    assert alerter.failed("HTTP 403: forbidden", 50, auth=True) == "auth"


def test_a_success_ends_the_episode_and_the_next_one_alerts_again() -> None:
    alerter = Recorder().alerter(threshold=2)
    alerter.failed("busy", 1, auth=False)
    assert alerter.succeeded() is False  # no alert was up
    assert alerter.failed("busy", 1, auth=False) is None
    assert alerter.failed("busy", 2, auth=False) == "delivery"
    assert alerter.succeeded() is True
    assert alerter.current() is None
    assert alerter.failed("busy", 1, auth=False) is None
    assert alerter.failed("busy", 2, auth=False) == "delivery"


def test_firing_logs_publishes_and_runs_the_command_with_the_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    alerter = rec.alerter(threshold=2, command="notify-me")
    with caplog.at_level(logging.ERROR, logger="filamentctl.delivery"):
        alerter.fire("delivery", "HTTP 503: busy", 2)
    text = "2 consecutive delivery failures to vm (HTTP 503: busy)"
    assert rec.events == [
        (
            "alert",
            {"kind": "delivery", "message": text, "failures": 2, "backend": "vm", "backlog": 7},
        )
    ]
    assert rec.commands == [
        {
            "FILAMENTCTL_ALERT_KIND": "delivery",
            "FILAMENTCTL_ALERT_MESSAGE": text,
            "FILAMENTCTL_ALERT_FAILURES": "2",
            "FILAMENTCTL_ALERT_BACKEND": "vm",
            "FILAMENTCTL_ALERT_BACKLOG": "7",
        }
    ]
    assert [r.getMessage() for r in caplog.records] == [f"alert: {text}; 7 readings kept"]


def test_an_auth_alert_says_to_check_the_credentials() -> None:
    rec = Recorder()
    rec.alerter(threshold=3).fire("auth", "HTTP 401: unauthorized", 1)
    [(name, details)] = rec.events
    assert name == "alert" and details["kind"] == "auth"
    assert details["message"] == (
        "vm refused our credentials (HTTP 401: unauthorized); check the token/password"
    )
    assert rec.commands == []  # no command configured


def test_an_uncountable_backlog_does_not_stop_the_alert() -> None:
    rec = Recorder()
    rec.alerter(threshold=1, command="notify-me", backlog=-1).fire("delivery", "busy", 1)
    assert rec.events[0][1]["backlog"] == -1
    assert rec.commands[0]["FILAMENTCTL_ALERT_BACKLOG"] == "-1"


def test_a_command_that_cannot_start_is_logged_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def cannot_start(env: dict[str, str]) -> None:
        raise FileNotFoundError("/bin/sh: not found")

    alerter = Alerter(
        "vm", 1, "notify-me", backlog=lambda: 0, emit=lambda *_: None, run_command=cannot_start
    )
    with caplog.at_level(logging.ERROR, logger="filamentctl.delivery"):
        alerter.fire("delivery", "busy", 1)  # does not raise
    assert any("could not be started" in r.getMessage() for r in caplog.records)
