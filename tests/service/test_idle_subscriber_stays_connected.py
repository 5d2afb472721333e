"""A subscriber on quiet topics is not taken for gone: the check for a closed client must not
wait on a socket that has a send timeout (it used to block for the timeout, then end the live
subscription, which the dashboard showed as a spurious DISCONNECTED every ~20 s)."""

from __future__ import annotations

import socket

from filamentctl.service.handlers.readings import SUBSCRIBER_SEND_TIMEOUT_S
from filamentctl.service.handlers.readings import peer_gone as _peer_gone
from filamentctl.service.server import Connection, Peer


def test_an_idle_live_client_is_not_gone_and_a_closed_one_is() -> None:
    service_end, client_end = socket.socketpair()
    try:
        # As op_subscribe sets it: a send timeout on the service's end.
        service_end.settimeout(SUBSCRIBER_SEND_TIMEOUT_S)
        conn = Connection(service_end, Peer(0, 0, 0))
        assert _peer_gone(conn) is False  # idle: no data, no end-of-file
        client_end.sendall(b'{"id": 2, "op": "ping"}\n')
        assert _peer_gone(conn) is False  # data waiting is not consumed
        assert service_end.recv(100).startswith(b'{"id": 2')
        client_end.close()
        assert _peer_gone(conn) is True
        service_end.close()
        assert _peer_gone(conn) is True  # our own end closed: nothing more to send to
    finally:
        service_end.close()
        client_end.close()
