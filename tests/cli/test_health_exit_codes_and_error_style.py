"""Against a real simulated service: ``status --check`` puts health in the exit code, piped
``status -w`` writes no control codes, every error is one ``filamentctl: …`` line (usage errors
found by Click too) without repeated text or wire names, and ``-q`` silences success output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers import REPO, ServiceProcess, wait_until


@pytest.fixture(scope="module")
def box() -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        env={
            "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
            "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "0.2",
            "FILAMENTCTL_HEATER__ENABLED": "true",
            "FILAMENTCTL_FAN__ENABLED": "true",
        }
    ).start()
    try:
        wait_until(
            lambda: json.loads(svc.cli("status", "--json").stdout)["readings_total"] >= 3,
            what="three readings",
        )
        yield svc
    finally:
        svc.cleanup()


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("filamentctl: "), result.stderr
    return result.stderr.strip()


def test_status_check_exits_1_during_a_stale_fault_and_0_after_sim_clear(
    box: ServiceProcess,
) -> None:
    healthy = box.cli("status", "--check")
    assert healthy.returncode == 0, healthy.stdout
    assert healthy.stdout.startswith("healthy: ") and healthy.stdout.count("\n") == 1
    assert box.cli("sim", "set", "--fault", "stale").returncode == 0
    try:
        wait_until(
            lambda: box.cli("status", "--check").returncode == 1,
            timeout=30,
            what="status --check to see the fault",
        )
        sick = box.cli("status", "--check")
        assert sick.stdout.startswith("unhealthy: ") and sick.stdout.count("\n") == 1
        assert "sensor FAULT" in sick.stdout and "fault 'stale'" in sick.stdout
        doc = json.loads(box.cli("status", "--check", "--json").stdout)
        assert doc["healthy"] is False and any("sensor FAULT" in p for p in doc["problems"])
        quiet = box.cli("status", "--check", "--quiet")
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, "", "")
    finally:
        assert box.cli("sim", "clear").returncode == 0
    wait_until(
        lambda: box.cli("status", "--check").returncode == 0,
        timeout=30,
        what="status --check healthy again after sim clear",
    )


def test_status_check_without_a_service_still_exits_3(tmp_path: object) -> None:
    svc = ServiceProcess()  # never started
    try:
        result = svc.cli("status", "--check")
        assert "no filamentctl service is running" in one_error_line(result, 3)
    finally:
        svc.cleanup()


def test_piped_status_watch_writes_no_control_codes(box: ServiceProcess) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "filamentctl", "status", "--watch", "--interval", "0.2"],
        env=box.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while sum(line.startswith("filamentctl 0.1.0") for line in lines) < 3:
            line = proc.stdout.readline()
            assert line, "status --watch ended early"
            lines.append(line)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    text = "".join(lines)
    assert "\x1b" not in text and "Ctrl+C" not in text
    assert "\n\nfilamentctl 0.1.0" in text  # one block per refresh, a blank line between


def test_click_usage_errors_are_one_filamentctl_line_with_exit_2(box: ServiceProcess) -> None:
    line = one_error_line(box.cli("history", "--format", "xml"), 2)
    assert "'xml' is not one of 'table', 'csv', 'json'" in line
    assert "filamentctl history --help" in line
    line = one_error_line(box.cli("stauts"), 2)
    assert "no such command 'stauts'" in line and "status" in line
    line = one_error_line(box.cli("heater", "on", "--fro", "2h"), 2)
    assert "no such option: --fro" in line
    line = one_error_line(box.cli("config", "get"), 2)
    assert "missing argument 'KEY'" in line


def test_duration_errors_name_the_option_and_the_value_once(box: ServiceProcess) -> None:
    for args, option in (
        (("heater", "on", "--for", "banana"), "--for"),
        (("history", "--since", "banana"), "--since"),
        (("history", "--every", "banana"), "--every"),
    ):
        line = one_error_line(box.cli(*args), 2)
        assert line.count("banana") == 1, line
        assert f"invalid {option} 'banana'" in line and "90s" in line


def test_service_refusals_name_the_option_the_user_typed(box: ServiceProcess) -> None:
    line = one_error_line(box.cli("heater", "on", "--for", "99999d"), 2)
    assert "--for" in line and "for_s" not in line
    assert box.cli("heater", "status", "--json").returncode == 0
    status = json.loads(box.cli("heater", "status", "--json").stdout)
    assert status["override"] is None  # refused: nothing switched


def test_replaying_a_missing_dead_letter_entry_fails(box: ServiceProcess) -> None:
    line = one_error_line(box.cli("flush", "--dead-letter", "replay", "--id", "999"), 1)
    assert "no dead-letter entry #999" in line and "--dead-letter list" in line
    line = one_error_line(box.cli("flush", "--dead-letter", "purge", "--id", "999"), 1)
    assert "nothing purged" in line
    one_error_line(box.cli("flush", "--dead-letter", "list", "--id", "1"), 2)


@pytest.mark.parametrize(
    "args",
    [
        ("heater", "off", "--for", "1m", "-q"),
        ("heater", "auto", "--quiet"),
        ("fan", "auto", "-q"),
        ("sim", "set", "--temperature", "21", "-q"),
        ("sim", "clear", "-q"),
        ("flush", "-q"),
    ],
    ids=lambda a: " ".join(a),
)
def test_quiet_commands_print_nothing_on_success(
    box: ServiceProcess, args: tuple[str, ...]
) -> None:
    result = box.cli(*args)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    loud = box.cli(*args[:-1])  # the same without -q does report
    assert loud.returncode == 0 and loud.stdout.strip()
