"""The one Protocol every database backend implements, and the registry that picks one by name.

A sink is synchronous and owns no threads or retries: the delivery engine batches, retries and
keeps the backlog. ``write`` never raises for backend or network trouble; it returns a
:class:`~filamentctl.core.outcome.WriteResult`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from filamentctl.core.outcome import WriteResult
from filamentctl.core.reading import Reading, ReadingRow
from filamentctl.core.redact import SECRETS as SECRETS
from filamentctl.core.redact import Redactor
from filamentctl.core.schema import DATABASE_BACKENDS


class Sink(Protocol):
    name: str  # database.type value, e.g. "victoriametrics"

    def open(self) -> None:
        """Prepare the backend (create database/table) — best effort, never raises."""

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        """Deliver one batch, oldest first. Idempotent: resending the same readings is harmless."""

    def describe(self) -> str:
        """Where it writes, for status and logs (URL without credentials)."""

    def close(self) -> None: ...


@runtime_checkable
class PipelinedSink(Protocol):
    """Optional extra of a :class:`Sink`: encode a batch ahead, send it, read the answer later.

    The delivery engine uses it to drain a backlog faster: while the backend works on batch N
    it fetches and encodes batch N+1, and sends that the moment N's answer came back. At most one
    batch is in flight; ``send_prepared`` then ``receive`` always come in pairs (or ``abort``).
    """

    def prepare(self, rows: Sequence[ReadingRow]) -> bytes:
        """The request body for these readings (oldest first); pure work, no I/O."""

    def send_prepared(self, body: bytes) -> None:
        """Send a body from :meth:`prepare` without waiting; never raises for network trouble."""

    def receive(self) -> WriteResult:
        """The outcome of the body sent last, as :meth:`Sink.write` would have returned it."""

    def abort(self) -> None:
        """Forget a sent body whose answer will not be read (it counts as not delivered)."""


# database.type -> module under filamentctl.sinks that defines ``create(settings) -> Sink``: the
# schema's list of backends, each in the module of its name.
BACKENDS: dict[str, str] = {name: name for name in DATABASE_BACKENDS}


def create_sink(settings: Mapping[str, Any]) -> Sink:
    """Build the sink named by ``settings["database.type"]``, importing its module lazily.

    The sink comes wrapped so that no message it returns (what the delivery engine logs, shows
    in ``status``, puts in alerts and the dead-letter table) carries a configured secret in any
    encoding a server may echo (see :mod:`filamentctl.core.redact`).
    """
    kind = str(settings["database.type"])
    module_name = BACKENDS.get(kind)
    if module_name is None:
        raise ValueError(f"database.type {kind!r} is not supported by this version")
    module = importlib.import_module(f"filamentctl.sinks.{module_name}")
    sink: Sink = module.create(settings)
    if kind == "none":
        return sink
    redactor = Redactor()
    for secret, users in database_secrets(settings):
        redactor.add(secret, users)
        SECRETS.add(secret, users)
    if isinstance(sink, PipelinedSink):
        return _RedactingPipelinedSink(sink, redactor)
    return _RedactingSink(sink, redactor)


def database_secrets(settings: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """Each configured database secret with the user names that go with it in basic auth.

    The settings come with Vault references already resolved (the service builds sinks from
    ``service.secrets.with_secrets``), so the values here are the secrets themselves.
    """
    from filamentctl.core import schema

    users = [
        str(v).strip()
        for k, v in settings.items()
        if k.startswith("database.") and k.endswith(".username") and v
    ]
    out = []
    for key, value in settings.items():
        spec = schema.SCHEMA.get(key)
        if spec is None or not spec.secret or not key.startswith("database.") or not value:
            continue
        secret = str(value)
        # The sinks strip a trailing newline from a secret read from a file: both forms.
        for form in {secret, secret.strip()}:
            if form:
                out.append((form, users))
    return out


class _RedactingSink:
    """A sink whose messages (and exceptions) pass through a :class:`Redactor`."""

    def __init__(self, inner: Any, redactor: Redactor) -> None:
        self._inner = inner
        self._redact = redactor
        self.name: str = inner.name

    def __getattr__(self, attr: str) -> Any:  # anything else a backend offers (e.g. tests)
        return getattr(self._inner, attr)

    def _result(self, result: WriteResult) -> WriteResult:
        clean = self._redact(result.message)
        return result if clean == result.message else replace(result, message=clean)

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._inner, method)(*args)
        except Exception as exc:
            # The delivery engine reports a raising sink by its exception's text: clean it.
            raise (
                type(exc)(self._redact(str(exc)))
                if _rebuildable(exc)
                else RuntimeError(f"{type(exc).__name__}: {self._redact(str(exc))}")
            ) from None

    def open(self) -> None:
        self._inner.open()

    def write(self, readings: Sequence[Reading]) -> WriteResult:
        result: WriteResult = self._call("write", readings)
        return self._result(result)

    def describe(self) -> str:
        return self._redact(str(self._inner.describe()))

    def close(self) -> None:
        self._inner.close()


class _RedactingPipelinedSink(_RedactingSink):
    def prepare(self, rows: Sequence[ReadingRow]) -> bytes:
        body: bytes = self._call("prepare", rows)
        return body

    def send_prepared(self, body: bytes) -> None:
        self._call("send_prepared", body)

    def receive(self) -> WriteResult:
        result: WriteResult = self._call("receive")
        return self._result(result)

    def abort(self) -> None:
        self._inner.abort()


def _rebuildable(exc: Exception) -> bool:
    try:
        type(exc)("x")
    except Exception:
        return False
    return True
