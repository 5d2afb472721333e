"""The real dashboard in a real terminal (tmux, 120×40) against a real simulated service process:
values appear, ``h`` + ``y`` switches the heater on (seen in ``status --json``), stopping the
service shows DISCONNECTED, restarting it brings the values back, and ``q`` exits. At 60×20 (a
phone's SSH client) the heater and fan states are on screen."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import REPO, ServiceProcess, wait_until
from tests.servers import unavailable

TMUX = shutil.which("tmux")
VALUE = re.compile(r"\d+\.\d °F")


def _dashboard_argv() -> list[str]:
    """``filamentctl tui`` once the command is registered; until then the same entry point."""
    from filamentctl.cli.main import app

    names = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    if "tui" in names:
        return [sys.executable, "-m", "filamentctl", "tui"]
    return [
        sys.executable,
        "-c",
        "import os, pathlib; from filamentctl.tui.app import run_dashboard; "
        "run_dashboard(pathlib.Path(os.environ['FILAMENTCTL_SOCKET']))",
    ]


class Terminal:
    """A private tmux server (its own -L socket) with one pane (120×40 by default) running
    ``argv``."""

    def __init__(
        self, argv: list[str], env: dict[str, str], size: tuple[int, int] = (120, 40)
    ) -> None:
        assert TMUX is not None
        self.name = f"fc-tui-{uuid.uuid4().hex[:8]}"
        self.base = [TMUX, "-L", self.name, "-f", "/dev/null"]
        # COLUMNS/LINES (set in some test environments) would override the pane's real size.
        command = " ".join(
            [
                "env",
                "-u",
                "COLUMNS",
                "-u",
                "LINES",
                *(f"{k}={v}" for k, v in env.items()),
                *(subprocess.list2cmdline([a]) for a in argv),
            ]
        )
        subprocess.run(
            [
                *self.base,
                "new-session",
                *("-d", "-s", "dash", "-x", str(size[0]), "-y", str(size[1])),
                command,
            ],
            check=True,
            cwd=REPO,
        )

    def screen(self) -> str:
        out = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "dash"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "dash", *keys], check=True)

    def alive(self) -> bool:
        return (
            subprocess.run(
                [*self.base, "has-session", "-t", "dash"], capture_output=True, check=False
            ).returncode
            == 0
        )

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def service() -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        env={
            "FILAMENTCTL_SENSOR__READ_INTERVAL": "1",
            "FILAMENTCTL_HEATER__ENABLED": "true",
            "FILAMENTCTL_FAN__ENABLED": "true",
        }
    )
    svc.start()
    yield svc
    svc.cleanup()


def heater_state(svc: ServiceProcess) -> dict[str, object]:
    out = svc.cli("status", "--json")
    assert out.returncode == 0, out.stderr
    heater = json.loads(out.stdout)["heater"]
    assert isinstance(heater, dict)
    return heater


def need_tmux() -> None:
    if TMUX is None:
        unavailable("tmux is not installed")


def test_dashboard_in_a_real_terminal_against_a_real_service(service: ServiceProcess) -> None:
    need_tmux()
    env = {"FILAMENTCTL_SOCKET": str(service.socket), "TERM": "xterm-256color"}
    term = Terminal(_dashboard_argv(), env)
    try:
        wait_until(
            lambda: VALUE.search(term.screen()) and "connected to filamentctl" in term.screen(),
            timeout=30,
            what="live values on the dashboard",
        )
        assert "DISCONNECTED" not in term.screen()

        term.keys("h")
        wait_until(
            lambda: "Switch the heater ON by hand?" in term.screen(), what="the confirmation"
        )
        assert heater_state(service).get("override") != "on"
        term.keys("y")
        wait_until(
            lambda: heater_state(service).get("override") == "on", what="heater on in status"
        )
        assert heater_state(service).get("on") is True
        wait_until(lambda: "manual on" in term.screen(), what="the heater panel showing it")

        service.stop()
        wait_until(lambda: "DISCONNECTED" in term.screen(), timeout=15, what="the banner")
        assert "STALE" in term.screen()

        service.start()
        wait_until(
            lambda: (
                "DISCONNECTED" not in term.screen()
                and "STALE" not in term.screen()
                and VALUE.search(term.screen())
            ),
            timeout=30,
            what="fresh values after the restart",
        )

        term.keys("q")
        wait_until(lambda: not term.alive(), timeout=15, what="the dashboard to exit")
    except BaseException:
        sys.stderr.write("--- last screen ---\n" + term.screen() + "\n--- service log ---\n")
        sys.stderr.write(service.log()[-3000:])
        raise
    finally:
        term.close()


RELAY_STATE = re.compile(r"│ (ON|OFF) +(auto|manual|fault)")


def test_at_60x20_the_heater_and_fan_states_are_on_screen(service: ServiceProcess) -> None:
    need_tmux()
    env = {"FILAMENTCTL_SOCKET": str(service.socket), "TERM": "xterm-256color"}
    term = Terminal(_dashboard_argv(), env, size=(60, 20))
    try:
        wait_until(
            lambda: VALUE.search(term.screen()) and len(RELAY_STATE.findall(term.screen())) == 2,
            timeout=30,
            what="readings and both relay states at 60x20",
        )
        lines = term.screen().splitlines()
        heater = next(i for i, line in enumerate(lines) if "Heater" in line)
        fan = next(i for i, line in enumerate(lines) if "─ Fan " in line)
        assert RELAY_STATE.search(lines[heater + 1]) and RELAY_STATE.search(lines[fan + 1])
        assert all(len(line) <= 60 for line in lines)
        term.keys("q")
        wait_until(lambda: not term.alive(), timeout=15, what="the dashboard to exit")
    except BaseException:
        sys.stderr.write("--- last screen ---\n" + term.screen() + "\n")
        raise
    finally:
        term.close()
