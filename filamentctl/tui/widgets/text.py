"""Setting a Static's text only when it changed, and without a layout pass when its box cannot
change: most values repeat from one second to the next, and a layout pass re-arranges the whole
screen (it was most of the dashboard's CPU time at one update per second)."""

from __future__ import annotations

import weakref

from textual.css.scalar import Unit
from textual.widgets import Digits, Static

_shown: weakref.WeakKeyDictionary[Static | Digits, str] = weakref.WeakKeyDictionary()


def set_text(widget: Static | Digits, text: str) -> None:
    """``widget.update(text)`` unless it already shows ``text``; a repaint only (no layout)
    when the widget's size does not follow its text (see :func:`fixed_size`). A Digits decides
    that itself (it lays out again only when the number's width changes)."""
    if _shown.get(widget) == text:
        return
    _shown[widget] = text
    if isinstance(widget, Static):
        widget.update(text, layout=not fixed_size(widget))
    else:
        widget.update(text)


def fixed_size(widget: Static) -> bool:
    """Whether the widget's box is the same whatever its text: a height set in cells (the
    panels' one-line rows) and a width that is not ``auto`` (it fills its container); longer
    text is cropped either way."""
    height, width = widget.styles.height, widget.styles.width
    if height is None or height.unit is not Unit.CELLS:
        return False
    return width is None or not width.is_auto
