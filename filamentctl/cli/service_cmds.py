"""``filamentctl run`` (the service) and ``filamentctl demo`` (a simulated box, watched live)."""

from __future__ import annotations

import os
import signal
import sys
import time
from enum import StrEnum

import typer

from filamentctl.cli.common import ctx_of, examples
from filamentctl.errors import UserError


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command(
        short_help="Run the service in the foreground (systemd runs exactly this).",
        epilog=examples(
            "filamentctl run --simulate          # no hardware needed",
            "filamentctl run --log-format json   # one JSON object per log line",
        ),
    )(run)
    app.command(
        short_help="Try it: a simulated box and its dashboard, stopped when you quit.",
        epilog=examples(
            "filamentctl demo",
            "filamentctl demo --plain            # the status text instead of the dashboard",
        ),
    )(demo)


def run(
    ctx: typer.Context,
    simulate: bool = typer.Option(
        False, "--simulate", help="Simulated sensor and relays: no hardware needed."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Debug logging (batch previews; never secrets)."
    ),
    log_format: LogFormat | None = typer.Option(
        None, "--log-format", help="Log line format (default: the log.format setting)."
    ),
) -> None:
    """Run the service in the foreground (systemd runs exactly this)."""
    from filamentctl.service.main import run as run_service

    # --simulate is a CLI flag: it outranks stored and env values (docs/configuration.md), and
    # must be in place before the settings are validated (a bme280's read-interval floor would
    # apply).
    overrides = {"sensor.type": "simulated"} if simulate else None
    code = run_service(
        simulate=simulate,
        debug=debug or ctx_of(ctx).debug,
        log_format=log_format.value if log_format is not None else None,
        overrides=overrides,
    )
    raise typer.Exit(code)


# The demo box: a heater band above room temperature and a humidity band the fan can reach, so
# both relays visibly work within a few minutes.
DEMO_SETTINGS = {
    "FILAMENTCTL_SENSOR__READ_INTERVAL": "1",
    "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "1",
    "FILAMENTCTL_HEATER__ENABLED": "true",
    "FILAMENTCTL_HEATER__MIN_TEMP_C": "26",
    "FILAMENTCTL_HEATER__MAX_TEMP_C": "28",
    "FILAMENTCTL_HEATER__MIN_CYCLE_S": "5",
    "FILAMENTCTL_FAN__ENABLED": "true",
    "FILAMENTCTL_FAN__MIN_HUMIDITY": "30",
    "FILAMENTCTL_FAN__MAX_HUMIDITY": "40",
    "FILAMENTCTL_FAN__MIN_CYCLE_S": "5",
}


def demo(
    ctx: typer.Context,
    plain: bool = typer.Option(
        False, "--plain", help="Show the live status text instead of the dashboard."
    ),
) -> None:
    """Start a simulated box in the background and watch it live; stops it when you quit.

    Drive it from a second terminal with the `FILAMENTCTL_SOCKET=... filamentctl sim set`
    line the demo prints. In the dashboard, d (or 'Dry: start…' in the ctrl+p palette) starts a
    drying session on the simulated spool. Without an interactive terminal it shows the status
    text.
    """
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from filamentctl.client import Client

    # SIGTERM or a closed terminal (SIGHUP) must still stop the demo's service and remove its
    # directory: turn them into SystemExit so the cleanup below runs.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    home = Path(tempfile.mkdtemp(prefix="filamentctl-demo-"))
    env = {**os.environ, **DEMO_SETTINGS, "FILAMENTCTL_HOME": str(home)}
    env.pop("FILAMENTCTL_SOCKET", None)
    log_path = home / "service.log"
    socket_path = home / "run" / "filamentctl.sock"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "run", "--simulate"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with Client.connect(socket_path, timeout=2.0) as client:
                    client.call("ping")
                break
            except UserError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                    raise UserError("the demo service did not start: " + " | ".join(tail)) from None
                time.sleep(0.1)
        os.environ["FILAMENTCTL_SOCKET"] = str(socket_path)
        ctx_of(ctx).socket = socket_path
        _watch(ctx, plain)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def drive_hint(socket: object) -> str:
    """How to drive the demo's simulated box from a second terminal (one line)."""
    return f"FILAMENTCTL_SOCKET={socket} filamentctl sim set --temperature 20"


def _watch(ctx: typer.Context, plain: bool) -> None:
    from filamentctl.cli.tui import terminal_problem

    socket = ctx_of(ctx).socket
    if not plain and terminal_problem() is None:
        try:
            from filamentctl.tui.app import run_dashboard
        except ImportError:
            pass
        else:
            run_dashboard(socket, hint=f"drive it from another terminal: {drive_hint(socket)}")
            return
    from filamentctl.cli.data import status

    sys.stderr.write(
        f"demo: a simulated box is running; try in another terminal:\n  {drive_hint(socket)}\n"
        f"  FILAMENTCTL_SOCKET={socket} filamentctl dry start pla\n"
    )
    status(ctx, json_=False, watch=True, interval=1.0, check=False, quiet=False)
