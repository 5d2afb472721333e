"""Logging for the service: stderr, with syslog priority prefixes under journald, or JSON lines.

journald reads ``<N>`` prefixes only when stderr really is its stream, which systemd announces in
``JOURNAL_STREAM=dev:inode``; we compare that with stderr's own device and inode.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def stderr_is_journal(env: dict[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def _priority(levelno: int) -> int:
    for level, prio in sorted(_PRIORITY.items(), reverse=True):
        if levelno >= level:
            return prio
    return 7


class SecretFilter(logging.Filter):
    """Masks every database secret the sinks registered (all its forms) in a record's message
    and traceback, whatever logged it: the last line of defence before the journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        from filamentctl.core.redact import SECRETS

        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the handler report it as usual
            return True
        clean = SECRETS(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = SECRETS(record.exc_text)
        return True


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_text:
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else ""


class JournalFormatter(logging.Formatter):
    """``<6>filamentctl.sampler: message`` — journald adds its own timestamps."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info or record.exc_text:
            text += "\n" + _exception_text(self, record)
        prio = _priority(record.levelno)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            doc["exception"] = _exception_text(self, record)
        return json.dumps(doc, ensure_ascii=False)


def setup(level: str = "info", fmt: str = "text", debug: bool = False) -> None:
    """Configure the ``filamentctl`` logger tree (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif stderr_is_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger("filamentctl")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
