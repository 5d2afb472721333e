"""Test helpers shared by the service and CLI tests: a real service, in-process or as a process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from filamentctl import paths as _paths
from filamentctl.core import schema

REPO = Path(__file__).resolve().parents[1]


def short_home() -> Path:
    """A temporary FILAMENTCTL_HOME short enough for a Unix socket path."""
    return Path(tempfile.mkdtemp(prefix="fc"))


def settings(**overrides: Any) -> dict[str, Any]:
    """Schema defaults with dotted overrides given as ``sensor__read_interval=0.1``."""
    values = schema.defaults()
    for name, value in overrides.items():
        key = name.replace("__", ".")
        assert key in values, f"unknown key {key}"
        values[key] = value
    return values


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until truthy (returns its value) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def in_process_service(
    values: Mapping[str, Any] | None = None,
    *,
    simulate: bool = True,
    stored: bool = False,
    **kwargs: Any,
) -> Iterator[Any]:
    """A real Service (real SQLite, real socket, MockFactory pins) in this process.

    ``stored=True`` also writes ``values`` (where they differ from the defaults) into a real
    encrypted configuration in the service's home, so a ``config.reload`` finds what the service
    runs with, as it would for ``filamentctl run``.
    """
    from gpiozero.pins.mock import MockFactory

    from filamentctl.service.app import Service

    home = short_home()
    paths = _paths.resolve({"FILAMENTCTL_HOME": str(home)})
    kwargs.setdefault("pin_factory", MockFactory())
    values = values or settings(sensor__read_interval=0.1)
    if stored:
        from filamentctl.store.settings import init_config, set_value

        init_config(paths, {})
        wanted = {**values, "sensor.type": "simulated"} if simulate else dict(values)
        defaults = schema.defaults()
        # The sensor first: other keys are checked against its rules (e.g. interval floors).
        for name in sorted(wanted, key=lambda n: n != "sensor.type"):
            if wanted[name] != defaults[name]:
                set_value(paths, {}, name, wanted[name])
    service = Service(values, paths, simulate=simulate, **kwargs)
    service.start()
    try:
        yield service
    finally:
        service.stop(delivery_timeout=2.0)
        shutil.rmtree(home, ignore_errors=True)


def raw_request(sock_path: Path, payload: bytes, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Send raw bytes, read reply lines until the server has answered every request line."""
    import json

    expected = max(1, payload.count(b"\n"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                s.connect(str(sock_path))
                break
            except BlockingIOError:  # listen queue momentarily full: retry like a real client
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        s.sendall(payload)
        buf = b""
        replies: list[dict[str, Any]] = []
        while len(replies) < expected:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                replies.append(json.loads(line))
        return replies


class ServiceProcess:
    """``python -m filamentctl run`` as a real child process in its own FILAMENTCTL_HOME."""

    def __init__(
        self,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = ("--simulate",),
    ) -> None:
        self.home = home or short_home()
        self.env = {**os.environ, "FILAMENTCTL_HOME": str(self.home), **(env or {})}
        self.env.pop("FILAMENTCTL_SOCKET", None)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "service.log"

    @property
    def socket(self) -> Path:
        return self.home / "run" / "filamentctl.sock"

    def start(self, wait: bool = True) -> ServiceProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "filamentctl", "run", *self.args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        log.close()
        if wait:
            wait_until(lambda: self._ready(), timeout=20, what=f"service socket {self.socket}")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return bool(raw_request(self.socket, b'{"id":1,"op":"ping"}\n', timeout=1)[0]["ok"])
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "filamentctl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            cwd=REPO,
        )

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def need_another_user() -> None:
    """Skip the calling test unless it can run this interpreter as another user (uid 65534):
    that takes root, ``setpriv`` and an interpreter the user can read. Fails it on CI, which
    runs as root with setpriv (``tests.servers.unavailable``)."""
    from tests.servers import unavailable

    probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        able = (
            os.geteuid() == 0
            and subprocess.run([*probe, sys.executable, "-c", ""], capture_output=True).returncode
            == 0
        )
    except FileNotFoundError:  # no setpriv
        able = False
    if not able:
        unavailable("needs root and an interpreter that another user can run")
