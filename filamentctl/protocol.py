"""The socket wire format: newline-delimited JSON, one request per line.

Request:   {"v": 1, "id": <str|int>, "op": "status", "args": {...}}
Response:  {"v": 1, "id": <same>, "ok": true, "result": {...}}
           {"v": 1, "id": <same>, "ok": false, "error": {"code": "bad_request", "message": "..."}}
Event:     {"v": 1, "id": <id of the subscribe/flush request>, "event": "reading", "data": {...}}

Used by the service, the CLI and the dashboard alike; documented in docs/protocol.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
MAX_LINE = 64 * 1024  # bytes; longer requests are refused with ``too_large``

# Named error codes.
BAD_JSON = "bad_json"
BAD_REQUEST = "bad_request"
TOO_LARGE = "too_large"
UNKNOWN_OP = "unknown_op"
BAD_VERSION = "unsupported_version"
INVALID_ARGS = "invalid_args"
REFUSED = "refused"  # understood, but not allowed now (e.g. heater on during a latched fault)
NOT_SIMULATED = "not_simulated"
PERMISSION = "permission_denied"
TIMEOUT = "timeout"
INTERNAL = "internal"
BUSY = "busy"  # every slot (or every slot for this operation) is in use: retry in a moment

# Event topics a subscriber may ask for (an event ``storage.rejected`` matches ``storage``).
TOPICS = ("reading", "relay", "sensor", "storage", "alert", "drying")

# Every operation and the arguments it takes; any other argument is refused (invalid_args).
OP_ARGS: dict[str, tuple[str, ...]] = {
    "status": (),
    "read": (),
    "subscribe": ("topics",),
    "flush": ("timeout",),
    "history": ("since_s", "limit", "step_s"),
    "sim.set": ("temperature", "humidity", "fault"),
    "sim.clear": (),
    "heater.set": ("mode", "for_s"),
    "heater.reset": (),
    "fan.set": ("mode", "for_s"),
    "fan.reset": (),
    "deadletter.list": (),
    "deadletter.replay": ("ids",),
    "deadletter.purge": ("ids",),
    "config.reload": (),
    "config.get": ("keys", "reveal"),
    "config.set": ("values", "unset"),
    "gateway.settings": ("gateway",),
    "notify.test": (),
    "dry.start": ("material", "temp_c", "for_s"),
    "dry.stop": (),
    "dry.status": (),
    "dry.profiles": (),
    "dry.history": ("limit",),
    "ping": (),
}
OPS = tuple(OP_ARGS)
# The most a flush may be given (seconds): every operation has a bounded duration.
MAX_FLUSH_TIMEOUT_S = 3600.0
# Dead-letter ids are SQLite integers.
MAX_ID = 2**63 - 1


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Request:
    id: Any
    op: str
    args: dict[str, Any] = field(default_factory=dict)


def encode(message: dict[str, Any]) -> bytes:
    """One message as a single UTF-8 line."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False, default=str).encode() + b"\n"


def request(req_id: Any, op: str, args: dict[str, Any] | None = None) -> bytes:
    return encode({"v": VERSION, "id": req_id, "op": op, "args": args or {}})


def ok(req_id: Any, result: Any) -> bytes:
    return encode({"v": VERSION, "id": req_id, "ok": True, "result": result})


def ok_parts(req_id: Any) -> tuple[bytes, bytes]:
    """What goes before and after a result's JSON text in an ``ok`` reply (for replies sent
    piece by piece): ``head + result + tail`` equals ``ok(req_id, result)``."""
    marker = "\x00result\x00"
    head, tail = encode({"v": VERSION, "id": req_id, "ok": True, "result": marker}).split(
        json.dumps(marker).encode()
    )
    return head, tail


def error(req_id: Any, code: str, message: str) -> bytes:
    return encode(
        {"v": VERSION, "id": req_id, "ok": False, "error": {"code": code, "message": message}}
    )


def event(req_id: Any, name: str, data: Any) -> bytes:
    return encode({"v": VERSION, "id": req_id, "event": name, "data": data})


def parse_request(line: bytes) -> Request:
    """Decode one request line; raises :class:`ProtocolError` with a named code."""
    if len(line) > MAX_LINE:
        raise ProtocolError(TOO_LARGE, f"request is longer than {MAX_LINE} bytes")
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(BAD_JSON, f"request is not valid JSON: {exc}") from None
    except RecursionError:  # absurdly deep nesting: json gives up before we would
        raise ProtocolError(BAD_JSON, "request is nested too deeply") from None
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_REQUEST, "request must be a JSON object")
    version = msg.get("v", VERSION)
    if version != VERSION:
        raise ProtocolError(
            BAD_VERSION, f"protocol version {version!r} not supported (this is {VERSION})"
        )
    op = msg.get("op")
    if not isinstance(op, str):
        raise ProtocolError(BAD_REQUEST, "request needs an 'op' string")
    args = msg.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(BAD_REQUEST, "'args' must be a JSON object")
    return Request(msg.get("id"), op, args)


def parse_message(line: bytes) -> dict[str, Any]:
    """Decode one line from the service (client side)."""
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("service sent a non-object message")
    return msg
