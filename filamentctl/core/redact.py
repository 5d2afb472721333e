"""Keeping secrets out of what we log, store and show.

A server's error body may echo what it was sent: the ``Authorization`` header (``Basic`` +
base64 of ``user:password``, or ``Bearer <token>``), a URL with the password percent-encoded, a
JSON document with it escaped. :func:`secret_forms` lists every encoding of a secret that can
come back that way; a :class:`Redactor` replaces all of them (and any ``Authorization``-style
credential, whatever it encodes) with ``***``. Pure: no I/O.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import urllib.parse
from collections.abc import Iterable

MASK = "***"
# "Authorization: Basic xxx", "Bearer xxx", "Token xxx": whatever the value, never shown. A
# bearer/token value must look like a credential (8+ characters with a digit or one of + / =),
# so that prose such as "token expired" stays readable; a basic value must decode to user:pass.
_AUTH_VALUE = re.compile(
    r"(?i)\b(?:(basic)(\s+|%20|\+)([A-Za-z0-9+/_-]{4,}={0,2})"
    r"|(bearer|token)(\s+|%20|\+)(?=[A-Za-z0-9._~-]*[0-9+/=])[A-Za-z0-9+/=._~-]{8,})"
)


def _mask_auth(m: re.Match[str]) -> str:
    if m.group(1) is None:
        return f"{m.group(4)}{m.group(5)}{MASK}"
    value = m.group(3)
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_")
    except ValueError:
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{MASK}" if b":" in decoded else m.group(0)


def _b64_forms(raw: bytes) -> set[str]:
    out = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(raw).decode("ascii")
        out |= {text, text.rstrip("=")}
    return out


def secret_forms(secret: str, usernames: Iterable[str] = ()) -> set[str]:
    """Every form of ``secret`` that can come back from a server: the text itself, base64 of
    ``user:secret`` (for each user name) and of the secret alone, percent-encoded (either case
    of hex, ``+`` for spaces or not), JSON-escaped, HTML-escaped. Empty secret: no forms."""
    if not secret:
        return set()
    raw = {secret}
    encoded = secret.encode()
    forms = set(raw)
    forms |= _b64_forms(encoded)
    for user in {*usernames, ""}:
        forms |= _b64_forms(f"{user}:{secret}".encode())
    for text in list(raw):
        quoted = {urllib.parse.quote(text, safe=safe) for safe in ("", "/")} | {
            urllib.parse.quote_plus(text, safe=safe) for safe in ("", "/")
        }
        forms |= quoted | {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q) for q in quoted}
        forms.add(json.dumps(text)[1:-1])
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
        forms.add(html.escape(text))
    # A JSON encoder may also escape the slashes of a base64 form.
    forms |= {f.replace("/", "\\/") for f in forms if "/" in f}
    return {f for f in forms if f}


class Redactor:
    """Replaces every known form of the secrets it was given; thread-safe."""

    def __init__(self) -> None:
        self._forms: list[str] = []
        self._lock = threading.Lock()

    def add(self, secret: str, usernames: Iterable[str] = ()) -> None:
        """Also redact ``secret`` (in every form :func:`secret_forms` lists)."""
        new = secret_forms(secret, usernames)
        if not new:
            return
        with self._lock:
            # Longest first: a secret inside one of its own encodings goes with the whole.
            self._forms = sorted(set(self._forms) | new, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every known secret form, and any auth header value, masked."""
        if not text:
            return text
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return _AUTH_VALUE.sub(_mask_auth, text)


def redact(text: str, secrets: Iterable[str], usernames: Iterable[str] = ()) -> str:
    """One-off :class:`Redactor` use: ``text`` with every form of ``secrets`` masked."""
    r = Redactor()
    users = list(usernames)
    for secret in secrets:
        r.add(secret, users)
    return r(text)


#: Every database secret of every sink built in this process, in all its forms (registered by
#: :mod:`filamentctl.sinks.base`): the log handler masks them too (a sink's own log lines, a
#: traceback). Here rather than in the sinks so that a process with no sink (a gateway) can
#: use the log filter without loading them and the configuration schema (~4 MB).
SECRETS = Redactor()
