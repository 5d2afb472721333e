"""The real dashboard in a real terminal (tmux, 120×40) against a real simulated service process:
values appear, ``h`` + ``y`` switches the heater on (seen in ``status --json``), stopping the
service shows DISCONNECTED, restarting it brings the values back, and ``q`` exits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import REPO, ServiceProcess, wait_until

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
    """A private tmux server (its own -L socket) with one 120×40 pane running ``argv``."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        assert TMUX is not None
        self.name = f"fc-tui-{uuid.uuid4().hex[:8]}"
        self.base = [TMUX, "-L", self.name, "-f", "/dev/null"]
        command = " ".join(
            [
                "env",
                *(f"{k}={v}" for k, v in env.items()),
                *(subprocess.list2cmdline([a]) for a in argv),
            ]
        )
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", command],
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


def test_dashboard_in_a_real_terminal_against_a_real_service(service: ServiceProcess) -> None:
    if TMUX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is required under CI")
        pytest.skip("tmux is not installed")
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
