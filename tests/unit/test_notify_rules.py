"""Notification rules: URL lists, event kinds, quiet hours and the per-kind rate limit."""

from __future__ import annotations

import pytest

from filamentctl.core.notify import (
    EVENT_KINDS,
    Message,
    NotifyGate,
    QuietHours,
    parse_events,
    parse_quiet_hours,
    split_urls,
    urls_apprise_problem,
    urls_shape_problem,
)


def _fmt(t: float) -> str:
    return f"t={t:g}"


def msg(kind: str = "sensor_fault", title: str = "t", body: str = "b") -> Message:
    return Message(kind, title, body)


# -- notify.urls ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("", []),
        ("ntfy://ntfy.sh/a", ["ntfy://ntfy.sh/a"]),
        ("ntfy://ntfy.sh/a,json://h:1/x", ["ntfy://ntfy.sh/a", "json://h:1/x"]),
        ("ntfy://ntfy.sh/a , \n json://h:1/x\n", ["ntfy://ntfy.sh/a", "json://h:1/x"]),
        ("ntfy://a\r\ntgram://b/c", ["ntfy://a", "tgram://b/c"]),
        # A comma inside a URL (several e-mail recipients) is not a separator.
        (
            "mailto://u:p@example.com?to=a@x.org,b@x.org",
            ["mailto://u:p@example.com?to=a@x.org,b@x.org"],
        ),
    ],
)
def test_urls_split_on_newlines_and_on_commas_before_a_scheme(text: str, urls: list[str]) -> None:
    assert split_urls(text) == urls


def test_url_shape_problems_never_repeat_the_url() -> None:
    secret = "tok-9f8e7d6c5b4a"
    for bad in (f"not a url {secret}", f"ntfy://ntfy.sh/{secret} x", f"{secret}"):
        problem = urls_shape_problem(bad)
        assert problem is not None and secret not in problem
    assert urls_shape_problem("ntfy://ntfy.sh/a, json://127.0.0.1:8/x") is None
    assert urls_shape_problem(",".join(f"json://h/{i}" for i in range(21))) is not None


def test_apprise_refuses_an_unknown_scheme_without_repeating_the_url(
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "tok-1a2b3c4d5e"
    problem = urls_apprise_problem(f"ntfy://ntfy.sh/ok, nosuchservice://{secret}@host/")
    assert problem is not None and "entry 2" in problem and "nosuchservice" in problem
    assert secret not in problem
    malformed = urls_apprise_problem("json://127.0.0.1:1/ok\ntgram://x")
    assert malformed is not None and "entry 2" in malformed
    assert urls_apprise_problem("json://127.0.0.1:1/ok\nntfy://ntfy.sh/topic") is None
    out, err = capfd.readouterr()
    assert secret not in out + err  # Apprise's own log line repeats the URL: kept off stderr


# -- notify.events, notify.quiet_hours ---------------------------------------------------------


def test_events_parse_in_a_fixed_order_and_refuse_unknown_kinds() -> None:
    assert parse_events("humidity_alarm, heater_latched") == ("heater_latched", "humidity_alarm")
    assert parse_events("all") == EVENT_KINDS
    assert parse_events("") == ()
    with pytest.raises(ValueError, match="heater_latch'"):
        parse_events("heater_latch")


@pytest.mark.parametrize(
    ("spec", "minute", "quiet"),
    [
        ("22:00-07:00", 22 * 60, True),
        ("22:00-07:00", 3 * 60, True),
        ("22:00-07:00", 7 * 60, False),
        ("22:00-07:00", 12 * 60, False),
        ("13:00-14:30", 14 * 60 + 29, True),
        ("13:00-14:30", 14 * 60 + 30, False),
        ("13:00-14:30", 12 * 60 + 59, False),
    ],
)
def test_quiet_hours_wrap_midnight(spec: str, minute: int, quiet: bool) -> None:
    hours = parse_quiet_hours(spec)
    assert hours is not None and hours.contains(minute) is quiet


@pytest.mark.parametrize("bad", ["22-07", "25:00-07:00", "22:00", "07:00-07:00", "10:60-11:00"])
def test_bad_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(bad)


# -- the gate ------------------------------------------------------------------------------------


def test_twenty_flaps_in_a_minute_send_one_message_then_one_summary() -> None:
    gate = NotifyGate(min_interval_s=900)
    sent = [gate.offer(msg(title=f"flap {i}"), 1000.0 + 1.5 * i, 600) for i in range(40)]
    assert sent.count(True) == 1 and sent[0]
    assert gate.due(1060.0, 601, _fmt) == []  # still inside the interval
    assert gate.held() == {"sensor_fault": 39}
    [summary] = gate.due(1900.0, 615, _fmt)
    assert "39 sensor fault notifications" in summary.body and "flap 39" in summary.title
    assert "t=1001.5" in summary.body  # held since the first held one
    assert gate.due(1901.0, 615, _fmt) == [] and gate.held() == {}
    # The summary counts as the kind's message: the next one waits again.
    assert gate.offer(msg(), 1902.0, 615) is False


def test_kinds_are_limited_separately() -> None:
    gate = NotifyGate(min_interval_s=900)
    assert gate.offer(msg("sensor_fault"), 0.0, 0)
    assert gate.offer(msg("delivery_alert"), 1.0, 0)
    assert not gate.offer(msg("sensor_fault"), 2.0, 0)


def test_a_heater_latch_is_never_held() -> None:
    gate = NotifyGate(min_interval_s=900, quiet=QuietHours(0, 1439))
    assert all(gate.offer(msg("heater_latched"), float(t), 30) for t in range(5))
    assert not gate.offer(msg("sensor_fault"), 5.0, 30)


def test_quiet_hours_hold_until_they_end_then_send_what_was_held() -> None:
    gate = NotifyGate(min_interval_s=0, quiet=parse_quiet_hours("22:00-07:00"))
    assert gate.offer(msg("humidity_alarm", body="wet"), 100.0, 23 * 60) is False
    assert gate.due(5000.0, 6 * 60 + 59, _fmt) == []
    [out] = gate.due(5001.0, 7 * 60, _fmt)
    assert out.body.startswith("wet") and "quiet hours" in out.body and "t=100" in out.body


def test_last_sent_from_a_previous_run_keeps_the_interval_across_a_restart() -> None:
    first = NotifyGate(min_interval_s=900)
    assert first.offer(msg(), 1000.0, 0)
    restarted = NotifyGate(min_interval_s=900, last_sent=first.last_sent)
    assert restarted.offer(msg(), 1010.0, 0) is False
    assert restarted.offer(msg(), 1000.0 + 900, 0) is False  # already holding: summary next
    assert len(restarted.due(1000.0 + 900, 0, _fmt)) == 1


def test_a_clock_that_went_back_does_not_hold_messages_for_ever() -> None:
    gate = NotifyGate(min_interval_s=900, last_sent={"sensor_fault": 10_000.0})
    assert gate.offer(msg(), 5_000.0, 0) is True
