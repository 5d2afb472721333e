"""Notifications end to end: a real simulated service process (``python -m filamentctl run
--simulate``), its real CLI, and a real HTTP capture server on loopback as the Apprise target
(``json://127.0.0.1:PORT/...``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.capture import CaptureServer
from tests.helpers import ServiceProcess, raw_request, wait_until

TOKEN = "tok-3c0ffee9d8e7"
READ_INTERVAL = 0.2


def request(proc: ServiceProcess, op: str, args: dict[str, Any] | None = None) -> Any:
    line = json.dumps({"id": 1, "op": op, "args": args or {}}).encode() + b"\n"
    [reply] = raw_request(proc.socket, line, timeout=30)
    assert reply["ok"], reply
    return reply["result"]


def status(proc: ServiceProcess) -> dict[str, Any]:
    result: dict[str, Any] = request(proc, "status")
    return result


def notifications(proc: ServiceProcess) -> dict[str, Any]:
    section: dict[str, Any] = status(proc)["notifications"]
    return section


def wait_readings(proc: ServiceProcess, more: int) -> None:
    """Let the service take ``more`` further readings (no sleeping on a timer)."""
    start = status(proc)["readings_total"]
    wait_until(lambda: status(proc)["readings_total"] >= start + more, what=f"{more} readings")


@pytest.fixture
def cap() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


def start_box(url: str | None, **env: str) -> ServiceProcess:
    """A simulated service whose stored configuration holds ``url`` as notify.urls."""
    proc = ServiceProcess(
        env={
            "FILAMENTCTL_SENSOR__READ_INTERVAL": str(READ_INTERVAL),
            "FILAMENTCTL_SENSOR__STALE_AFTER": "2",
            **env,
        }
    )
    proc.home.mkdir(parents=True, exist_ok=True)
    assert proc.cli("config", "init").returncode == 0
    if url is not None:
        stored = proc.cli("config", "set", "notify.urls", "-", input=url + "\n")
        assert stored.returncode == 0, stored
    return proc.start()


@pytest.fixture
def procs() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for proc in started:
        proc.cleanup()


def test_notify_test_delivers_one_post_via_the_service_and_directly(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(cap.url(TOKEN))
    procs.append(proc)
    result = proc.cli("notify", "test", "--json")
    assert result.returncode == 0, result
    doc = json.loads(result.stdout)
    assert doc["via"] == "service" and doc["ok"] is True
    assert [r["name"] for r in doc["results"]] == ["1 (JSON)"]
    assert cap.count() == 1  # the op answers after the POST: exactly one, already there
    [post] = cap.delivered()
    assert "test notification" in post["title"] and "Box 'default'" in post["message"]
    assert cap.posts[0].path == f"/{TOKEN}"
    # A second test at once is refused: each one reaches the owner's phone, and any member of
    # the socket group may ask.
    again = proc.cli("notify", "test")
    assert again.returncode == 1 and cap.count() == 1
    assert again.stderr.startswith("filamentctl: a test notification went out ")
    assert "try again in" in again.stderr and len(again.stderr.splitlines()) == 1

    proc.stop()
    direct = proc.cli("notify", "test")
    assert direct.returncode == 0, direct
    assert "sent directly" in direct.stdout and "target 1 (JSON): delivered" in direct.stdout
    assert cap.count() == 2
    assert TOKEN not in direct.stdout + direct.stderr + result.stdout + result.stderr


def test_notify_test_fails_with_exit_1_when_a_target_refuses(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(f"{cap.url(TOKEN)}, {cap.url('second')}")
    procs.append(proc)
    cap.set_mode("error")
    result = proc.cli("notify", "test")
    assert result.returncode == 1, result
    assert result.stdout.count("FAILED") == 2 and "500" in result.stdout
    assert result.stderr.startswith("filamentctl: 2 of 2 notification target(s) failed")
    assert TOKEN not in result.stdout + result.stderr


def test_reading_above_the_cutoff_sends_one_post_naming_the_cutoff(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(cap.url(TOKEN), FILAMENTCTL_HEATER__ENABLED="true")
    procs.append(proc)
    assert proc.cli("sim", "set", "--temperature", "61").returncode == 0
    cap.wait_for(1)
    [post] = cap.delivered()
    assert "heater latched OFF" in post["title"]
    assert "61.0 °C ≥ cutoff 60.0 °C" in post["message"]
    assert "`filamentctl heater reset`" in post["message"] and post["type"] == "failure"
    wait_readings(proc, 10)  # the box stays hot: still one message
    assert cap.count() == 1
    assert status(proc)["heater"]["mode"] == "fault"


def test_a_stale_sensor_sends_one_post(cap: CaptureServer, procs: list[ServiceProcess]) -> None:
    proc = start_box(cap.url(TOKEN))
    procs.append(proc)
    wait_readings(proc, 2)
    request(proc, "sim.set", {"fault": "stale"})
    cap.wait_for(1)
    [post] = cap.delivered()
    assert "sensor fault" in post["title"] and "sensor.stale_after = 2 s" in post["message"]
    # More failed reads (and the sensor going stale) while the fault lasts: still one message.
    wait_until(lambda: status(proc)["sensor"]["errors"] >= 10, what="more failed reads")
    assert cap.count() == 1


def test_twenty_flaps_send_at_most_two_messages(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(cap.url(TOKEN))
    procs.append(proc)
    wait_readings(proc, 2)
    for _ in range(20):
        request(proc, "sim.set", {"fault": "error"})
        wait_until(lambda: status(proc)["sensor"]["consecutive_failures"], what="a failure")
        request(proc, "sim.clear")
        wait_until(lambda: status(proc)["sensor"]["consecutive_failures"] == 0, what="a good read")
    wait_until(lambda: notifications(proc)["pending"] == 0, what="the outbox to empty")
    section = notifications(proc)
    assert 1 <= cap.count() <= 2
    # The sensor's own episode logic already folds a flapping sensor into one episode (it ends
    # after 60 s without a failure); whatever still changes is held by notify.min_interval.
    assert section["sent"] == cap.count()


def test_humidity_alarm_fires_once_after_the_duration_not_before(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(cap.url(TOKEN))
    procs.append(proc)
    request(proc, "sim.set", {"humidity": 30.0})
    wait_readings(proc, 2)
    # Live reload: the alarm comes on without a restart.
    for key, value in (("notify.humidity_above", "40"), ("notify.humidity_for", "5s")):
        assert proc.cli("config", "set", key, value).returncode == 0
    assert notifications(proc)["humidity_alarm"]["state"] == "ok"
    pinned_at = time.time()
    request(proc, "sim.set", {"humidity": 70.0})
    cap.wait_for(1)
    [post] = cap.delivered()
    assert (
        "desiccant" in post["message"] and "above notify.humidity_above = 40 %" in post["message"]
    )
    [entry] = [e for e in notifications(proc)["recent"] if e["kind"] == "humidity_alarm"]
    since, at = entry["details"]["since"], entry["details"]["at"]
    # Event order, in the readings' own timestamps: the count started with the 70 % readings
    # and the alarm came from a reading at least 5 s later, not from an earlier one.
    assert since >= pinned_at - 1.0
    assert at - since >= 5.0
    wait_readings(proc, 10)
    assert cap.count() == 1 and notifications(proc)["humidity_alarm"]["state"] == "alarmed"


def test_a_fired_humidity_alarm_does_not_fire_again_after_a_restart(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    env = {"FILAMENTCTL_NOTIFY__HUMIDITY_ABOVE": "40", "FILAMENTCTL_NOTIFY__HUMIDITY_FOR": "1"}
    proc = start_box(cap.url(TOKEN), **env)
    procs.append(proc)
    request(proc, "sim.set", {"humidity": 70.0})
    cap.wait_for(1)
    proc.stop()
    proc.start()  # the simulated box is back at its ambient 50 %: still above 40 %
    first = status(proc)["reading"]
    wait_until(
        lambda: (
            (status(proc)["reading"] or {}).get("time_ns", 0)
            > (first or {}).get("time_ns", 0) + 3e9
        ),
        what="3 s of readings after the restart",
    )
    section = notifications(proc)
    assert section["humidity_alarm"]["state"] == "alarmed"
    assert cap.count() == 1


@pytest.mark.parametrize("mode", ["hang", "error"])
def test_a_hanging_or_failing_notification_service_never_delays_sampling(
    cap: CaptureServer, procs: list[ServiceProcess], mode: str
) -> None:
    # Apprise gives up on a hanging server after its 4 s read timeout: a failure, retried with
    # backoff. Sending inside the sampler would show readings at least that old.
    proc = start_box(cap.url(TOKEN), FILAMENTCTL_HEATER__ENABLED="true")
    procs.append(proc)
    cap.set_mode(mode)  # type: ignore[arg-type]
    request(proc, "sim.set", {"temperature": 61.0})  # latch: one safety notification
    cap.wait_for(1, status=None)
    ages = []
    before = status(proc)["readings_total"]

    def failure_shown() -> bool:
        ages.append(status(proc)["reading"]["age_s"])
        return notifications(proc)["last_error"] is not None

    wait_until(failure_shown, what="the failure in status")
    wait_readings(proc, 10)
    # Sampling went on all along: readings kept coming, none older than one read interval
    # (plus the time a status request itself may wait on two busy cores).
    assert status(proc)["readings_total"] >= before + 10
    assert max(ages) < READ_INTERVAL + 1.5, ages
    shown = proc.cli("status", "--json")
    section = json.loads(shown.stdout)["notifications"]
    assert section["pending"] == 1 and section["failed_attempts"] >= 1
    assert section["last_error"].startswith("target 1 (JSON): ")
    assert section["next_retry_s"] is not None
    assert TOKEN not in shown.stdout
    text = proc.cli("status").stdout
    assert "notify    1 target(s): 0 sent, 1 pending" in text
    assert "last error: target 1 (JSON): " in text
    # Retried later: once the server answers, the message arrives.
    cap.set_mode("ok")
    cap.wait_for(1, timeout=30)
    wait_until(lambda: notifications(proc)["sent"] == 1, what="the retry to succeed")
    assert cap.delivered()[0]["title"].endswith("heater latched OFF")
    assert notifications(proc)["last_error"] is None


def test_no_url_or_token_in_logs_status_config_or_export(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(
        cap.url(TOKEN) + f"?user={TOKEN}u&pass={TOKEN}p", FILAMENTCTL_LOG__LEVEL="debug"
    )
    procs.append(proc)
    cap.set_mode("error")  # failures make the service log (and show) reasons
    request(proc, "sim.set", {"fault": "error"})
    wait_until(lambda: notifications(proc)["last_error"] is not None, what="a failed send")
    assert proc.cli("notify", "test").returncode == 1
    outputs = [
        proc.cli("status"),
        proc.cli("status", "--json"),
        proc.cli("config", "list"),
        proc.cli("config", "list", "--json"),
        proc.cli("config", "export"),
        proc.cli("config", "export", "--all"),
    ]
    assert all(o.returncode == 0 for o in outputs), outputs
    proc.stop()
    texts = [o.stdout + o.stderr for o in outputs] + [proc.log()]
    texts += [p.read_text(errors="replace") for p in proc.home.rglob("*.json")]
    for text in texts:
        assert TOKEN not in text
    assert "notification not sent" in proc.log()  # the failure was logged, without the URL


def test_notifications_switch_on_and_off_without_a_restart(
    cap: CaptureServer, procs: list[ServiceProcess]
) -> None:
    proc = start_box(None)
    procs.append(proc)
    assert notifications(proc) == {"enabled": False, "targets": 0}
    stored = proc.cli("config", "set", "notify.urls", "-", input=cap.url(TOKEN) + "\n")
    assert stored.returncode == 0, stored
    assert notifications(proc)["enabled"] is True
    assert proc.cli("notify", "test").returncode == 0 and cap.count() == 1
    assert proc.cli("config", "unset", "notify.urls").returncode == 0
    assert notifications(proc)["enabled"] is False
    assert proc.cli("notify", "test").returncode == 2
