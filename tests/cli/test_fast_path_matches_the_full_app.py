"""The entry point's fast path (no Typer) prints exactly what the full Typer app prints.

Each command line runs twice in a fresh interpreter, through ``main(fast=True)`` (what the
``filamentctl`` command does) and ``main(fast=False)`` (the Typer app only), and stdout, stderr
and the exit code must be byte-identical: the commands the fast path answers, their root options,
the root ``--help``, and the lines it must leave to Click (bad options, bad values, other help).

The service side is a real Unix socket that replays replies recorded from a real simulated
service: a live service's uptime and reading age would change between the two runs, and the
comparison is about the CLI, which sees the same bytes either way.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from filamentctl.cli.fast import recognise
from tests.helpers import in_process_service, raw_request, short_home

REPO = Path(__file__).resolve().parents[2]
# Runs the entry point as the console script does; FAST_PROBE names a file that receives whether
# Typer was imported by the end (written at exit, so it sees the whole run).
RUNNER = (
    "import atexit, os, sys\n"
    "from filamentctl.cli.main import main\n"
    "probe = os.environ.get('FAST_PROBE')\n"
    "if probe:\n"
    "    atexit.register(lambda: open(probe, 'w').write(str('typer' in sys.modules)))\n"
    "main(sys.argv[2:], fast=sys.argv[1] == 'fast')\n"
)


class ReplayService:
    """A Unix socket answering each request with the reply recorded for its op."""

    def __init__(self, path: Path, replies: Mapping[str, dict[str, Any]]) -> None:
        self.path = path
        self.replies = replies
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with conn:
                for line in conn.makefile("rb"):
                    request = json.loads(line)
                    reply = {**self.replies[request["op"]], "id": request["id"]}
                    conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def replies() -> dict[str, dict[str, Any]]:
    """``status`` and ``read`` as a real simulated service answers them (heater and fan on)."""
    from tests.helpers import settings

    values = settings(
        sensor__read_interval=0.1, heater__enabled=True, fan__enabled=True, sensor__type="simulated"
    )
    with in_process_service(values) as service:
        from tests.helpers import wait_until

        wait_until(lambda: service.sampler.latest is not None, what="a first reading")
        recorded = {
            op: raw_request(service.paths.socket, json.dumps({"id": 1, "op": op}).encode() + b"\n")[
                0
            ]
            for op in ("status", "read")
        }
    for reply in recorded.values():
        assert reply["ok"], reply
    return recorded


@pytest.fixture(scope="module")
def home(replies: dict[str, dict[str, Any]]) -> Iterator[Path]:
    """A FILAMENTCTL_HOME whose default box has a replaying service, and whose box ``b1`` has
    none; ``bad.sock`` answers every op with an error reply."""
    base = short_home()
    run = base / "run"
    run.mkdir(mode=0o750)
    good = ReplayService(run / "filamentctl.sock", replies)
    error = {"v": 1, "ok": False, "error": {"code": "internal", "message": "boom: disk on fire"}}
    bad = ReplayService(base / "bad.sock", {"status": error, "read": error})
    try:
        yield base
    finally:
        good.close()
        bad.close()
        shutil.rmtree(base, ignore_errors=True)


def run(
    way: str, args: list[str], home: Path, extra_env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], bool]:
    """(the finished process, whether it imported Typer)."""
    probe = Path(tempfile.mkdtemp(prefix="fcprobe")) / "typer"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
    env.pop("COLUMNS", None)
    env.update({"FILAMENTCTL_HOME": str(home), "FAST_PROBE": str(probe), **(extra_env or {})})
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, way, *args],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=REPO,
    )
    typer_loaded = probe.read_text() == "True"
    shutil.rmtree(probe.parent, ignore_errors=True)
    return proc, typer_loaded


def both_ways(
    args: list[str], home: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], bool]:
    """Run ``args`` both ways, assert identical results; returns the fast run and whether it
    imported Typer."""
    fast, fast_typer = run("fast", args, home, env)
    full, full_typer = run("full", args, home, env)
    assert full_typer, "the full app runs through Typer"
    assert (fast.returncode, fast.stdout.decode(), fast.stderr.decode()) == (
        full.returncode,
        full.stdout.decode(),
        full.stderr.decode(),
    ), f"filamentctl {' '.join(args)}"
    return fast, fast_typer


ANSWERED = [
    ["status"],
    ["status", "--json"],
    ["status", "--json", "--json"],
    ["read"],
    ["read", "--json"],
    ["heater", "status"],
    ["heater", "status", "--json"],
    ["fan", "status"],
    ["fan", "status", "--json"],
    ["--debug", "status", "--json"],
]


@pytest.mark.parametrize("args", ANSWERED, ids=" ".join)
def test_a_read_only_command_prints_the_same_without_typer(args: list[str], home: Path) -> None:
    fast, typer_loaded = both_ways(args, home)
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout.strip()
    assert not typer_loaded, "the fast path did not answer"


def test_socket_option_and_environment_variable(home: Path) -> None:
    sock = str(home / "run" / "filamentctl.sock")
    for args, env in (
        (["--socket", sock, "status", "--json"], {}),
        ([f"--socket={sock}", "heater", "status"], {}),
        (["status"], {"FILAMENTCTL_SOCKET": sock}),
        (["--socket", str(home / "bad.sock"), "status"], {}),  # an error reply
        (["--socket", str(home / "missing.sock"), "status"], {}),  # no service: exit 3
        (["--socket", str(home / "missing.sock"), "read", "--json"], {}),  # then the sensor
    ):
        fast, typer_loaded = both_ways(args, home, env)
        assert not typer_loaded, args
    refused, _ = both_ways(["--socket", str(home / "bad.sock"), "status"], home)
    assert b"boom: disk on fire" in refused.stderr


def test_box_and_system_root_options(home: Path) -> None:
    for args in (
        ["--box", "b1", "status"],  # no service for that box: exit 3 naming its socket
        ["--box=b1", "fan", "status", "--json"],
        ["--system", "status", "--json"],
        ["--box", "b1", "--system", "heater", "status"],
        ["--debug", "--box", "default", "status"],
    ):
        fast, typer_loaded = both_ways(args, home)
        assert not typer_loaded, args
    assert both_ways(["--box", "b1", "status"], home)[0].returncode == 3


CLICKS_OWN = [
    ["status", "--bogus"],
    ["status", "--json", "extra"],
    ["status", "--watch", "--interval", "0"],
    ["heater", "status", "-q"],
    ["heater"],
    [],
    ["--box", "BAD", "status"],
    ["--box=", "status"],
    ["--socket"],
    ["--socket", "", "status"],
    ["--socket", "-x", "status"],
    ["--system=1", "status"],
    ["--box", "b1", "--box", "b2", "status"],
    ["status", "--help"],
    ["heater", "status", "--help"],
    ["read", "-h"],
    ["--version"],
    ["--", "status"],
]


@pytest.mark.parametrize("args", CLICKS_OWN, ids=lambda a: " ".join(a) or "(nothing)")
def test_what_the_fast_path_leaves_to_click_is_unchanged(args: list[str], home: Path) -> None:
    _, typer_loaded = both_ways(args, home)
    assert typer_loaded, "Click must judge this command line"


@pytest.mark.parametrize("columns", ["80", "200", "79", "60"])
def test_root_help_is_clicks_at_every_width(columns: str, home: Path) -> None:
    for flag in ("--help", "-h"):
        fast, typer_loaded = both_ways([flag], home, {"COLUMNS": columns})
        assert fast.returncode == 0
        assert fast.stdout.startswith(b"Usage: filamentctl [OPTIONS] COMMAND")
        # The stored text is Click's at 80 columns; narrower terminals get Click itself.
        assert typer_loaded == (int(columns) < 80)


def test_recognising_changes_nothing_and_refuses_completion() -> None:
    before = dict(os.environ)
    assert recognise(["--box", "b1", "--system", "status"], {}) is not None
    assert dict(os.environ) == before
    assert recognise(["status"], {"_FILAMENTCTL_COMPLETE": "bash_complete"}) is None
    assert recognise(["history"], {}) is None
    assert recognise(["read", "--direct", "--json"], {}) is not None


def test_web_without_typer_and_what_it_leaves_to_click(home: Path) -> None:
    """``web`` runs the gateway with no Typer (its resident memory counts against the gateway's
    40 MB goal). The running gateway itself is tested through this path in tests/gateways; here,
    with no service, its start-up error and Click's own errors must match the full app's (with
    --debug a traceback shows where it came from, which differs by design)."""
    missing = ["--socket", str(home / "missing.sock")]
    for args in (
        [*missing, "web"],
        [*missing, "web", "--listen", "127.0.0.1:8780"],
        [*missing, "web", "--listen=127.0.0.1:8780"],
        ["--box", "b1", "web"],
    ):
        fast, typer_loaded = both_ways(args, home)
        assert not typer_loaded, args
        assert fast.returncode == 3, (args, fast.stderr)
    for args in (
        [*missing, "web", "--listen"],
        [*missing, "web", "--listen="],
        [*missing, "web", "--bogus"],
        [*missing, "web", "--listen", "-x"],
        [*missing, "web", "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"],
        [*missing, "web", "--help"],
        [*missing, "web", "extra"],
    ):
        _, typer_loaded = both_ways(args, home)
        assert typer_loaded, f"Click must judge: {args}"
