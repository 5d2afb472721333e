"""Fixtures for the dashboard tests: a scripted service on a real Unix socket, and UTC for
clock times (helpers to drive the app are in ``driving.py``)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.fakeserver import FakeService


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clock times render in UTC here, whatever the machine's zone; restored afterwards."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def socket_path() -> Iterator[Path]:
    # Not tmp_path: Unix socket paths must stay short.
    d = Path(tempfile.mkdtemp(prefix="fc"))
    yield d / "fc.sock"
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def service(socket_path: Path) -> Iterator[FakeService]:
    fake = FakeService(socket_path).start()
    yield fake
    fake.stop()
