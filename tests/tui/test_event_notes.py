"""The event log's words for each service event and request reply (pure: no app needed)."""

from __future__ import annotations

from typing import Any

import pytest

from filamentctl.tui.notes import Note, event_note, flush_note, relay_reply_note


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "relay",
            {"relay": "heater", "on": True, "reason": "auto: 17.9 °C", "time": "x"},
            Note("heater ON: auto: 17.9 °C", at="x", status_changed=True),
        ),
        ("relay", {"relay": "lamp", "on": False}, Note("lamp OFF: ", at="—")),
        ("sensor", {"event": "failed"}, Note("sensor: failed")),
        ("sensor", {"event": "failed", "message": "no answer"}, Note("sensor: no answer")),
        ("alert", {"message": "5 failures"}, Note("ALERT: 5 failures", status_changed=True)),
        ("storage.dropped", {"dropped": 7}, Note("storage: 7 readings dropped (backlog full)")),
        (
            "storage.rejected",
            {"backend": "influxdb_v1", "count": 2, "status": 400, "error": "bad field"},
            Note("storage: influxdb_v1 rejected 2 readings (400): bad field"),
        ),
        ("storage.rejected", "not an object", Note("storage: ? rejected ? readings (?): ")),
        (
            "storage.recovered",
            {"failures": 3},
            Note("storage: delivery recovered after 3 failures", status_changed=True),
        ),
        ("drying.started", {"message": "drying PLA"}, Note("drying PLA", status_changed=True)),
        ("drying.vented", {}, Note("drying.vented", status_changed=True)),
        ("gateway.odd", {"message": "hello"}, Note("gateway.odd: hello")),
        ("gateway.odd", [1, 2], Note("gateway.odd: [1, 2]")),
    ],
)
def test_each_event_has_its_words(name: str, data: Any, expected: Note) -> None:
    assert event_note(name, data) == expected


def test_flush_replies() -> None:
    assert flush_note({"delivered": 3, "remaining": 0}, None) == "flush: 3 delivered, 0 left"
    assert (
        flush_note({"delivered": 1, "remaining": 2, "error": "timeout"}, None)
        == "flush: 1 delivered, 2 left (timeout)"
    )
    assert flush_note(None, "no service") == "flush failed: no service"


def test_relay_replies_name_the_mode_or_the_reset() -> None:
    state = {"on": False, "override": "off", "reason": "manual off"}
    assert relay_reply_note("fan", "set", state) == "fan mode off: OFF, manual off"
    assert relay_reply_note("heater", "set", {"on": True}) == "heater mode auto: ON, "
    assert relay_reply_note("heater", "reset", {"reason": "r"}) == "heater reset: OFF, r"
