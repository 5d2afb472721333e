"""Where files live: FILAMENTCTL_HOME, systemd's directories, or the user's XDG directories."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from filamentctl import paths


def test_home_puts_everything_under_one_directory(tmp_path: Path) -> None:
    p = paths.resolve({"FILAMENTCTL_HOME": str(tmp_path)})
    for path in (p.config_db, p.key_file, p.history_db, p.socket):
        assert tmp_path in path.parents
    assert p.key_file.parent != p.config_db.parent  # the key never sits beside the database


def test_systemd_directories_are_used_under_a_unit() -> None:
    p = paths.resolve(
        {
            "STATE_DIRECTORY": "/var/lib/filamentctl",
            "CONFIGURATION_DIRECTORY": "/etc/filamentctl",
            "RUNTIME_DIRECTORY": "/run/filamentctl",
        }
    )
    assert p.config_db == Path("/etc/filamentctl/config.db")
    assert p.history_db == Path("/var/lib/filamentctl/history.db")
    assert p.socket == paths.SYSTEM_SOCKET


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG rules are Linux's")
@pytest.mark.parametrize(
    "xdg",
    [{}, {"XDG_CONFIG_HOME": "/x/cfg", "XDG_DATA_HOME": "/x/data", "XDG_STATE_HOME": "/x/state"}],
)
def test_user_directories_match_platformdirs(
    monkeypatch: pytest.MonkeyPatch, xdg: dict[str, str]
) -> None:
    for var, value in xdg.items():
        monkeypatch.setenv(var, value)
    import os

    # FILAMENTCTL_* and XDG_* start unset (tests/conftest.py); systemd's directories too.
    systemd = ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY")
    p = paths.resolve({k: v for k, v in os.environ.items() if k not in systemd})
    assert p.config_dir == Path(platformdirs.user_config_dir("filamentctl"))
    assert p.state_dir == Path(platformdirs.user_state_dir("filamentctl"))
    assert p.key_dir == Path(platformdirs.user_data_dir("filamentctl")) / "secrets"


def test_clients_try_their_own_socket_then_the_system_one(tmp_path: Path) -> None:
    p = paths.resolve({"HOME": str(tmp_path), "XDG_RUNTIME_DIR": "/run/user/1000"})
    assert p.candidate_sockets({}) == [
        Path("/run/user/1000/filamentctl/filamentctl.sock"),
        paths.SYSTEM_SOCKET,
    ]
    assert p.candidate_sockets({"FILAMENTCTL_SOCKET": "/tmp/x.sock"}) == [Path("/tmp/x.sock")]


def test_a_named_box_has_its_own_files_under_home(tmp_path: Path) -> None:
    default = paths.resolve({"FILAMENTCTL_HOME": str(tmp_path)})
    a = paths.resolve({"FILAMENTCTL_HOME": str(tmp_path), "FILAMENTCTL_BOX": "a"})
    b = paths.resolve({"FILAMENTCTL_HOME": str(tmp_path), "FILAMENTCTL_BOX": "b"})
    assert (default.box, a.box, b.box) == ("default", "a", "b")
    for attr in ("config_db", "key_file", "history_db", "socket"):
        values = {getattr(default, attr), getattr(a, attr), getattr(b, attr)}
        assert len(values) == 3, attr
    assert a.socket == tmp_path / "boxes" / "a" / "run" / "filamentctl.sock"
    # The default box keeps today's layout.
    assert default.socket == tmp_path / "run" / "filamentctl.sock"


def test_a_named_box_finds_its_system_service_socket() -> None:
    p = paths.resolve({"HOME": "/home/u", "FILAMENTCTL_BOX": "shelf"})
    assert p.candidate_sockets({})[-1] == Path("/run/filamentctl-shelf/filamentctl.sock")
    assert p.config_dir == Path("/home/u/.config/filamentctl/boxes/shelf")


@pytest.mark.parametrize("bad", ["A", "-x", "a/b", "..", "x" * 33, "a b"])
def test_malformed_box_names_are_refused(bad: str) -> None:
    with pytest.raises(paths.BadBoxName, match="invalid box name"):
        paths.resolve({"FILAMENTCTL_BOX": bad, "HOME": "/home/u"})
