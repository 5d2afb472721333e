"""Odd inputs get one line with the documented exit code, never "internal error".

Each of these used to end in "internal error … please report it" (exit 1) or a wrong code:
NaN/inf/huge timeouts and intervals, a 5000-digit duration, dead-letter ids beyond SQLite's
integers, deeply nested or non-UTF-8 import files, a directory instead of a file, an existing
export target, a damaged configuration, and socket paths that are too long, in use or not a
socket. Unknown op arguments are refused (exit 2) rather than ignored.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, in_process_service, raw_request, settings, short_home

Setup = Callable[[Path], list[str]]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FILAMENTCTL_HOME": str(home)}
    env.pop("FILAMENTCTL_SOCKET", None)
    return subprocess.run(
        [sys.executable, "-m", "filamentctl", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def _file(name: str, data: bytes) -> Setup:
    def setup(home: Path) -> list[str]:
        (home / name).write_bytes(data)
        return []

    return setup


def _nothing(home: Path) -> list[str]:
    return []


def _init(home: Path) -> list[str]:
    assert _cli(home, "config", "init").returncode == 0
    return []


def _damaged_config(home: Path) -> list[str]:
    _init(home)
    assert _cli(home, "config", "set", "sensor.read_interval", "2").returncode == 0
    db = home / "config" / "config.db"
    data = bytearray(db.read_bytes())
    data[len(data) // 2 + 904] ^= 0x55  # a byte in a page past the first
    db.write_bytes(bytes(data))
    return []


def _socket_file(home: Path) -> list[str]:
    (home / "run").mkdir(mode=0o700)
    (home / "run" / "filamentctl.sock").write_text("not a socket\n")
    return []


def _busy_socket(home: Path) -> list[str]:
    (home / "run").mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(home / "run" / "filamentctl.sock"))
    listener.listen(8)
    _KEEP.append(listener)  # someone answers there: another service
    return []


_KEEP: list[socket.socket] = []

DEEP = b"[" * 100_000 + b"]" * 100_000

CASES: list[tuple[str, Setup, list[str], int, str]] = [
    ("flush-timeout-nan", _nothing, ["flush", "--timeout", "nan"], 2, "--timeout"),
    ("flush-timeout-inf", _nothing, ["flush", "--timeout", "inf"], 2, "--timeout"),
    ("flush-timeout-1e309", _nothing, ["flush", "--timeout", "1e309"], 2, "--timeout"),
    ("flush-timeout-over-cap", _nothing, ["flush", "--timeout", "1e9"], 2, "3600"),
    ("watch-interval-nan", _nothing, ["status", "-w", "--interval", "nan"], 2, "--interval"),
    ("for-5000-digits", _nothing, ["heater", "on", "--for", "1" * 5000 + "s"], 2, "too long"),
    (
        "purge-huge-id",
        _nothing,
        ["flush", "--dead-letter", "purge", "--id", "99999999999999999999999"],
        2,
        "--id",
    ),
    ("id-without-dead-letter", _nothing, ["flush", "--id", "5"], 2, "--dead-letter"),
    (
        "import-deep-json",
        _file("deep.json", DEEP),
        ["config", "import", "{home}/deep.json"],
        2,
        "nested",
    ),
    (
        "validate-deep-json",
        _file("deep.json", DEEP),
        ["config", "validate", "{home}/deep.json"],
        2,
        "nested",
    ),
    (
        "import-non-utf8-env",
        lambda h: _file("bad.env", b"INFLUXDB_HOST=\xff\xfe\n")(h) + _file("e.yaml", b"")(h),
        ["config", "import", "{home}/e.yaml", "--env", "{home}/bad.env"],
        2,
        "UTF-8",
    ),
    ("import-a-directory", _nothing, ["config", "import", "{home}"], 2, "directory"),
    (
        "export-over-a-file",
        lambda h: _init(h) + _file("out.toml", b"keep me\n")(h),
        ["config", "export", "-o", "{home}/out.toml"],
        2,
        "already exists",
    ),
    ("list-damaged-config", _damaged_config, ["config", "list"], 1, "damaged"),
    ("run-damaged-config", _damaged_config, ["run", "--simulate"], 1, "damaged"),
    ("run-socket-is-a-file", _socket_file, ["run", "--simulate"], 1, "not a socket"),
    ("run-socket-in-use", _busy_socket, ["run", "--simulate"], 1, "already running"),
]


@pytest.fixture
def home() -> Iterator[Path]:
    h = short_home()
    yield h
    for s in _KEEP:
        s.close()
    _KEEP.clear()
    shutil.rmtree(h, ignore_errors=True)


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("filamentctl: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip("\n").splitlines()[-1] == errors[0], stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    return errors[0]


@pytest.mark.parametrize(
    ("setup", "argv", "code", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_exits_with_its_code_and_one_line(
    home: Path, setup: Setup, argv: list[str], code: int, words: str
) -> None:
    setup(home)
    done = _cli(home, *(a.replace("{home}", str(home)) for a in argv))
    assert done.returncode == code, done.stderr
    assert words in _one_error_line(done.stderr)


def test_a_socket_path_too_long_is_a_usage_error() -> None:
    base = short_home()
    home = base / ("d" * 60) / ("e" * 40)
    home.mkdir(parents=True, mode=0o700)
    try:
        done = _cli(home, "run", "--simulate")
        assert done.returncode == 2, done.stderr
        assert "too long" in _one_error_line(done.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    ("request_line", "code"),
    [
        (
            b'{"id":1,"op":"deadletter.purge","args":{"ids":[99999999999999999999999]}}',
            "invalid_args",
        ),
        (b'{"id":1,"op":"deadletter.purge","args":{"ids":[0]}}', "invalid_args"),
        (b'{"id":1,"op":"heater.set","args":{"mode":"off","extra":1}}', "invalid_args"),
        (b'{"id":1,"op":"status","args":{"verbose":true}}', "invalid_args"),
        (b'{"id":1,"op":"flush","args":{"timeout":NaN}}', "invalid_args"),
        (b'{"id":1,"op":"flush","args":{"timeout":1e10}}', "invalid_args"),
    ],
)
def test_the_socket_refuses_bad_arguments(request_line: bytes, code: str) -> None:
    with in_process_service(settings(sensor__read_interval=0.2)) as svc:
        [reply] = raw_request(svc.paths.socket, request_line + b"\n")
        assert reply["error"]["code"] == code, reply


def test_a_reload_of_a_damaged_configuration_is_refused_not_internal() -> None:
    with in_process_service(settings(sensor__read_interval=0.2), stored=True) as svc:
        db = svc.paths.config_db
        data = bytearray(db.read_bytes())
        data[len(data) // 2 + 904] ^= 0x55
        db.write_bytes(bytes(data))
        [reply] = raw_request(svc.paths.socket, b'{"id":1,"op":"config.reload"}\n')
        assert reply["error"]["code"] == "refused", reply
        assert "damaged" in reply["error"]["message"]
        assert svc.settings["sensor.read_interval"] == 0.2  # still running as it was
