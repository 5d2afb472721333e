"""HashiCorp Vault (or OpenBao): a small client, and ``vault:`` secret references.

Configured from the usual environment variables: ``VAULT_ADDR`` (Vault is used only when it is
set), ``VAULT_TOKEN`` or AppRole ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID``, optional
``VAULT_NAMESPACE``, ``VAULT_CACERT`` and ``VAULT_SKIP_VERIFY``. Secrets live in a KV v2 engine.
The configuration key is at ``secret/filamentctl#config_key`` unless ``FILAMENTCTL_VAULT_PATH``
(``mount/path#field``) names another place.

A secret setting (a token or password) may hold a reference, ``vault:mount/path#field``, instead of
the secret itself: :func:`resolve_secret` turns it into the secret when it is used, so the clear
value is never stored. The service resolves a sink's or gateway's secrets when it builds them
(cached for a minute). The configuration key's Vault source lives with the other key sources in
:mod:`filamentctl.store.keys`; this module imports nothing of the store.

Errors: :class:`VaultUnreachable` when nothing answers at ``VAULT_ADDR`` within the timeout (the
key source then falls back to the key file with one warning), :class:`VaultError` when Vault
answers but refuses (bad token, no permission, missing secret). Messages name the address and
path, never a token or a secret. ``hvac`` is imported only when Vault is actually used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from filamentctl.core.schema import VAULT_REF_PREFIX, parse_vault_ref
from filamentctl.errors import ConfigError, UserError

log = logging.getLogger("filamentctl.config")

ENV_ADDR = "VAULT_ADDR"
ENV_TOKEN = "VAULT_TOKEN"
ENV_ROLE_ID = "VAULT_ROLE_ID"
ENV_SECRET_ID = "VAULT_SECRET_ID"
ENV_NAMESPACE = "VAULT_NAMESPACE"
ENV_CACERT = "VAULT_CACERT"
ENV_SKIP_VERIFY = "VAULT_SKIP_VERIFY"
ENV_PATH = "FILAMENTCTL_VAULT_PATH"

# Per request; an unreachable Vault costs at most two of these (login + read) before the key
# file is used, well inside the 5 s a command may wait for it.
TIMEOUT_S = 2.0
CACHE_S = 60.0  # how long a resolved secret reference is reused


class VaultError(UserError):
    """Vault answered but cannot give us what we need (credentials, permission, missing)."""


class VaultUnreachable(VaultError):
    """Nothing usable answers at VAULT_ADDR (refused, timed out, DNS, TLS)."""


@dataclass(frozen=True, slots=True)
class VaultRef:
    """A KV v2 secret field: ``mount/path#field``."""

    mount: str
    path: str
    field: str

    def __str__(self) -> str:
        return f"{self.mount}/{self.path}#{self.field}"


DEFAULT_KEY_REF = VaultRef("secret", "filamentctl", "config_key")


def parse_ref(text: str) -> VaultRef:
    """``mount/path#field`` (with or without the ``vault:`` prefix) -> VaultRef; ConfigError."""
    mount, path, field = parse_vault_ref(text)
    return VaultRef(mount, path, field)


def is_reference(value: Any) -> bool:
    """Whether a setting's value is a ``vault:`` reference rather than the secret itself."""
    return isinstance(value, str) and value.startswith(VAULT_REF_PREFIX)


def configured(env: Mapping[str, str]) -> bool:
    return bool(env.get(ENV_ADDR, "").strip())


def key_ref(env: Mapping[str, str]) -> VaultRef:
    """Where the config key lives: FILAMENTCTL_VAULT_PATH, else secret/filamentctl#config_key."""
    text = env.get(ENV_PATH, "").strip()
    if not text:
        return DEFAULT_KEY_REF
    try:
        return parse_ref(text)
    except ConfigError as exc:
        raise ConfigError(f"{ENV_PATH}: {exc}") from None


class _KvV2(Protocol):
    def read_secret_version(
        self, path: str, mount_point: str, raise_on_deleted_version: bool
    ) -> Any: ...

    def create_or_update_secret(
        self, path: str, secret: Mapping[str, object], mount_point: str
    ) -> object: ...


class _Kv(Protocol):
    @property
    def v2(self) -> _KvV2: ...


class _Secrets(Protocol):
    @property
    def kv(self) -> _Kv: ...


class _AppRole(Protocol):
    def login(self, role_id: str, secret_id: str) -> object: ...


class _Auth(Protocol):
    @property
    def approle(self) -> _AppRole: ...


class HvacClient(Protocol):
    """The part of ``hvac.Client`` this module uses (hvac ships no type information)."""

    @property
    def secrets(self) -> _Secrets: ...

    @property
    def auth(self) -> _Auth: ...


