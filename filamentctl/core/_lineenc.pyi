# The compiled line-protocol encoder (_lineenc.c); optional, see lineprotocol.py.
from collections.abc import Sequence

def encode(
    parts: tuple[bytes, ...],
    rows: Sequence[tuple[int, int, float, float, float | None]],
) -> bytes | None: ...
