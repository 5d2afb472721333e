"""sd_notify without libsystemd: READY=1, STOPPING=1, STATUS=..., WATCHDOG=1 datagrams.

Everything here is best effort: outside systemd (no ``$NOTIFY_SOCKET``) or when the socket
is gone, calls return False and never raise, so notifying cannot break the service.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

# A datagram to a receiver that does not read could block; never hold up the caller for long.
SEND_TIMEOUT_S = 1.0


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one notification to ``$NOTIFY_SOCKET``; False when not under systemd or on error."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.connect(addr)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` (the recommended ping period), if the watchdog is for us.

    None when there is no watchdog, the value is not a positive number, or ``$WATCHDOG_PID``
    names another process.
    """
    environ = os.environ if env is None else env
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
