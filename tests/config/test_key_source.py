"""`config path` and `status` say where the configuration key came from — never the key.

The three sources in their order of priority: ``FILAMENTCTL_CONFIG_KEY`` (env), Vault (a real
OpenBao dev server, which speaks Vault's API) and the key file. ``status --json`` is asked of a
real ``filamentctl run --simulate`` process started with the same environment.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from filamentctl.cli.config import app
from filamentctl.store import vault
from tests.helpers import ServiceProcess, short_home
from tests.servers import OpenBaoServer

ENV_KEY_HEX = "3f" * 32


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    box = short_home()  # short: the service's socket lives under it
    monkeypatch.setenv("FILAMENTCTL_HOME", str(box))
    yield box
    shutil.rmtree(box, ignore_errors=True)


@pytest.fixture
def bao(openbao_server: OpenBaoServer) -> Iterator[OpenBaoServer]:
    vault.clear_cache()
    yield openbao_server
    vault.clear_cache()


def ok(*args: str, env: dict[str, str]) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


def path_json(env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok("path", "--json", env=env).stdout)
    return doc


def status_config(home: Path, env: dict[str, str]) -> dict[str, Any]:
    """The ``config`` section of ``status --json`` from a real service run with ``env``."""
    svc = ServiceProcess(home=home, env=env)
    try:
        svc.start()
        result = svc.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        section: dict[str, Any] = json.loads(result.stdout)["config"]
        return section
    finally:
        svc.stop()


def test_the_key_file_is_named_as_the_source(home: Path) -> None:
    ok("init", env={})
    doc = path_json({})
    key_file = doc["key_file"]
    assert (doc["key_source"], doc["key_location"], doc["vault_addr"]) == ("file", key_file, None)
    assert doc["key_error"] is None
    key = Path(key_file).read_text().strip()
    assert key not in json.dumps(doc)
    text = ok("path", env={}).stdout
    assert f"key source: file ({key_file})" in text
    config = status_config(home, {})
    assert config == {
        "source": "store",
        "key_source": "file",
        "key_location": key_file,
        "vault_addr": None,
    }


def test_the_environment_variable_is_named_as_the_source(home: Path) -> None:
    env = {"FILAMENTCTL_CONFIG_KEY": ENV_KEY_HEX}
    ok("init", env=env)
    doc = path_json(env)
    assert (doc["key_source"], doc["key_location"]) == ("env", "FILAMENTCTL_CONFIG_KEY")
    assert not Path(doc["key_file"]).exists()
    assert ENV_KEY_HEX not in json.dumps(doc)
    config = status_config(home, env)
    assert (config["key_source"], config["key_location"]) == ("env", "FILAMENTCTL_CONFIG_KEY")
    assert ENV_KEY_HEX not in json.dumps(config)


def test_vault_is_named_with_the_secret_path_and_address(
    home: Path, bao: OpenBaoServer, unique_name: str
) -> None:
    where = f"secret/{unique_name}#config_key"  # the server is shared: a path of our own
    env = {"VAULT_ADDR": bao.url, "VAULT_TOKEN": bao.token, "FILAMENTCTL_VAULT_PATH": where}
    ok("init", "--vault", env=env)
    key = bao.api("GET", f"secret/data/{unique_name}")["data"]["data"]["config_key"]
    doc = path_json(env)
    assert (doc["key_source"], doc["key_location"], doc["vault_addr"]) == ("vault", where, bao.url)
    assert key not in json.dumps(doc) and bao.token not in json.dumps(doc)
    text = ok("path", env=env).stdout
    assert f"key source: vault ({where} at {bao.url})" in text
    config = status_config(home, env)
    assert (config["key_source"], config["key_location"], config["vault_addr"]) == (
        "vault",
        where,
        bao.url,
    )
    assert key not in json.dumps(config)


def test_no_key_yet_and_an_unusable_key_file_are_said_plainly(home: Path) -> None:
    doc = path_json({})
    assert doc["key_source"] is None and doc["key_error"] is None
    assert "key source: none yet" in ok("path", env={}).stdout
    ok("init", env={})
    key_file = Path(doc["key_file"])
    key_file.chmod(0o644)
    doc = path_json({})  # still exit 0: the paths are what was asked for
    assert doc["key_source"] is None
    assert "chmod 600" in doc["key_error"]
