"""``config set``/``validate`` and the service's start check data.tags the same way.

Before: ``config set data.tags`` accepted a line break or a trailing backslash, which the
delivery encoder refuses when the service starts, so the next restart failed (a restart loop
under systemd). Now the schema runs the encoder's own checks (and, with the Pushgateway backend,
the metric/label name rules), so whatever ``config set`` stores, the service can start with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from filamentctl.core import schema
from filamentctl.core.lineprotocol import LineEncoder, LineProtocolError
from filamentctl.errors import ConfigError
from tests.helpers import REPO, short_home

CANDIDATES = [
    {"box": "dryer-1"},
    {"site": "shop floor", "k,=": "v w"},
    {"path": "a\\b"},  # a backslash before an ordinary character is fine
    {"loc": "a\nevil_injected,host=x value=666 1000000000000000000\nb"},
    {"k": "v\\"},
    {"k": "a\\ b"},
    {"time": "x"},
    {"k\r": "v"},
]


@pytest.mark.parametrize("tags", CANDIDATES, ids=lambda t: json.dumps(t)[:30])
def test_config_accepts_exactly_what_the_encoder_accepts(tags: dict[str, str]) -> None:
    try:
        LineEncoder.from_settings({"data.tags": tags})
        service_ok = True
    except LineProtocolError:
        service_ok = False
    try:
        schema.parse("data.tags", json.dumps(tags))
        config_ok = True
    except ConfigError:
        config_ok = False
    assert config_ok == service_ok


@pytest.mark.parametrize("name", ["environment", "#comment", "end\\", "two\nlines"])
def test_measurement_names_too(name: str) -> None:
    try:
        LineEncoder(name, {})
        service_ok = True
    except LineProtocolError:
        service_ok = False
    try:
        schema.check("data.measurement", name)
        config_ok = True
    except ConfigError:
        config_ok = False
    assert config_ok == service_ok


def test_prometheus_label_rules_are_cross_checked() -> None:
    base = {"database.type": "prometheus", "database.prometheus.job": "j"}
    assert schema.validate({**base, "data.tags": {"box": "x"}}) == []
    assert schema.validate({**base, "data.tags": {"job": "x"}})
    assert schema.validate({**base, "data.measurement": "9lives"})
    assert schema.validate({"data.tags": {"job": "x"}}) == []  # fine for line protocol


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FILAMENTCTL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "filamentctl", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_config_set_refuses_tags_the_service_would_refuse() -> None:
    home = short_home()
    assert _cli(home, "config", "init").returncode == 0
    bad = json.dumps({"loc": "a\nevil_injected,host=x value=666\nb"})
    done = _cli(home, "config", "set", "data.tags", bad)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1  # one line (its prefix is the CLI's business)
    assert "line break" in done.stderr
    assert _cli(home, "config", "set", "database.type", "prometheus").returncode == 0
    done = _cli(home, "config", "set", "data.tags", '{"instance": "x"}')
    assert done.returncode == 2, done.stderr
    assert "Prometheus label" in done.stderr
