"""The dashboard switches between the boxes of one machine (``b``, or "Switch box…" in the
palette): two real simulated services, ``--box a`` at 30 °C and ``--box b`` at 15 °C, under one
``FILAMENTCTL_HOME``; the real app under Pilot starts on box a and switches to box b."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from textual.widgets import OptionList

from filamentctl.tui.screens.boxes import BoxScreen
from tests.cli.test_boxes import BoxProcess, fc
from tests.helpers import short_home
from tests.tui.driving import dashboard, run, screen_text, wait_for


@pytest.fixture
def two_boxes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BoxProcess, BoxProcess]]:
    home = short_home()
    a, b = BoxProcess(home, "a"), BoxProcess(home, "b")
    for box in (a, b):
        box.env["FILAMENTCTL_FAN__ENABLED"] = "true"  # so that `f` has something to switch
    try:
        a.start()
        b.start()
        assert fc(home, "--box", "a", "sim", "set", "--temperature", "30").returncode == 0
        assert fc(home, "--box", "b", "sim", "set", "--temperature", "15").returncode == 0
        # The app finds the boxes where the CLI would: under this FILAMENTCTL_HOME.
        monkeypatch.setenv("FILAMENTCTL_HOME", str(home))
        yield a, b
    finally:
        a.cleanup()
        b.stop()


def fan_override(box: BoxProcess) -> object:
    status = json.loads(fc(box.home, "--box", box.box, "status", "--json").stdout)
    return status["fan"].get("override")


def links(app: object) -> int:
    """Link workers still running (the old box's, until it notices it was replaced)."""
    workers = app.workers  # type: ignore[attr-defined]
    return sum(1 for w in workers if w.name == "service link" and not w.is_finished)


def temperature(app: object) -> object:
    reading = app.dashboard.reading or {}  # type: ignore[attr-defined]
    return reading.get("temperature_c")


def test_b_lists_the_boxes_and_switching_shows_the_other_box_only(
    two_boxes: tuple[BoxProcess, BoxProcess],
) -> None:
    a, b = two_boxes

    async def scenario() -> None:
        async with dashboard(
            a.socket, size=(100, 30), connect=False, box="a", status_every_s=0.2
        ) as (app, pilot):
            await wait_for(pilot, lambda: temperature(app) == 30.0, "box a's 30 °C reading")
            assert "box a" in app.dashboard.subtitle
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, BoxScreen), "the box list")
            listed = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
            assert [line.split()[0] for line in listed] == ["a", "b"], listed
            assert "(shown)" in listed[0] and "running" in listed[1]
            await pilot.press("down", "enter")
            await wait_for(pilot, lambda: app.socket_path == b.socket, "the switch")
            # Nothing of box a is left on show while box b's data comes in.
            await wait_for(pilot, lambda: temperature(app) == 15.0, "box b's 15 °C reading")
            assert app.box == "b" and "box b" in app.dashboard.subtitle
            assert all(r.get("temperature_c") == 15.0 for r in app.dashboard.history[-3:])
            # Box a's link thread ends (cancelled, its stream interrupted); whatever it posted
            # before that is in the queue by then, and handled by the next pause.
            await wait_for(pilot, lambda: links(app) == 1, "box a's link to end")
            await pilot.pause()
            assert temperature(app) == 15.0
            assert "showing box b" in screen_text(app)
            # Control goes to the box shown: the fan request (auto → on) reaches box b.
            await pilot.press("f")
            await wait_for(pilot, lambda: fan_override(b) == "on", "box b's fan override")
            assert fan_override(a) != "on"

    run(scenario)


def test_with_one_box_b_says_there_is_no_other(two_boxes: tuple[BoxProcess, BoxProcess]) -> None:
    a, b = two_boxes
    b.stop()
    (b.home / "boxes" / "b").rename(b.home / "gone-b")  # box b is no longer on this machine

    async def scenario() -> None:
        async with dashboard(a.socket, size=(100, 30), connect=False, box="a") as (app, pilot):
            await wait_for(pilot, lambda: app.connected, "box a")
            await pilot.press("b")
            # The note and the choice not to list the boxes come from one key press.
            await wait_for(pilot, lambda: "no other box" in screen_text(app), "the note")
            assert not isinstance(app.screen, BoxScreen)

    run(scenario)