class VaultClient:
    """An authenticated connection to one Vault. Use :meth:`connect`."""

    def __init__(self, client: HvacClient, addr: str) -> None:
        self._client = client
        self.addr = addr

    @classmethod
    def connect(cls, env: Mapping[str, str], timeout: float = TIMEOUT_S) -> VaultClient:
        """Log in with VAULT_TOKEN, or AppRole when VAULT_ROLE_ID is set.

        Raises VaultUnreachable (nothing answers), VaultError (login refused, nothing to log in
        with), UserError when VAULT_ADDR is not set.
        """
        addr = env.get(ENV_ADDR, "").strip()
        if not addr:
            raise UserError(f"{ENV_ADDR} is not set; set it to your Vault's address")
        import hvac

        verify: bool | str = True
        if env.get(ENV_CACERT):
            verify = env[ENV_CACERT]
        if env.get(ENV_SKIP_VERIFY, "").strip().lower() in ("1", "true", "yes"):
            verify = False
        role_id = env.get(ENV_ROLE_ID, "").strip()
        token = env.get(ENV_TOKEN, "").strip()
        if not role_id and not token:
            raise VaultError(
                f"{ENV_ADDR} is set but there is nothing to log in to Vault with; set "
                f"{ENV_TOKEN}, or {ENV_ROLE_ID} and {ENV_SECRET_ID} for AppRole"
            )
        # An explicit token ("" when using AppRole) stops hvac reading ~/.vault-token behind
        # our back.
        client: HvacClient = hvac.Client(
            url=addr,
            token="" if role_id else token,
            verify=verify,
            timeout=timeout,
            namespace=env.get(ENV_NAMESPACE) or None,
        )
        vault = cls(client, addr)
        if role_id:
            secret_id = env.get(ENV_SECRET_ID, "")
            vault._call(
                lambda: client.auth.approle.login(role_id=role_id, secret_id=secret_id),
                "AppRole login",
            )
        return vault

    def read(self, ref: VaultRef) -> str | None:
        """The field's value, or None when the secret or the field does not exist."""
        import hvac.exceptions

        def read() -> Any:
            return self._client.secrets.kv.v2.read_secret_version(
                path=ref.path, mount_point=ref.mount, raise_on_deleted_version=True
            )

        try:
            response = self._call(read, f"reading {ref}", missing=hvac.exceptions.InvalidPath)
        except _Missing:
            return None
        data = (response or {}).get("data", {}).get("data") or {}
        value = data.get(ref.field)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def write(self, ref: VaultRef, value: str) -> None:
        """Set one field, keeping the secret's other fields (a new KV v2 version)."""
        import hvac.exceptions

        def current() -> Any:
            return self._client.secrets.kv.v2.read_secret_version(
                path=ref.path, mount_point=ref.mount, raise_on_deleted_version=False
            )

        try:
            response = self._call(current, f"reading {ref}", missing=hvac.exceptions.InvalidPath)
            data = dict((response or {}).get("data", {}).get("data") or {})
        except _Missing:
            data = {}
        data[ref.field] = value
        self._call(
            lambda: self._client.secrets.kv.v2.create_or_update_secret(
                path=ref.path, secret=data, mount_point=ref.mount
            ),
            f"writing {ref}",
        )

    def _call(
        self, fn: Callable[[], Any], what: str, missing: type[Exception] | None = None
    ) -> Any:
        """Run one hvac call, turning its errors into ours (messages without secrets)."""
        import hvac.exceptions
        import requests

        try:
            return fn()
        except requests.exceptions.RequestException as exc:
            raise VaultUnreachable(
                f"Vault at {self.addr} is unreachable ({_reason(exc)}) while {what}"
            ) from None
        except Exception as exc:
            if missing is not None and isinstance(exc, missing):
                raise _Missing from None
            if isinstance(exc, hvac.exceptions.Forbidden | hvac.exceptions.Unauthorized):
                raise VaultError(
                    f"Vault at {self.addr} refused {what}: permission denied; check "
                    f"{ENV_TOKEN} (or the AppRole's {ENV_ROLE_ID}/{ENV_SECRET_ID}) and its policy"
                ) from None
            if isinstance(exc, hvac.exceptions.InvalidRequest):
                raise VaultError(
                    f"Vault at {self.addr} refused {what}: {_first_line(exc)}; check the "
                    "credentials and the KV v2 mount"
                ) from None
            if isinstance(exc, hvac.exceptions.VaultError):
                raise VaultError(
                    f"Vault at {self.addr} failed {what}: {type(exc).__name__} {_first_line(exc)}"
                ) from None
            raise


class _Missing(Exception):
    pass


def _reason(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {TIMEOUT_S:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error; check VAULT_CACERT"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


# -- secret references ------------------------------------------------------------------------

_cache: dict[tuple[str, str, str, str], tuple[float, str]] = {}
_cache_lock = threading.Lock()


def resolve_secret(
    value: str,
    env: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    max_age_s: float = CACHE_S,
) -> str:
    """A secret setting's value ready to use: a ``vault:mount/path#field`` reference is read from
    Vault (cached for ``max_age_s``), anything else is returned unchanged.

    Raises ConfigError for a malformed reference, VaultUnreachable / VaultError when it cannot be
    read (the message names the reference, never the secret).
    """
    if not is_reference(value):
        return value
    import os

    env = os.environ if env is None else env
    ref = parse_ref(value)
    if not configured(env):
        raise VaultError(
            f"a secret setting refers to Vault ({ref}) but {ENV_ADDR} is not set; set the "
            f"{ENV_ADDR}/{ENV_TOKEN} variables for the service"
        )
    cache_key = (env[ENV_ADDR], env.get(ENV_NAMESPACE, ""), str(ref), _identity(env))
    now = clock()
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None and now - hit[0] < max_age_s:
            return hit[1]
    text = VaultClient.connect(env).read(ref)
    if text is None:
        raise VaultError(f"no secret in Vault at {env[ENV_ADDR]} {ref}; check the reference")
    with _cache_lock:
        _cache[cache_key] = (now, text)
    return text


def _identity(env: Mapping[str, str]) -> str:
    """Who we log in as, hashed: a cached secret is reused only for the same credentials."""
    import hashlib

    who = "\0".join(env.get(k, "") for k in (ENV_TOKEN, ENV_ROLE_ID, ENV_SECRET_ID))
    return hashlib.sha256(who.encode()).hexdigest()


def clear_cache() -> None:
    """Forget resolved references (after a configuration reload, and in tests)."""
    with _cache_lock:
        _cache.clear()


def resolved(settings: Mapping[str, Any], name: str, env: Mapping[str, str] | None = None) -> str:
    """``settings[name]`` with a Vault reference resolved: what a sink passes to its backend."""
    return resolve_secret(str(settings[name]), env)
