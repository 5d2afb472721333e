"""``config set/unset/get/list`` act on the running service's configuration, through its socket.

The user's scenario: over SSH, a shell whose own configuration files are not the service's
(``other_shell`` below: another ``FILAMENTCTL_HOME``, the service's socket). Before, ``config set``
changed that shell's own files and nothing else. Now it changes the service's configuration, which
the service validates, stores and applies, and says which configuration it changed. Changing it
is for root or the service's own user only: another member of the socket group gets exit 4.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, ServiceProcess, need_another_user
from tests.servers import unavailable


@pytest.fixture
def box() -> Iterator[ServiceProcess]:
    svc = ServiceProcess(env={"FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2"})
    svc.env.pop("FILAMENTCTL_CONFIG_KEY", None)
    svc.home.mkdir(exist_ok=True)
    assert svc.cli("config", "init").returncode == 0
    svc.start()
    yield svc
    svc.cleanup()


@pytest.fixture
def other_shell(box: ServiceProcess) -> Iterator[dict[str, str]]:
    """Another user's shell: its own (empty) files, and the service's socket."""
    own = Path(tempfile.mkdtemp(prefix="fc-own"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
    env.update({"FILAMENTCTL_HOME": str(own), "FILAMENTCTL_SOCKET": str(box.socket)})
    yield env
    shutil.rmtree(own, ignore_errors=True)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "filamentctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def max_temp(box: ServiceProcess) -> float:
    status = json.loads(box.cli("status", "--json").stdout)
    value: float = status["heater"]["thresholds"]["max_temp_c"]
    return value


def test_set_changes_the_running_service_and_says_which_configuration(
    box: ServiceProcess, other_shell: dict[str, str]
) -> None:
    result = cli(other_shell, "config", "set", "heater.max_temp_c", "30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "heater.max_temp_c = 30.0"
    config_db = box.home / "config" / "config.db"
    assert lines[1].startswith("changed the running service's configuration (pid ")
    assert str(config_db) in lines[1]
    assert "applied by the running service" in result.stdout
    assert max_temp(box) == 30.0
    # The other shell's own files are untouched: nothing was created there.
    assert not (Path(other_shell["FILAMENTCTL_HOME"]) / "config").exists()
    # Stored by the service, not only applied: its own files say so.
    assert box.cli("config", "get", "heater.max_temp_c").stdout.strip() == "30.0"


def test_a_bad_pair_through_the_service_changes_nothing(
    box: ServiceProcess, other_shell: dict[str, str]
) -> None:
    result = cli(other_shell, "config", "set", "heater.max_temp_c", "30", "heater.min_temp_c", "40")
    assert result.returncode == 2
    assert result.stderr.startswith("filamentctl: ") and len(result.stderr.splitlines()) == 1
    assert max_temp(box) == 22.0


def test_get_and_list_show_the_running_values_and_their_sources(
    box: ServiceProcess, other_shell: dict[str, str]
) -> None:
    # The service runs with FILAMENTCTL_SENSOR__READ_INTERVAL=0.2; this shell does not have it.
    got = cli(other_shell, "config", "get", "sensor.read_interval", "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) | {"secret": None} == {
        "key": "sensor.read_interval",
        "value": 0.2,
        "source": "env",
        "secret": None,
        "masked": False,
    }
    listed = cli(other_shell, "config", "list", "--json")
    doc = json.loads(listed.stdout)
    assert doc["sensor.read_interval"]["source"] == "env"
    assert doc["sensor.type"] == doc["sensor.type"] | {"value": "simulated", "source": "override"}
    assert "the running service's configuration" in listed.stderr


def test_secrets_go_in_from_stdin_and_come_back_masked(
    box: ServiceProcess, other_shell: dict[str, str]
) -> None:
    key = "database.victoriametrics.token"
    secret = "tok-9f8e7d6c5b4a"
    result = subprocess.run(
        [sys.executable, "-m", "filamentctl", "config", "set", key, "-"],
        env=other_shell,
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr + box.log()
    shown = cli(other_shell, "config", "get", key)
    assert shown.stdout.strip() == "••••"
    # Root (this test) may reveal it through the socket.
    assert cli(other_shell, "config", "get", key, "--reveal").stdout.strip() == secret


def test_unset_through_the_service(box: ServiceProcess, other_shell: dict[str, str]) -> None:
    assert cli(other_shell, "config", "set", "heater.max_temp_c", "30").returncode == 0
    result = cli(other_shell, "config", "unset", "heater.max_temp_c")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("heater.max_temp_c unset (default: 22.0)\nchanged ")
    assert max_temp(box) == 22.0
    again = cli(other_shell, "config", "unset", "heater.max_temp_c")
    assert again.stdout.startswith("heater.max_temp_c was not set in the running service's")


def test_another_member_of_the_socket_group_gets_exit_4_and_changes_nothing(
    box: ServiceProcess, other_shell: dict[str, str]
) -> None:
    need_another_user()
    # Let uid 65534 reach the socket, as membership of the socket's group would.
    for d in (box.socket.parent, box.home):
        os.chmod(d, 0o755)
    os.chmod(box.socket, 0o666)
    nobody_home = Path(tempfile.mkdtemp(prefix="fc-nobody"))
    os.chown(nobody_home, 65534, 65534)
    env = {**other_shell, "FILAMENTCTL_HOME": str(nobody_home), "HOME": str(nobody_home)}
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        result = subprocess.run(
            [*as_nobody, sys.executable, "-m", "filamentctl"]
            + ["config", "set", "heater.max_temp_c", "30"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert result.returncode == 4, result.stdout + result.stderr
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith("filamentctl: only root or the service's own user may change")
        assert max_temp(box) == 22.0
        # Reading is allowed to the group; revealing a secret is not.
        read = subprocess.run(
            [*as_nobody, sys.executable, "-m", "filamentctl", "config", "get", "heater.max_temp_c"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert (read.returncode, read.stdout.strip()) == (0, "22.0"), read.stderr
        reveal = subprocess.run(
            [*as_nobody, sys.executable, "-m", "filamentctl"]
            + ["config", "get", "database.victoriametrics.token", "--reveal"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert reveal.returncode == 4, reveal.stderr
    finally:
        shutil.rmtree(nobody_home, ignore_errors=True)


def test_without_a_service_config_set_says_which_file_it_changed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
    env.update({"FILAMENTCTL_HOME": str(tmp_path), "FILAMENTCTL_SOCKET": str(tmp_path / "no.sock")})
    assert cli(env, "config", "init").returncode == 0
    result = cli(env, "config", "set", "heater.max_temp_c", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"stored in {tmp_path / 'config' / 'config.db'} (no service is running)"
    )


def test_system_switch_names_the_system_service_files_and_socket() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
    env["FILAMENTCTL_HOME"] = "/nonexistent-home"  # --system wins over it, explicitly
    plain = json.loads(cli(env, "--system", "config", "path", "--json").stdout)
    assert (plain["config_db"], plain["socket"], plain["key_file"]) == (
        "/etc/filamentctl/config.db",
        "/run/filamentctl/filamentctl.sock",
        "/var/lib/filamentctl/secrets/config.key",
    )
    boxed = json.loads(cli(env, "--box", "shelf", "--system", "config", "path", "--json").stdout)
    assert (boxed["config_db"], boxed["socket"]) == (
        "/etc/filamentctl/shelf/config.db",
        "/run/filamentctl-shelf/filamentctl.sock",
    )


def test_root_writing_the_service_users_files_is_refused(tmp_path: Path) -> None:
    """``sudo filamentctl --system config set`` would leave root-owned files the service (its own
    user) cannot read: refused with what to run instead. The directories are a stand-in for
    /etc/filamentctl and /var/lib/filamentctl, owned by uid 65534 as the service user's are."""
    if os.geteuid() != 0:
        unavailable("root writing another user's files: needs root")
    state, config = tmp_path / "state", tmp_path / "config"
    for d in (state, config):
        d.mkdir()
        os.chown(d, 65534, 65534)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILAMENTCTL_")}
    env.update(
        {
            "STATE_DIRECTORY": str(state),
            "CONFIGURATION_DIRECTORY": str(config),
            "RUNTIME_DIRECTORY": str(tmp_path / "run"),
            "FILAMENTCTL_SYSTEM": "1",
        }
    )
    result = cli(env, "config", "set", "heater.max_temp_c", "30")
    assert result.returncode == 2
    assert "sudo -u filamentctl filamentctl --system config" in result.stderr
    assert list(config.iterdir()) == []
