"""Who may do what on the web gateway: the token, browser sessions and failed-login throttling.

Pure logic with time passed in (``clock``), so tests need no sleeps:

* :func:`token_matches` compares in constant time (``hmac.compare_digest``).
* :class:`SessionStore` keeps browser logins in memory (a gateway restart logs everyone out):
  a random session id for the HttpOnly cookie and a separate CSRF token the page sends back in
  a header with every state-changing request.
* :class:`LoginThrottle` counts wrong tokens per client address: after ``limit`` failures the
  address is locked out for a while, doubling on each further lockout; each episode of failures
  is logged once when it starts and once, summed up, when it ends.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("filamentctl.web")

Clock = Callable[[], float]


def token_matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is the configured token. Never true when no token is configured."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    expires_at: float

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionStore:
    """Browser sessions, at most ``max_sessions`` (the oldest go first)."""

    def __init__(self, lifetime_s: float, clock: Clock = time.monotonic, max_sessions: int = 64):
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires_at=self._clock() + self.lifetime_s,
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value; an expired one is forgotten."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._clock() >= session.expires_at:
            del self._sessions[session_id]
            return None
        return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass(slots=True)
class _Episode:
    started: float
    last: float
    failures: int = 0
    streak: int = 0  # failures since the last lockout
    lockouts: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed token attempts per client address (browser logins and API tokens alike).

    ``limit`` failures in a row lock the address out for ``lockout_s``, doubling per further
    lockout up to ``max_lockout_s``. An episode ends with a correct token or after ``quiet_s``
    without failures. At most ``max_addresses`` are tracked (the quietest are forgotten).
    """

    def __init__(
        self,
        limit: int = 5,
        lockout_s: float = 60.0,
        max_lockout_s: float = 3600.0,
        quiet_s: float = 600.0,
        clock: Clock = time.monotonic,
        max_addresses: int = 1024,
    ) -> None:
        self.limit = limit
        self.lockout_s = lockout_s
        self.max_lockout_s = max_lockout_s
        self.quiet_s = quiet_s
        self._clock = clock
        self._max = max_addresses
        self._episodes: OrderedDict[str, _Episode] = OrderedDict()

    def retry_after(self, addr: str) -> float:
        """Seconds ``addr`` must still wait before its token is even checked (0: go ahead)."""
        now = self._clock()
        self._expire(now)
        episode = self._episodes.get(addr)
        if episode is None:
            return 0.0
        return max(0.0, episode.locked_until - now)

    def failed(self, addr: str) -> float:
        """Count a wrong token from ``addr``; returns the lockout now in force (0 if none)."""
        now = self._clock()
        self._expire(now)
        episode = self._episodes.get(addr)
        if episode is None:
            episode = self._episodes[addr] = _Episode(started=now, last=now)
            log.warning(
                "wrong token from %s; further failures from this address are counted and "
                "summed up when they stop (after %d in a row it is locked out)",
                addr,
                self.limit,
            )
            while len(self._episodes) > self._max:
                self._end(*self._episodes.popitem(last=False))
        self._episodes.move_to_end(addr)
        episode.failures += 1
        episode.streak += 1
        episode.last = now
        if episode.streak >= self.limit:
            episode.lockouts += 1
            episode.streak = 0
            wait = min(self.lockout_s * 2.0 ** (episode.lockouts - 1), self.max_lockout_s)
            episode.locked_until = now + wait
            return wait
        return 0.0

    def succeeded(self, addr: str) -> None:
        """A correct token from ``addr`` ends its episode."""
        episode = self._episodes.pop(addr, None)
        if episode is not None:
            self._end(addr, episode)

    def _expire(self, now: float) -> None:
        for addr in [
            a
            for a, e in self._episodes.items()
            if now - e.last >= self.quiet_s and now >= e.locked_until
        ]:
            self._end(addr, self._episodes.pop(addr))

    @staticmethod
    def _end(addr: str, episode: _Episode) -> None:
        log.warning(
            "%d wrong token(s) from %s over %.0f s (%d lockout(s)); that episode is over",
            episode.failures,
            addr,
            episode.last - episode.started,
            episode.lockouts,
        )
