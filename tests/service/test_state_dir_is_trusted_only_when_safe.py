"""The service trusts its directories only when nobody else can write them, follows no symlink
in its own places, leaves alone what it did not create, and clients talk only to the real service.

Before: a symlink at ``state/service.lock`` made the service truncate the file it pointed to, a
symlinked ``history.db`` got SQLite written into a foreign file, a world-writable
``FILAMENTCTL_HOME`` was used silently (another user could put a fake socket there and answer
``heater off``), and a second ``run`` that found the socket in use deleted the running service's
socket on its way out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, ServiceProcess, need_another_user, short_home
from tests.servers import unavailable

VICTIM = "IMPORTANT DATA OF SOMEONE ELSE\n"
NOBODY = 65534


def _run(home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``filamentctl run --simulate`` that is expected to refuse to start."""
    full = {**os.environ, "FILAMENTCTL_HOME": str(home), **(env or {})}
    full.pop("FILAMENTCTL_SOCKET", None)
    if env and "STATE_DIRECTORY" in env:
        full.pop("FILAMENTCTL_HOME")
    return subprocess.run(
        [sys.executable, "-m", "filamentctl", "run", "--simulate"],
        env=full,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def _one_error_line(stderr: str) -> str:
    """The run's error: one line, the last, no traceback (log lines may come before it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("filamentctl: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip("\n").splitlines()[-1] == errors[0], stderr
    assert "Traceback" not in stderr
    return errors[0]


@pytest.fixture
def home() -> Iterator[Path]:
    h = short_home()
    for sub in ("state", "run", "config", "secrets"):
        (h / sub).mkdir(mode=0o700)
    yield h
    shutil.rmtree(h, ignore_errors=True)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text(VICTIM)
    return path


@pytest.mark.parametrize(
    "place",
    ["state/service.lock", "state/history.db", "state/history.db-wal", "run/filamentctl.sock"],
)
def test_a_symlink_in_the_services_place_is_refused(home: Path, victim: Path, place: str) -> None:
    (home / place).symlink_to(victim)
    done = _run(home)
    assert done.returncode == 4, done.stderr
    error = _one_error_line(done.stderr)
    assert "symbolic link" in error and place.split("/")[-1] in error
    assert victim.read_text() == VICTIM  # not truncated, not turned into a database
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim"]  # no -wal/-shm beside


@pytest.mark.parametrize(
    ("directory", "mode", "words"),
    [
        (".", 0o777, "writable by others"),
        (".", 0o1777, "writable by others"),  # sticky or not: others could create state/
        ("state", 0o770, "writable by its group"),
        ("run", 0o777, "writable by others"),
    ],
)
def test_a_directory_others_can_write_is_refused(
    home: Path, directory: str, mode: int, words: str
) -> None:
    os.chmod(home / directory, mode)
    done = _run(home)
    assert done.returncode == 4, done.stderr
    assert words in _one_error_line(done.stderr)


def test_a_home_owned_by_another_user_is_refused(home: Path) -> None:
    if os.geteuid() != 0:
        unavailable("needs root to give the directory to another user")
    os.chown(home, NOBODY, NOBODY)
    done = _run(home)
    assert done.returncode == 4, done.stderr
    assert "belongs to" in _one_error_line(done.stderr)


def test_a_symlinked_key_file_is_refused(home: Path, victim: Path) -> None:
    (home / "secrets" / "config.key").symlink_to(victim)
    done = _run(home)
    assert done.returncode == 4, done.stderr
    assert "symbolic link" in _one_error_line(done.stderr)


def test_a_second_run_on_the_same_home_leaves_the_first_alone() -> None:
    first = ServiceProcess().start()
    try:
        done = _run(first.home)
        assert done.returncode != 0
        _one_error_line(done.stderr)
        assert first.socket.exists()
        assert first.cli("status").returncode == 0
    finally:
        first.cleanup()


def test_a_second_service_sharing_the_runtime_directory_leaves_its_socket_alone(
    tmp_path: Path,
) -> None:
    """systemd-style directories: two state directories, one runtime directory."""
    runtime = short_home()
    first_env = {
        "CONFIGURATION_DIRECTORY": str(tmp_path / "a-conf"),
        "STATE_DIRECTORY": str(tmp_path / "a-state"),
        "RUNTIME_DIRECTORY": str(runtime),
    }
    first = ServiceProcess(short_home(), env=first_env)
    first.env.pop("FILAMENTCTL_HOME")
    first.start(wait=False)
    sock = runtime / "filamentctl.sock"
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert time.monotonic() < deadline, first.log()
            time.sleep(0.05)
        done = _run(
            tmp_path,
            {
                "CONFIGURATION_DIRECTORY": str(tmp_path / "b-conf"),
                "STATE_DIRECTORY": str(tmp_path / "b-state"),
                "RUNTIME_DIRECTORY": str(runtime),
            },
        )
        assert done.returncode == 1, done.stderr
        assert "already running" in _one_error_line(done.stderr)
        assert sock.exists()  # before: the second run deleted it on its way out
        status = first.cli("status", "--json")
        assert status.returncode == 0, status.stderr
    finally:
        first.cleanup()
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_regular_file_at_the_socket_path_is_refused_and_kept(home: Path) -> None:
    (home / "run" / "filamentctl.sock").write_text(VICTIM)
    done = _run(home)
    assert done.returncode == 1, done.stderr
    assert "not a socket" in _one_error_line(done.stderr)
    assert (home / "run" / "filamentctl.sock").read_text() == VICTIM


def test_a_client_refuses_a_socket_another_user_put_in_a_shared_place() -> None:
    """The attack: another user binds a fake service in a world-writable directory."""
    need_another_user()
    shared = short_home()
    os.chmod(shared, 0o1777)
    path = shared / "fake.sock"
    fake = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX);s.bind(sys.argv[1]);s.listen(4);print('ready',flush=True)\n"
        "while True:\n"
        " c,_=s.accept()\n"
        " try:\n"
        "  c.recv(65536)\n"
        '  c.sendall(b\'{"v":1,"id":1,"ok":true,"result":{"on":false,"mode":"manual"}}\\n\')\n'
        " except OSError: pass\n"
        " c.close()\n"
    )
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        + [sys.executable, "-c", fake, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.chmod(path, 0o777)  # as an attacker would, so that anyone can connect
        with socket.socket(socket.AF_UNIX) as s:  # it does answer, to anyone
            s.connect(str(path))
        done = subprocess.run(
            [sys.executable, "-m", "filamentctl", "heater", "off"],
            env={**os.environ, "FILAMENTCTL_SOCKET": str(path)},
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert done.returncode == 4, done.stderr
        assert done.stderr.startswith("filamentctl: refusing to talk to")
        assert done.stderr.count("\n") == 1
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(shared, ignore_errors=True)
