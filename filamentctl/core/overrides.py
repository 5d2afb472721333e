"""The rule for a manual override request (mode and duration), on its own.

:mod:`filamentctl.core.control` applies overrides; this module only judges a request's raw
values, so that a gateway (the web page's form) can check them without importing the control
state machines (~1.5 MB of resident memory in a process that never controls anything).
"""

from __future__ import annotations

import math

REQUEST_MODES = ("auto", "on", "off")
#: Longest manual override: a year is already "forever" for a dry box; larger values overflow
#: the timestamps status shows.
MAX_OVERRIDE_S = 366 * 86400.0


def override_problem(mode: object, for_s: object, *, for_name: str = "for_s") -> str | None:
    """Why ``mode``/``for_s`` (a request's raw values) is not a valid override, or None.

    The one definition of the rule for every layer: the socket (``heater.set``), the web
    gateway and the CLI (which names the option, ``for_name="--for"``).
    """
    if mode not in REQUEST_MODES:
        return "'mode' must be auto, on or off"
    if for_s is None:
        return None
    if (
        isinstance(for_s, bool)
        or not isinstance(for_s, int | float)
        or not math.isfinite(for_s)
        or not 0 < for_s <= MAX_OVERRIDE_S
    ):
        return f"{for_name} must be a positive number of seconds, at most a year"
    if mode == "auto":
        return f"{for_name} applies to 'on' and 'off' only, not 'auto'"
    return None
