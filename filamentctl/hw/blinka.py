"""Importing the Adafruit/Blinka libraries without side effects on our output.

Blinka prints board warnings to *stdout* on import ("GENERIC_X86 is not fully supported"), which
would corrupt ``--json`` output, and on a Pi ``import board`` may offer to pip-install packages
unless ``BLINKA_SKIP_DEPENDENCY_CHECK=1``. Every hardware import goes through :func:`load`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import threading
from types import ModuleType

from filamentctl.hw.sensor import SensorError

log = logging.getLogger(__name__)
_lock = threading.Lock()


def load(name: str) -> ModuleType:
    """Import ``name`` with stdout captured (logged at debug level).

    Raises :class:`SensorError` when the library or the platform support is missing.
    """
    os.environ.setdefault("BLINKA_SKIP_DEPENDENCY_CHECK", "1")
    captured = io.StringIO()
    # redirect_stdout swaps sys.stdout for the whole process: serialise our imports, and keep
    # them short (they happen once, when a hardware sensor is first opened).
    with _lock, contextlib.redirect_stdout(captured):
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # Blinka raises ImportError, NotImplementedError, RuntimeError…
            raise SensorError(
                f"cannot load the hardware library {name} ({type(exc).__name__}: {exc}): "
                "reinstall filamentctl with its dependencies, on the Pi itself"
            ) from exc
    if text := captured.getvalue().strip():
        log.debug("%s printed on import: %s", name, " / ".join(text.splitlines()))
    return module
