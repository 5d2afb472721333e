"""An in-process service stand-in for the dashboard tests: a real Unix socket speaking the real
wire format (``filamentctl.protocol``), fed scripted events, recording every request it got.

It stands in for the service only where a test needs to script what the service says (a latched
fault, a flush that pauses half-way, a service that vanishes and comes back at a chosen moment);
the tmux test drives the dashboard against the real service.
"""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
from pathlib import Path
from typing import Any

from filamentctl import protocol
from filamentctl.protocol import ProtocolError

READING: dict[str, Any] = {
    "time": "2026-11-23T18:40:37.123456Z",
    "time_ns": 1795459237123456000,
    "seq": 60,
    "age_s": 0.4,
    "temperature_c": 21.3,
    "temperature_f": 70.34,
    "humidity": 41.2,
    "dew_point_c": 7.6,
    "absolute_humidity_g_m3": 7.7,
    "pressure_hpa": 1013.2,
}

HEATER_THRESHOLDS = {
    "enabled": True,
    "min_temp_c": 20.0,
    "max_temp_c": 22.0,
    "cutoff_temp_c": 60.0,
    "min_cycle_s": 30.0,
    "max_on_s": 3600.0,
    "runaway_gain_c": 1.0,
    "runaway_window_s": 600.0,
    "stale_after_s": 30.0,
}

FAN_THRESHOLDS = {
    "enabled": True,
    "min_humidity": 30.0,
    "max_humidity": 40.0,
    "min_cycle_s": 30.0,
    "on_fault": "off",
    "stale_after_s": 30.0,
}


def relay_section(thresholds: dict[str, Any], *, on: bool = False) -> dict[str, Any]:
    return {
        "enabled": True,
        "on": on,
        "pin_level": int(on),
        "mode": "auto",
        "reason": "auto: within band" if not on else "auto: 45.0 % > 40.0 %",
        "override": None,
        "override_until": None,
        "override_remaining_s": None,
        "latched": None,
        "thresholds": dict(thresholds),
    }


def sample_status() -> dict[str, Any]:
    """A full ``status`` document in the documented shape, with fixed values."""
    return {
        "version": "0.1.0",
        "protocol": 1,
        "uptime_s": 754.2,
        "simulated": True,
        "readings_total": 60,
        "reading": dict(READING),
        "sensor": {
            "type": "simulated",
            "health": "OK",
            "last_error": None,
            "errors": 0,
            "rejected": 0,
        },
        "storage": {
            "backend": "victoriametrics",
            "connected": True,
            "backlog": 3,
            "oldest_unsent_age_s": 12.0,
            "written": 57,
            "dropped": 0,
            "rejected": 0,
            "dead_letter": 0,
            "last_error": None,
            "next_retry_s": None,
        },
        "heater": relay_section(HEATER_THRESHOLDS),
        "fan": relay_section(FAN_THRESHOLDS, on=True),
        "drying": None,
    }


PROFILES: dict[str, Any] = {
    "cap_c": 50.0,
    "cap_reason": "dry.max_temp_c",
    "profiles": [
        {
            "name": "PLA",
            "temp_c": 55.0,
            "runs_at_c": 50.0,
            "capped": True,
            "min_s": 14400.0,
            "max_s": 28800.0,
            "source": "built-in",
        },
        {
            "name": "TPU",
            "temp_c": 45.0,
            "runs_at_c": 45.0,
            "capped": False,
            "min_s": 14400.0,
            "max_s": 28800.0,
            "source": "dry.profiles",
        },
    ],
}


