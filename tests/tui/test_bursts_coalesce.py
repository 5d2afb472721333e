"""Bursts the screen cannot keep up with: waiting readings are handled as one message that loses
none of them, and of several waiting statuses only the newest is shown.

The messages are posted straight to the dashboard screen, as the link worker does, but all before
the screen's queue runs: that is a burst, whatever the machine's speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Digits

from filamentctl.tui.messages import (
    FlushProgressed,
    ReadingReceived,
    ServiceEventReceived,
    StatusReceived,
)
from filamentctl.tui.widgets.chart import HistoryChart
from filamentctl.tui.widgets.eventlog import EventLog
from tests.tui.driving import dashboard, run, wait_for
from tests.tui.fakeserver import READING, FakeService


def reading(i: int) -> dict[str, Any]:
    return {
        **READING,
        "time_ns": int(READING["time_ns"]) + i * 1_000_000,  # 1 ms apart: none trimmed
        "seq": 1000 + i,
        "temperature_c": 20.0 + i / 100,
    }


def test_a_burst_of_readings_is_one_update_and_the_chart_keeps_every_reading(
    service: FakeService, socket_path: Path
) -> None:
    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24)) as (app, pilot):
            before = len(app.dashboard.history)
            burst = [ReadingReceived([reading(i)]) for i in range(50)]
            for message in burst:
                app.dashboard.post_message(message)
            digits = app.dashboard.query_one("#temperature", Digits)
            await wait_for(pilot, lambda: digits.value == "20.5", "the last reading shown")
            # Handled as one message: the last, carrying the 49 before it in order.
            assert [r["seq"] for r in burst[-1].readings] == [1000 + i for i in range(50)]
            seqs = [r.get("seq") for r in app.dashboard.history]
            assert len(seqs) == before + 50 and seqs[-50:] == [1000 + i for i in range(50)]
            chart = app.dashboard.query_one("#chart", HistoryChart)
            assert len(chart.readings) == before + 50

    run(scenario)


def test_of_waiting_statuses_only_the_newest_is_handled(socket_path: Path) -> None:
    """No service here: nothing but these two statuses says the dashboard is connected."""

    async def scenario() -> None:
        async with dashboard(socket_path, size=(80, 24), connect=False) as (app, pilot):
            await wait_for(pilot, lambda: app.dashboard.showing, "the dashboard")
            app.dashboard.post_message(StatusReceived({"version": "old"}))
            app.dashboard.post_message(StatusReceived({"version": "new"}))
            log = app.dashboard.query_one(EventLog)
            await wait_for(pilot, lambda: "connected to" in "\n".join(log.entries), "the note")
            lines = [e for e in log.entries if "connected to filamentctl" in e]
            assert len(lines) == 1 and lines[0].endswith("connected to filamentctl new"), lines

    run(scenario)


def test_only_readings_statuses_and_flush_progress_replace_one_another() -> None:
    event = ServiceEventReceived("alert", {"message": "x"})
    assert StatusReceived({}).can_replace(StatusReceived({}))
    assert not StatusReceived({}).can_replace(event)
    assert not ReadingReceived([reading(1)]).can_replace(StatusReceived({}))
    assert FlushProgressed(1, 3).can_replace(FlushProgressed(2, 3))
    assert not ServiceEventReceived("alert", {}).can_replace(event)  # every event is logged
