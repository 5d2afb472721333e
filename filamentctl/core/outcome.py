"""What a backend said about one batch, and what the delivery engine does about it.

Pure: sinks turn their transport's answer into a :class:`WriteResult`; the delivery
engine acts on ``result.outcome`` only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    ACK = "ack"  # stored: advance the cursor
    RETRY = "retry"  # transient (network, 429, 5xx): keep, back off, resend
    SPLIT = "split"  # too large (413): halve the batch and resend
    REJECT = "reject"  # bad data (400/422): move the batch to the dead-letter table
    AUTH = "auth"  # 401/403: keep the data, raise an auth alert, back off


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    status: int | None = None  # HTTP status (or None for non-HTTP / network errors)
    message: str = ""  # one line, never containing secrets
    retry_after_s: float | None = None  # from a Retry-After header, when present

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACK


ACKED = WriteResult(Outcome.ACK)


def classify_http(
    status: int, message: str = "", retry_after_s: float | None = None
) -> WriteResult:
    """Map an HTTP status to an outcome (the policy in docs/delivery.md)."""
    if 200 <= status < 300:
        return WriteResult(Outcome.ACK, status, message)
    if 300 <= status < 400:
        # A redirect (e.g. http:// to https://) will not go away by retrying: keep the data and
        # alert, like bad credentials, so the user fixes the URL.
        return WriteResult(
            Outcome.AUTH, status, message or f"HTTP {status}: redirected; use the final URL"
        )
    if status == 413:
        return WriteResult(Outcome.SPLIT, status, message or "batch too large")
    if status in (400, 422):
        return WriteResult(Outcome.REJECT, status, message or "backend rejected the data")
    if status in (401, 403):
        return WriteResult(Outcome.AUTH, status, message or "authentication failed")
    return WriteResult(Outcome.RETRY, status, message or f"HTTP {status}", retry_after_s)


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped at 600 s.

    ``now_s`` (epoch seconds) is needed only for the HTTP-date form.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, min(float(value), 600.0))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    if now_s is None:
        return None
    return max(0.0, min(when - now_s, 600.0))
