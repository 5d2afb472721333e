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
    "aiohttp",
    "paho",
    "yaml",
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


def test_building_every_command_loads_no_mqtt_client() -> None:
    """--help and completion build every command group, `filamentctl mqtt` included."""
    loaded = _modules_after("import filamentctl.cli.main as m\nm.build_app()")
    assert not [m for m in loaded if m.split(".")[0] == "paho"]


def test_importing_client_and_protocol_loads_no_heavy_library() -> None:
    loaded = _modules_after("import filamentctl.client, filamentctl.protocol")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_the_web_command_loads_aiohttp_only_when_it_runs() -> None:
    loaded = _modules_after("import filamentctl.cli.web, filamentctl.gateways.web.main")
    assert not [m for m in loaded if m.split(".")[0] == "aiohttp"]
    assert "aiohttp" in _modules_after("import filamentctl.gateways.web.server")


def test_detector_sees_a_heavy_import() -> None:
    """The check above can fail: importing the TUI does load textual."""
    loaded = _modules_after("import filamentctl.tui.app")
    assert "textual" in loaded
