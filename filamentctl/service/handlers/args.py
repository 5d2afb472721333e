"""Argument checks shared by the socket handlers (each raises ``ProtocolError`` invalid_args)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from filamentctl import protocol
from filamentctl.protocol import ProtocolError, Request
from filamentctl.service.server import Connection

Handler = Callable[[Request, Connection], Any]

MAX_IDS = 10_000  # dead-letter ids in one replay/purge request


def number_arg(
    args: Mapping[str, Any],
    name: str,
    default: float,
    minimum: float,
    maximum: float = float("inf"),
) -> float:
    """A finite number argument within [minimum, maximum], or ``default`` when absent."""
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be a number")
    if value < minimum:
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be at least {minimum:g}")
    if value > maximum:
        raise ProtocolError(protocol.INVALID_ARGS, f"'{name}' must be at most {maximum:g}")
    return float(value)


def ids_arg(args: Mapping[str, Any]) -> list[int] | None:
    """The ``ids`` argument (dead-letter entries), or None when absent."""
    ids = args.get("ids")
    if ids is None:
        return None
    if (
        not isinstance(ids, list)
        or len(ids) > MAX_IDS
        or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= protocol.MAX_ID
            for i in ids
        )
    ):
        raise ProtocolError(
            protocol.INVALID_ARGS,
            f"'ids' must be a list of at most {MAX_IDS} dead-letter ids "
            f"(integers from 1 to {protocol.MAX_ID})",
        )
    return ids
