"""Human durations: ``90s``, ``15m``, ``2h``, ``1h30m``, ``1d``, or a bare number of seconds.

Used by ``--for DURATION`` on the override commands, ``history --since`` and any config value
that is a length of time. Pure: no clocks.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_UNIT_ORDER = "dhms"
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z])")
_BARE = re.compile(rf"\s*({_NUMBER})\s*")


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` stands for.

    Accepts a bare non-negative number of seconds (``"45"``, ``"2.5"``) or one or more
    ``<number><unit>`` parts with units ``d``, ``h``, ``m``, ``s`` from largest to smallest, each at
    most once (``"1h30m"``, ``"1d 2h"``, ``"1.5h"``). Case and surrounding spaces are ignored.

    Raises ValueError with a one-line message saying what is wrong and what would be accepted
    for anything else (empty text, negative numbers, unknown or repeated units, ``"30m1h"``).
    """
    original = text
    text = text.strip().lower()
    hint = "use e.g. 90s, 15m, 2h, 1h30m, 1d or a number of seconds"
    if not text:
        raise ValueError(f"empty duration; {hint}")
    bare = _BARE.fullmatch(text)
    if bare:
        return _finite(float(bare.group(1)), original, hint)
    total = 0.0
    pos = 0
    last_rank = -1
    while pos < len(text):
        part = _PART.match(text, pos)
        if part is None:
            raise ValueError(f"invalid duration {original!r}; {hint}")
        number, unit = part.groups()
        if unit not in _UNIT_SECONDS:
            raise ValueError(f"invalid duration {original!r}: unknown unit {unit!r}; {hint}")
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {original!r}: units must go from largest to smallest, "
                f"each once; {hint}"
            )
        last_rank = rank
        total += float(number) * _UNIT_SECONDS[unit]
        pos = part.end()
        # allow trailing spaces after the last unit
        if text[pos:].strip() == "":
            break
    return _finite(total, original, hint)


def _finite(seconds: float, original: str, hint: str) -> float:
    # float() turns thousands of digits into inf rather than failing: refuse it here.
    if not math.isfinite(seconds):
        shown = original if len(original) <= 20 else original[:17] + "..."
        raise ValueError(f"invalid duration {shown!r}: too long; {hint}")
    return seconds


def format_duration(seconds: float) -> str:
    """Format ``seconds`` compactly, largest unit first: ``0s``, ``45s``, ``1h30m``, ``2d3h``.

    Rounds to whole seconds, except that a positive value under 10 s keeps one decimal
    (``2.5s``) so short holds do not read as ``0s``. ``parse_duration`` reads the result back.
    Raises ValueError for negative, NaN or infinite input.
    """
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"cannot format a duration of {seconds} seconds")
    if 0 < seconds < 10 and round(seconds, 1) != round(seconds):
        return f"{round(seconds, 1):g}s"
    remaining = int(round(seconds))
    if remaining == 0:
        return "0s"
    parts = []
    for unit in _UNIT_ORDER:
        size = int(_UNIT_SECONDS[unit])
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
