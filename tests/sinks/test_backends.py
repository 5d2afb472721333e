"""Every ``database.type`` the schema allows has a sink module (no server needed)."""

from __future__ import annotations

import importlib

from filamentctl.core.schema import DATABASE_BACKENDS
from filamentctl.sinks.base import BACKENDS


def test_every_database_type_has_a_module_that_creates_its_sink() -> None:
    assert list(BACKENDS) == list(DATABASE_BACKENDS)
    for name, module in BACKENDS.items():
        created = getattr(importlib.import_module(f"filamentctl.sinks.{module}"), "create", None)
        assert callable(created), f"filamentctl.sinks.{module} has no create() for {name}"
