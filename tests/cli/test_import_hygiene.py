"""Importing the CLI must not load the heavy libraries: each costs 200-350 ms on a Pi-class CPU."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "textual",
    "influxdb_client",
    "psycopg",
    "hvac",
    "adafruit_bme280",
    "adafruit_dht",
    "board",
    "busio",
    "digitalio",
    "gpiozero",
    "sqlcipher3",
    "rich",
    "prometheus_client",
    "tenacity",
    "apprise",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_cli_loads_no_heavy_library() -> None:
    loaded = _modules_after("import filamentctl.cli.main")
    bad = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert bad == [], f"importing the CLI loaded: {bad}"


def test_the_notify_command_loads_apprise_only_when_it_sends() -> None:
    loaded = _modules_after("import filamentctl.cli.main, filamentctl.cli.notify")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_importing_client_and_protocol_loads_no_heavy_library() -> None:
    loaded = _modules_after("import filamentctl.client, filamentctl.protocol")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_detector_sees_a_heavy_import() -> None:
    """The check above can fail: importing the TUI does load textual."""
    loaded = _modules_after("import filamentctl.tui.app")
    assert "textual" in loaded
