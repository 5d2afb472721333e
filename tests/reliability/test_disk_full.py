"""A full disk under the history: control goes on, status says so, nothing is lost on recovery.

Two ways to fill the disk, both against a real in-process service (real SQLite, real socket,
gpiozero MockFactory pins):

- ``filesystem``: the state directory is a 4 MB tmpfs and a filler file takes the rest, so SQLite
  gets a real ENOSPC from the kernel (WAL growth and checkpoints included). Needs ``mount``
  privileges (root with CAP_SYS_ADMIN); skipped where the machine does not allow it.
- ``page_limit``: ``PRAGMA max_page_count`` on the history's own connection caps the database at
  its current size: SQLite answers SQLITE_FULL exactly as on a full disk. Runs everywhere, so the
  behaviour stays covered where mounting is not allowed.

While full: readings keep coming (buffered in memory), the heater still switches on and off on
the pins as the simulated temperature crosses the band, and ``status`` shows
``storage.history_error``. When space returns: the error clears and every buffered reading is in
the database (sequence numbers without a gap, nothing counted as dropped), and the file passes
``integrity_check``.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from filamentctl import paths as _paths
from filamentctl.service.app import Service
from tests.helpers import raw_request, settings, short_home, wait_until

pytestmark = pytest.mark.slow

HEATER_PIN = 16


def _settings() -> dict[str, Any]:
    return settings(
        sensor__read_interval=0.1,
        sensor__stale_after=3600.0,
        storage__commit_interval=0.1,
        heater__enabled=True,
        heater__gpio_pin=HEATER_PIN,
        heater__min_temp_c=18.0,
        heater__max_temp_c=22.0,
        heater__cutoff_temp_c=40.0,
        heater__min_cycle_s=0.0,
    )


def _call(svc: Service, op: str, args: dict[str, Any] | None = None) -> Any:
    import json

    line = json.dumps({"id": 1, "op": op, "args": args or {}}).encode() + b"\n"
    [reply] = raw_request(svc.paths.socket, line)
    assert reply["ok"], reply
    return reply["result"]


@contextlib.contextmanager
def _tmpfs(directory: Path, size: str) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); page_limit covers it")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(directory)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=False)


def _fill(directory: Path) -> Path:
    """Write a filler file until the filesystem says ENOSPC; returns the filler."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as fh:
        while True:
            try:
                fh.write(chunk)
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    return filler


@pytest.fixture(params=["filesystem", "page_limit"])
def full_disk_service(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Service, MockFactory, Callable[[], None], Callable[[], None]]]:
    """(service, pins, make the disk full, give the space back)."""
    home = short_home()
    paths = _paths.resolve({"FILAMENTCTL_HOME": str(home)})
    factory = MockFactory()
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, True)
        if request.param == "filesystem":
            stack.enter_context(_tmpfs(paths.state_dir, "4m"))
        svc = Service(_settings(), paths, simulate=True, pin_factory=factory)
        svc.start()
        stack.callback(svc.stop, 2.0)
        fillers: list[Path] = []

        def fill() -> None:
            if request.param == "filesystem":
                fillers.append(_fill(paths.state_dir))
            else:
                database = svc.history.database  # its own connection (see module docstring)
                with database.lock:
                    conn = database.connection()
                    (pages,) = conn.execute("PRAGMA page_count").fetchone()
                    conn.execute(f"PRAGMA max_page_count = {int(pages)}")

        def free() -> None:
            if request.param == "filesystem":
                for filler in fillers:
                    filler.unlink()
            else:
                with svc.history.database.lock:
                    svc.history.database.connection().execute("PRAGMA max_page_count = 1073741823")

        yield svc, factory, fill, free


def test_full_disk_keeps_control_reports_error_and_loses_nothing_when_space_returns(
    full_disk_service: tuple[Service, MockFactory, Callable[[], None], Callable[[], None]],
) -> None:
    svc, factory, fill, free = full_disk_service
    heater = factory.pin(HEATER_PIN)
    wait_until(lambda: svc.history.last_committed_seq() > 0, what="a first commit")

    fill()
    storage = wait_until(
        lambda: (s := _call(svc, "status")["storage"])["history_error"] and s,
        timeout=30,
        what="status to report the history error",
    )
    assert storage["history_error"]
    print(f"history_error while full: {storage['history_error']!r}")
    stuck_at = svc.history.last_committed_seq()

    # Control is unaffected: the heater follows the band on the real (mock) pin.
    _call(svc, "sim.set", {"temperature": 10.0})
    wait_until(lambda: heater.state, what="heater ON below the band while the disk is full")
    assert _call(svc, "status")["heater"]["on"] is True
    _call(svc, "sim.set", {"temperature": 30.0})
    wait_until(lambda: not heater.state, what="heater OFF above the band while the disk is full")
    _call(svc, "sim.clear")

    # Readings go on being taken and wait in memory; nothing reached the database meanwhile.
    wait_until(lambda: svc.history.pending_count() >= 20, what="readings buffered in memory")
    assert svc.history.last_committed_seq() == stuck_at
    assert _call(svc, "status")["storage"]["history_error"]

    free()
    wait_until(
        lambda: _call(svc, "status")["storage"]["history_error"] is None,
        timeout=30,
        what="the error to clear once space returns",
    )
    latest = svc.latest
    assert latest is not None
    wait_until(lambda: svc.history.last_committed_seq() >= latest.seq, what="buffer saved")

    conn = sqlite3.connect(svc.paths.history_db)
    try:
        count, first, last = conn.execute(
            "SELECT COUNT(*), MIN(seq), MAX(seq) FROM readings"
        ).fetchone()
        (dropped,) = conn.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        (verdict,) = conn.execute("PRAGMA integrity_check").fetchone()
    finally:
        conn.close()
    assert last > stuck_at + 20
    assert count == last - first + 1, "a reading taken while the disk was full is missing"
    assert dropped == 0
    assert verdict == "ok"