def drying_section(material: str = "PLA", elapsed_s: float = 5400.0) -> dict[str, Any]:
    """A running session's ``status`` drying section, in the documented shape."""
    return {
        "id": "3f9c2a17b0d4",
        "material": material,
        "target_c": 50.0,
        "profile_temp_c": 55.0,
        "capped": True,
        "cap_c": 50.0,
        "cap_reason": "dry.max_temp_c",
        "band": {"min_temp_c": 48.0, "max_temp_c": 50.0},
        "started": "2026-11-23T17:10:37.123456Z",
        "elapsed_s": elapsed_s,
        "min_s": 14400.0,
        "max_s": 28800.0,
        "remaining_s": 28800.0 - elapsed_s,
        "progress": elapsed_s / 28800.0,
        "vent": "closed",
        "trend": {
            "slope_g_m3_h": 9.8,
            "stderr_g_m3_h": 0.1,
            "samples": 540,
            "stretches": 6,
            "coverage": 0.78,
        },
        "plateau": False,
        "plateau_slope": 1.0,
        "expected": {
            "reason": "time",
            "at": "2026-11-24T01:10:37.123456Z",
            "in_s": 23400.0,
            "note": "or earlier, once the humidity trend stays within ±1 g/m³/h",
        },
        "water_removed_g": 1.12,
        "water_uncertainty_g": 0.23,
        "vents_measured": 8,
    }


def sample_history(count: int = 120, step_s: int = 30) -> list[dict[str, Any]]:
    """``count`` readings ending at READING's time: a slow warm-up and a humidity dip."""
    out = []
    end_ns = int(READING["time_ns"])
    for i in range(count):
        t = 19.0 + 2.3 * i / count
        h = 48.0 - 6.8 * i / count
        out.append(
            {
                "time_ns": end_ns - (count - 1 - i) * step_s * 1_000_000_000,
                "seq": int(READING["seq"]) - count + 1 + i,
                "temperature_c": round(t, 2),
                "humidity": round(h, 2),
            }
        )
    return out


