"""Secret settings resolved for the part that uses them (a sink, a gateway).

A token or password setting may hold a ``vault:mount/path#field`` reference instead of the
secret. The composition root resolves the references of the keys a part needs right before it
builds that part, so sinks and gateways get plain values and never reach into the store.
"""

from __future__ import annotations

from collections.abc import Mapping

from filamentctl.core import schema


def with_secrets(settings: Mapping[str, object], prefix: str) -> dict[str, object]:
    """A copy of ``settings`` whose secret keys under ``prefix`` hold their resolved values.

    Raises VaultUnreachable / VaultError (store.vault) when a reference cannot be read; the
    message names the reference, never a secret.
    """
    from filamentctl.store.vault import resolve_secret

    out = dict(settings)
    for name, value in settings.items():
        key = schema.SCHEMA.get(name)
        if name.startswith(prefix) and key is not None and key.secret and isinstance(value, str):
            out[name] = resolve_secret(value) if value else value
    return out
