"""The notifier's parts in process: the outbox's retries, URL scrubbing, what survives a restart,
which events notify, quiet hours, a bounded stop, and that a service without ``notify.urls``
never loads it or Apprise."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.notify import Message
from filamentctl.core.notify_messages import Origin
from filamentctl.core.schema import defaults
from filamentctl.service import notify
from filamentctl.service.bus import EventBus
from filamentctl.service.notify import Notifier, Outbox, Targets, sanitise
from filamentctl.store.notify_state import NotifyStateStore
from tests.capture import CaptureServer
from tests.helpers import REPO, wait_until

SENSOR_STARTED = {"type": "simulated", "event": "started", "message": "sensor failing: x"}


def settings(**values: Any) -> dict[str, Any]:
    out = defaults()
    out["notify.urls"] = "json://127.0.0.1:9/x"
    out.update({k.replace("__", "."): v for k, v in values.items()})
    return out


def notifier(tmp_path: Path, bus: EventBus | None = None, **kw: Any) -> Notifier:
    values = kw.pop("values", None) or settings()
    return Notifier(
        values, bus or EventBus(), Origin("default", "host"), NotifyStateStore(tmp_path), **kw
    )


# -- the outbox ----------------------------------------------------------------------------------


def test_failed_targets_are_retried_with_growing_backoff_then_given_up() -> None:
    box = Outbox(rng=lambda: 0.0)
    box.put(Message("sensor_fault", "t", "b"), now=0.0)
    item = box.take_due(0.0)
    assert item is not None and box.take_due(0.0) is None
    delays = []
    now = 0.0
    for _ in range(4):
        delay = box.retry(item, {1}, now)
        assert delay is not None
        delays.append(delay)
        assert box.take_due(now + delay - 0.01) is None  # not before its time
        now += delay
        item = box.take_due(now)
        assert item is not None and item.targets == {1}  # only the target that failed
    assert delays == [5.0, 10.0, 20.0, 40.0]
    assert box.retry(item, {1}, notify.MAX_AGE_S) is None and box.dropped == 1


def test_a_full_outbox_drops_the_oldest_message_that_is_not_about_safety() -> None:
    box = Outbox(limit=3)
    latch = Message("heater_latched", "latch", "b")
    box.put(latch, 0.0)
    box.put(Message("sensor_fault", "old", "b"), 1.0)
    box.put(Message("sensor_fault", "new", "b"), 2.0)
    dropped = box.put(Message("drying_done", "newest", "b"), 3.0)
    assert dropped is not None and dropped.title == "old"
    assert [p.message.title for p in box.items] == ["latch", "new", "newest"]


# -- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ntfy://user:pa55word@ntfy.example.org/topic-s3cr3t",
        "tgram://123456789:AAbbCCddEEff/987654",
        "json://127.0.0.1:8080/path-s3cr3t?token=qu3ry-s3cr3t",
    ],
)
def test_error_texts_lose_every_part_of_the_url(url: str) -> None:
    text = f"A Connection error occurred sending to {url} ({url.split('://')[1]}): refused"
    clean = sanitise(text, url)
    for secret in ("pa55word", "topic-s3cr3t", "AAbbCCddEEff", "path-s3cr3t", "qu3ry-s3cr3t"):
        assert secret not in clean
    assert "refused" in clean


def test_a_failed_send_is_described_by_target_number_without_the_url() -> None:
    with CaptureServer("error") as cap:
        targets = Targets([cap.url("tok-abcdef123")])
        error = targets.send(0, Message("test", "t", "b"))
        assert error is not None and "500" in error and "tok-abcdef123" not in error
        assert targets.describe(0) == "1 (JSON)"


# -- rules ---------------------------------------------------------------------------------------


def test_the_rate_limit_and_the_humidity_alarm_survive_a_restart(tmp_path: Path) -> None:
    values = settings(notify__humidity_above=40.0, notify__humidity_for=5.0)
    first = notifier(tmp_path, values=values)
    first.handle("sensor", SENSOR_STARTED)
    for t in range(0, 7):
        first.handle("reading", {"humidity": 70.0, "time_ns": (1000 + t) * 10**9})
    assert first.status()["pending"] == 2  # sensor fault + humidity alarm, not sent: no thread
    again = notifier(tmp_path, values=values)  # a restart a moment later
    again.handle("sensor", SENSOR_STARTED)
    for t in range(0, 20):
        again.handle("reading", {"humidity": 70.0, "time_ns": (2000 + t) * 10**9})
    section = again.status()
    assert section["pending"] == 0 and section["held"] == {"sensor_fault": 1}
    assert section["humidity_alarm"]["state"] == "alarmed"
    stored = json.loads((tmp_path / "notify-state.json").read_text())
    assert set(stored["last_sent"]) == {"sensor_fault", "humidity_alarm"}


def test_only_the_chosen_events_notify(tmp_path: Path) -> None:
    n = notifier(tmp_path, values=settings(notify__events="drying_done"))
    n.handle("sensor", SENSOR_STARTED)
    n.handle("alert", {"kind": "delivery", "message": "5 failures", "backend": "x"})
    n.handle("drying.started", {"material": "PETG"})
    n.handle("drying.ended", {"material": "PETG", "reason": "done", "water_removed_g": 3.2})
    [entry] = n.status()["recent"]
    assert entry["kind"] == "drying_done" and "PETG" in entry["title"]


def test_quiet_hours_hold_everything_but_a_heater_latch(tmp_path: Path) -> None:
    def at_three_am(_t: float) -> time.struct_time:
        return time.struct_time((2026, 11, 30, 3, 0, 0, 0, 334, -1))

    n = notifier(
        tmp_path, values=settings(notify__quiet_hours="22:00-07:00"), localtime=at_three_am
    )
    n.handle("sensor", SENSOR_STARTED)
    n.handle("alert", {"kind": "heater_latched", "cause": "61.0 °C ≥ cutoff 60.0 °C"})
    section = n.status()
    assert section["held"] == {"sensor_fault": 1} and section["pending"] == 1
    assert [e["state"] for e in section["recent"]] == ["held", "pending"]


def test_reconfigure_applies_new_rules_at_once(tmp_path: Path) -> None:
    n = notifier(tmp_path)
    n.handle("sensor", SENSOR_STARTED)
    n.handle("sensor", {**SENSOR_STARTED, "event": "ended"})
    assert n.status()["held"] == {"sensor_fault": 1}
    n.reconfigure(settings(notify__min_interval=0.0, notify__events="all"))
    n.flush_due()
    section = n.status()
    assert section["held"] == {} and section["pending"] == 2 and section["min_interval_s"] == 0


# -- threads -------------------------------------------------------------------------------------


def test_bus_events_are_sent_and_stop_does_not_wait_for_a_hanging_server(tmp_path: Path) -> None:
    bus = EventBus()
    with CaptureServer() as cap:
        n = notifier(tmp_path, bus, values={**settings(), "notify.urls": cap.url()})
        n.start()
        bus.publish("alert", {"kind": "heater_latched", "cause": "61.0 °C ≥ cutoff 60.0 °C"})
        cap.wait_for(1)
        wait_until(lambda: n.status()["sent"] == 1, what="the send to be counted")
        cap.set_mode("hang")
        bus.publish("sensor", SENSOR_STARTED)
        cap.wait_for(2, status=None)
        n.stop(timeout=0.5)
        # stop() returned while the send is still stuck in the hanging request.
        assert cap.count(status=0) == 1
        assert any(t.name == "notify-send" and t.is_alive() for t in n._threads)


def test_a_service_without_urls_loads_neither_the_notifier_nor_apprise() -> None:
    code = """
import json, sys, tempfile
from gpiozero.pins.mock import MockFactory
from filamentctl import paths
from filamentctl.core.schema import defaults
from filamentctl.service.app import Service
home = tempfile.mkdtemp(prefix="fc")
service = Service({**defaults(), "sensor.read_interval": 0.1},
                  paths.resolve({"FILAMENTCTL_HOME": home}), simulate=True,
                  pin_factory=MockFactory())
service.start()
section = service.status()["notifications"]
service.stop()
print(json.dumps([section, sorted(m for m in sys.modules if "apprise" in m or "notify" in m)]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    section, modules = json.loads(out.stdout.splitlines()[-1])
    assert section == {"enabled": False, "targets": 0}
    assert "apprise" not in modules and "filamentctl.service.notify" not in modules