class FakeService:
    """Listens on ``path`` until ``stop()``; ``start()`` again to simulate a restart.

    ``requests`` lists ``(op, args)`` in arrival order. ``push(name, data)`` sends an event to
    every subscriber. ``flush_gate`` (when set by the test) holds a flush after its first
    progress event until the test sets it.
    """

    def __init__(self, path: Path, status: dict[str, Any] | None = None) -> None:
        self.path = path
        self.status = status if status is not None else sample_status()
        self.history = sample_history()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.flush_steps = [(1, 3), (2, 3), (3, 3)]
        self.flush_gate: threading.Event | None = None
        self._lock = threading.RLock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._subscribers: dict[socket.socket, Any] = {}
        self._threads: list[threading.Thread] = []
        self._running = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeService:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path.unlink(missing_ok=True)
        sock.bind(str(self.path))
        sock.listen(8)
        self._listener = sock
        self._running.set()
        self._spawn(self._accept_loop, sock)
        return self

    def stop(self) -> None:
        """Go away like a stopped service: listener closed, every connection cut, file gone."""
        self._running.clear()
        with self._lock:
            listener, self._listener = self._listener, None
            conns = list(self._conns)
            self._conns.clear()
            self._subscribers.clear()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        if self.flush_gate is not None:
            self.flush_gate.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FakeService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="fake-service")
        self._threads.append(t)
        t.start()

    # -- scripting --------------------------------------------------------------------------
    def ops(self) -> list[str]:
        with self._lock:
            return [op for op, _ in self.requests]

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def push(self, name: str, data: Any) -> None:
        with self._lock:
            subs = list(self._subscribers.items())
        for conn, req_id in subs:
            self._send(conn, protocol.event(req_id, name, data))

    def switch(self, relay: str, on: bool, reason: str, time: str = READING["time"]) -> None:
        """The service switched ``relay`` itself: status changes, a ``relay`` event goes out."""
        with self._lock:
            self.status[relay].update(on=on, pin_level=int(on), reason=reason)
        self.push("relay", {"relay": relay, "on": on, "reason": reason, "time": time})

    def _send(self, conn: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)

    # -- serving ----------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    self._handle(conn, line)
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._subscribers.pop(conn, None)
            conn.close()

    def _handle(self, conn: socket.socket, line: bytes) -> None:
        try:
            req = protocol.parse_request(line)
        except ProtocolError as exc:
            self._send(conn, protocol.error(None, exc.code, exc.message))
            return
        with self._lock:
            self.requests.append((req.op, dict(req.args)))
        try:
            result = self._dispatch(conn, req)
        except ProtocolError as exc:
            self._send(conn, protocol.error(req.id, exc.code, exc.message))
            return
        if result is not None:
            self._send(conn, protocol.ok(req.id, result))

    def _dispatch(self, conn: socket.socket, req: protocol.Request) -> Any:
        op, args = req.op, req.args
        if op == "ping":
            return {"pong": True, "version": "0.1.0"}
        if op == "status":
            with self._lock:
                return copy.deepcopy(self.status)
        if op == "history":
            return list(self.history)
        if op == "subscribe":
            with self._lock:
                self._subscribers[conn] = req.id
                status = copy.deepcopy(self.status)
            self._send(conn, protocol.event(req.id, "status", status))
            return None  # the reply comes only when the stream ends
        if op in ("heater.set", "fan.set"):
            return self._set_mode(op.split(".")[0], args)
        if op in ("heater.reset", "fan.reset"):
            return self._reset(op.split(".")[0])
        if op == "dry.profiles":
            return copy.deepcopy(PROFILES)
        if op == "dry.start":
            return self._dry_start(args)
        if op == "dry.stop":
            return self._dry_stop()
        if op == "flush":
            for delivered, total in self.flush_steps:
                self._send(
                    conn,
                    protocol.event(
                        req.id, "flush.progress", {"delivered": delivered, "total": total}
                    ),
                )
                if self.flush_gate is not None:
                    self.flush_gate.wait(10)
            with self._lock:
                self.status["storage"]["backlog"] = 0
            total = self.flush_steps[-1][1] if self.flush_steps else 0
            return {"delivered": total, "remaining": 0, "ok": True, "error": None}
        raise ProtocolError(protocol.UNKNOWN_OP, f"unknown operation {op!r}")

    def _set_mode(self, relay: str, args: dict[str, Any]) -> dict[str, Any]:
        mode = args.get("mode")
        if mode not in ("auto", "on", "off"):
            raise ProtocolError(protocol.INVALID_ARGS, "'mode' must be auto, on or off")
        with self._lock:
            st = self.status[relay]
            if st["mode"] == "fault" and mode == "on":
                raise ProtocolError(protocol.REFUSED, f"{relay} has a latched fault: reset first")
            on = mode == "on" or (mode == "auto" and st["on"])
            st.update(
                mode="manual" if mode != "auto" else "auto",
                override=None if mode == "auto" else mode,
                on=on,
                pin_level=int(on),
                reason=f"manual {mode}" if mode != "auto" else "auto: within band",
            )
            section: dict[str, Any] = copy.deepcopy(st)
        self.push(
            "relay",
            {"relay": relay, "on": on, "reason": section["reason"], "time": READING["time"]},
        )
        return section

    def _dry_start(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self.status.get("drying") is not None:
                raise ProtocolError(protocol.REFUSED, "a drying session is already running")
            section = drying_section(str(args.get("material")), elapsed_s=0.0)
            self.status["drying"] = section
        message = f"drying {section['material']} at 50 °C (profile 55 °C, capped), 4h to 8h"
        self.push("drying.started", {"material": section["material"], "message": message})
        return copy.deepcopy(section)

    def _dry_stop(self) -> dict[str, Any]:
        with self._lock:
            section = self.status.get("drying")
            if section is None:
                raise ProtocolError(protocol.REFUSED, "no drying session is running")
            self.status["drying"] = None
        record = {
            "material": section["material"],
            "reason": "stopped",
            "water_removed_g": 1.12,
            "message": f"drying {section['material']} ended (stopped) after 1h30m; "
            "about 1.1 ± 0.2 g of water removed",
        }
        self.push("drying.ended", record)
        return record

    def _reset(self, relay: str) -> dict[str, Any]:
        with self._lock:
            st = self.status[relay]
            if st["mode"] != "fault":
                raise ProtocolError(protocol.REFUSED, f"the {relay} has no latched fault")
            st.update(mode="auto", latched=None, reason="reset: back to automatic control")
            section: dict[str, Any] = copy.deepcopy(st)
            return section
