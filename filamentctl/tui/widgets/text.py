"""Setting a Static's text only when it changed: an update costs a layout pass, and most values
repeat from one second to the next."""

from __future__ import annotations

import weakref

from textual.widgets import Digits, Static

_shown: weakref.WeakKeyDictionary[Static | Digits, str] = weakref.WeakKeyDictionary()


def set_text(widget: Static | Digits, text: str) -> None:
    """``widget.update(text)`` unless it already shows ``text``."""
    if _shown.get(widget) != text:
        _shown[widget] = text
        widget.update(text)
