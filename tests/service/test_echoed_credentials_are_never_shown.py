"""A database that echoes the credentials it was sent: none of them may come back out.

A real HTTP server on loopback answers every write with 401 (then 400) and a body that repeats
the request's ``Authorization`` header and the password in the ways servers and proxies do: raw,
percent-encoded, JSON-escaped. Before, the basic-auth form (base64 of ``user:password``) went
into the log, ``status --json``, the alert (and its command's environment) and the dead-letter
table. Now no form of the credentials appears in any of them.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from filamentctl.core.redact import redact, secret_forms
from tests.helpers import ServiceProcess, raw_request, short_home, wait_until

USER = "vmuser"
PASSWORD = 'S3KRET/pass "7731"+x'  # characters that every encoding changes


class EchoServer:
    """Answers every request with ``status`` and a body that echoes the credentials."""

    def __init__(self) -> None:
        self.status = 401
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                sent = base64.b64decode(auth.split()[-1]).decode() if auth else ""
                password = sent.split(":", 1)[-1]
                body = (
                    f"denied: you sent Authorization: {auth} "
                    f"(as JSON {json.dumps({'auth': auth, 'password': password})}, "
                    f"as a URL ?u={urllib.parse.quote(sent, safe='')}"
                    f"&p={urllib.parse.quote_plus(password)}, raw {password})"
                )
                self.send_response(outer.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def leaks(text: str) -> list[str]:
    """The forms of the credentials found in ``text``."""
    forms = secret_forms(PASSWORD, [USER])
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert basic in forms and urllib.parse.quote(PASSWORD, safe="") in forms
    return sorted(f for f in forms if f in text)


def test_the_forms_checked_here_are_all_masked() -> None:
    """The oracle itself: each form the server echoes is one the redactor knows."""
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    body = f"{auth} {json.dumps(PASSWORD)} {urllib.parse.quote_plus(PASSWORD)} {PASSWORD}"
    assert leaks(body)
    assert leaks(redact(body, [PASSWORD], [USER])) == []


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def test_echoed_credentials_never_reach_logs_status_alerts_or_dead_letters(
    echo: EchoServer,
) -> None:
    home = short_home()
    alert_file = home / "alert.env"
    svc = ServiceProcess(
        home,
        env={
            "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
            "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "0.2",
            "FILAMENTCTL_DATABASE__TYPE": "victoriametrics",
            "FILAMENTCTL_DATABASE__VICTORIAMETRICS__URL": echo.url,
            "FILAMENTCTL_DATABASE__VICTORIAMETRICS__USERNAME": USER,
            "FILAMENTCTL_DATABASE__VICTORIAMETRICS__PASSWORD": PASSWORD,
            "FILAMENTCTL_WRITER__FLUSH_INTERVAL": "0.2",
            "FILAMENTCTL_WRITER__BATCH_SIZE": "5",
            "FILAMENTCTL_RETRY__BACKOFF_BASE": "0.2",
            "FILAMENTCTL_RETRY__BACKOFF_MAX": "1",
            "FILAMENTCTL_RETRY__ALERT_THRESHOLD": "1",
            "FILAMENTCTL_RETRY__ALERT_COMMAND": f"env | grep FILAMENTCTL_ALERT > {alert_file}",
        },
        args=("--simulate", "--debug"),
    )
    svc.start()
    try:
        # 401: an auth alert, shown in status and handed to the alert command.
        status = wait_until(
            lambda: _alerted(svc.socket), timeout=30, what="the authentication alert"
        )
        wait_until(alert_file.exists, timeout=30, what="the alert command to run")
        assert "401" in status["storage"]["last_error"]
        assert "denied" in status["storage"]["last_error"]  # the server's words, masked

        # 400: the batch goes to the dead-letter table with the server's message.
        echo.status = 400
        wait_until(
            lambda: _status(svc.socket)["storage"]["dead_letter"] > 0,
            timeout=30,
            what="a dead-lettered batch",
        )
        [listed] = raw_request(svc.socket, b'{"id":1,"op":"deadletter.list"}\n')
        status_text = json.dumps(_status(svc.socket))
    finally:
        svc.stop()
    with sqlite3.connect(home / "state" / "history.db") as db:
        stored = "\n".join(row[0] for row in db.execute("SELECT error FROM dead_letter"))
    assert "400" in stored

    shown = {
        "log": svc.log(),
        "status": status_text,
        "alert command environment": alert_file.read_text(),
        "dead-letter list": json.dumps(listed),
        "dead-letter table": stored,
    }
    assert "Basic" in shown["log"]  # the echoed header was there to leak...
    for where, text in shown.items():
        assert leaks(text) == [], f"credentials in the {where}"  # ... and nothing leaked


def _status(path: Path) -> dict[str, Any]:
    [reply] = raw_request(path, b'{"id":1,"op":"status"}\n')
    result: dict[str, Any] = reply["result"]
    return result


def _alerted(path: Path) -> dict[str, Any] | None:
    status = _status(path)
    return status if status["storage"].get("alert") else None
