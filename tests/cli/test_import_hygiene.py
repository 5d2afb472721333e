"""Importing the CLI must not load the heavy libraries: each costs 200-350 ms on a Pi-class CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from filamentctl.cli.groups import GROUPS

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


def test_building_every_command_loads_no_heavy_library() -> None:
    """--help and completion build every command group: every command module is imported, so
    a heavy import at the top of any of them (or of what they import) fails here."""
    code = "import filamentctl.cli.main as m\nm.build_app()"
    loaded = _modules_after(code)
    bad = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert bad == [], f"building the CLI loaded: {bad}"
    commands = {m for m in loaded if m.startswith("filamentctl.cli.")}
    assert "filamentctl.cli.tui" in commands and "filamentctl.cli.web" in commands


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_running_one_command_builds_only_its_group_without_heavy_libraries(group: str) -> None:
    """What `filamentctl GROUP ...` builds (main() builds only the named group)."""
    loaded = _modules_after(f"import filamentctl.cli.main as m\nm.build_app({group!r})")
    bad = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert bad == [], f"building `{group}` loaded: {bad}"


def test_the_notify_command_loads_apprise_only_when_it_sends() -> None:
    loaded = _modules_after("import filamentctl.cli.main, filamentctl.cli.notify")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


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


def test_the_web_gateway_loads_neither_typer_nor_the_service_side() -> None:
    """The web gateway's resident memory has a 40 MB goal (bench/web_gateway.py) and aiohttp alone
    takes ~36: what ``filamentctl web`` runs, including a logged line (the log filter masks sink
    secrets), must load no Typer, no sink, no configuration schema and no control state machine
    (together ~6 MB)."""
    code = (
        "import logging, sys\n"
        "from filamentctl.cli.fast import recognise\n"
        "assert recognise(['web', '--listen', '127.0.0.1:1'], {}) is not None\n"
        "from filamentctl.service import logs\n"
        "logs.setup('info', 'text', False)\n"
        "logging.getLogger('filamentctl.web').warning('a line through the secret filter')\n"
        "import filamentctl.gateways.web.main, filamentctl.gateways.web.server, filamentctl.link\n"
    )
    loaded = _modules_after(code)
    unwanted = ("typer", "click", "statistics")
    ours = ("filamentctl.sinks", "filamentctl.core.schema", "filamentctl.core.control")
    bad = sorted(
        m
        for m in loaded
        if m.split(".")[0] in unwanted or any(m == o or m.startswith(o + ".") for o in ours)
    )
    assert bad == [], f"the web gateway loaded: {bad}"
