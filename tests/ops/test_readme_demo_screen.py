"""The README's demo screen shows the bands the demo really uses (it once showed 40/45 °C while
the demo ran 26/28 °C)."""

from __future__ import annotations

import re

from filamentctl.cli.service_cmds import DEMO_SETTINGS
from tests.helpers import REPO


def test_the_readme_demo_screen_matches_the_demo_settings() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    screen = readme.split("./dev demo` starts", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    heater = re.search(r"on < ([\d.]+), off > ([\d.]+), cutoff", screen)
    fan = re.search(r"on > ([\d.]+) %, off < ([\d.]+) %", screen)
    assert heater and fan, "the README's demo screen shows no heater or fan band"
    s = DEMO_SETTINGS
    assert float(heater.group(1)) == float(s["FILAMENTCTL_HEATER__MIN_TEMP_C"])
    assert float(heater.group(2)) == float(s["FILAMENTCTL_HEATER__MAX_TEMP_C"])
    assert float(fan.group(1)) == float(s["FILAMENTCTL_FAN__MAX_HUMIDITY"])
    assert float(fan.group(2)) == float(s["FILAMENTCTL_FAN__MIN_HUMIDITY"])
    assert "FILAMENTCTL_SOCKET=" in screen  # the demo says how to drive it
