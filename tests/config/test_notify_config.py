"""``notify.*`` keys through the real CLI (``python -m filamentctl`` processes): Apprise's parser
refuses unknown schemes with exit 2, and a URL (a secret: it carries tokens) is never echoed,
listed or exported."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServiceProcess

TOKEN = "tok-5d1e0c9b8a7f"
GOOD = f"json://127.0.0.1:9/{TOKEN}, ntfy://ntfy.sh/topic-{TOKEN}"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A FILAMENTCTL_HOME with a configuration (no service runs: only its CLI is used)."""
    proc = ServiceProcess(home=tmp_path / "box", env={"FILAMENTCTL_SOCKET": str(tmp_path / "n")})
    proc.home.mkdir()
    assert proc.cli("config", "init").returncode == 0
    yield proc


def _no_token(*results: subprocess.CompletedProcess[str]) -> None:
    for r in results:
        assert TOKEN not in r.stdout and TOKEN not in r.stderr, r


def test_unknown_scheme_is_refused_with_exit_2_without_echoing_the_url(box: ServiceProcess) -> None:
    bad = box.cli("config", "set", "notify.urls", "-", input=f"nosuchservice://{TOKEN}@host/\n")
    assert bad.returncode == 2, bad
    assert "unknown scheme 'nosuchservice://'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1  # one line, no Apprise log lines
    malformed = box.cli("config", "set", "notify.urls", "-", input=f"{GOOD}\ntgram://{TOKEN}\n")
    assert malformed.returncode == 2 and "entry 3" in malformed.stderr
    _no_token(bad, malformed)
    stored = box.cli("config", "get", "notify.urls", "--reveal")
    assert stored.returncode == 0 and stored.stdout.strip() == ""  # nothing was stored


def test_urls_are_a_secret_not_taken_from_argv(box: ServiceProcess) -> None:
    refused = box.cli("config", "set", "notify.urls", GOOD)
    assert refused.returncode == 2 and "not accepted on the command line" in refused.stderr
    _no_token(refused)


def test_valid_urls_are_stored_masked_and_never_listed_or_exported(box: ServiceProcess) -> None:
    stored = box.cli("config", "set", "notify.urls", "-", input=GOOD + "\n")
    assert stored.returncode == 0, stored
    assert "notify.urls = ••••" in stored.stdout
    shown = [
        box.cli("config", "get", "notify.urls"),
        box.cli("config", "list"),
        box.cli("config", "list", "--json"),
        box.cli("config", "export"),
        box.cli("config", "export", "--all"),
        box.cli("config", "validate"),
    ]
    assert all(r.returncode == 0 for r in shown), shown
    _no_token(stored, *shown)
    revealed = box.cli("config", "get", "notify.urls", "--reveal")
    assert revealed.stdout.strip() == GOOD  # it was stored, only hidden


def test_import_and_validate_of_a_file_use_apprise_too(box: ServiceProcess) -> None:
    toml = box.home / "bad.toml"
    toml.write_text(f'[notify]\nurls = "nosuchservice://{TOKEN}@x/"\n')
    checked = box.cli("config", "validate", str(toml))
    imported = box.cli("config", "import", str(toml))
    assert checked.returncode == 2 and "unknown scheme" in checked.stderr
    assert imported.returncode == 2 and "unknown scheme" in imported.stderr
    _no_token(checked, imported)


def test_durations_and_event_lists(box: ServiceProcess) -> None:
    assert box.cli("config", "set", "notify.humidity_for", "5s").returncode == 0
    assert box.cli("config", "get", "notify.humidity_for").stdout.strip() == "5.0"
    assert box.cli("config", "set", "notify.min_interval", "1h30m").returncode == 0
    assert box.cli("config", "get", "notify.min_interval").stdout.strip() == "5400.0"
    bad = box.cli("config", "set", "notify.events", "heater_latched,weather")
    assert bad.returncode == 2 and "unknown event kind 'weather'" in bad.stderr
    quiet = box.cli("config", "set", "notify.quiet_hours", "22:00-7")
    assert quiet.returncode == 2 and "HH:MM-HH:MM" in quiet.stderr
