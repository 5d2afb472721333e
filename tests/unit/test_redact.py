"""Every form in which a server can echo a secret is masked; ordinary text is left alone."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse

import pytest

from filamentctl.core.redact import Redactor, redact

USER = "vmuser"
SECRET = 'p@ss w/rd "x"+1'


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "echo",
    [
        SECRET,
        f"Authorization: Basic {_b64(f'{USER}:{SECRET}')}",
        _b64(f"{USER}:{SECRET}").rstrip("="),
        base64.urlsafe_b64encode(f"{USER}:{SECRET}".encode()).decode(),
        _b64(SECRET),
        urllib.parse.quote(SECRET, safe=""),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(SECRET)),
        urllib.parse.quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        json.dumps(_b64(f"{USER}:{SECRET}")).replace("/", "\\/"),
        html.escape(SECRET),
    ],
)
def test_each_echoed_form_is_masked(echo: str) -> None:
    out = redact(f"HTTP 401: you sent {echo}!", [SECRET], [USER])
    assert out.startswith("HTTP 401: you sent ") and "***" in out
    assert "rd" not in out.replace("you sent", "")  # no part of the secret is left


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123def456", "Authorization: Bearer ***"),
        ("Basic dXNlcjpwYXNz", "Basic ***"),  # user:pass, whatever the password
        ("the token expired; basic authentication required", None),
        ("HTTP 400 from http://127.0.0.1:8428: cannot parse line", None),
    ],
)
def test_credentials_of_unknown_secrets_and_plain_text(text: str, expected: str | None) -> None:
    assert Redactor()(text) == (expected or text)


def test_a_redactor_collects_secrets() -> None:
    r = Redactor()
    r.add("alpha-secret")
    r.add("")  # nothing to mask
    r.add("beta-token", ["bob"])
    assert r("alpha-secret beta-token ok") == "*** *** ok"
