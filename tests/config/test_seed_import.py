"""`filamentctl config import` of a stock seed v1 configuration, as a user runs it.

The seed (filamentbox v1) shipped ``read_interval: 0.25`` with every sensor; a DHT22 answers at
most every 2 s. Importing must adjust that to the DHT22's minimum and say so, and ``--dry-run``
must run exactly the same checks and report the same result with the same exit code. Broken
input files are one line on stderr with exit 2, never an internal error. Each command is the real
``python -m filamentctl`` in its own process with its own FILAMENTCTL_HOME.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

# A full v1 config.yaml: every section the seed's README lists, with the seed's defaults, and a
# DHT22 on GPIO 4 (relays on 16 and 20, as the seed wired them).
SEED_V1_DHT22 = """\
influxdb:
  host: 192.168.1.10
  port: 8086
  username: admin
  password: "s3cret-pass"
  database: influx
data_collection:
  read_interval: 0.25
  batch_size: 10
  flush_interval: 60
  measurement: environment
  tags:
    location: filamentbox
    device: pi-zero
queue:
  max_size: 10000
retry:
  backoff_base: 1
  backoff_max: 300
  alert_threshold: 5
  persist_on_alert: true
persistence:
  db_path: unsent_batches.db
  max_batches: 1000
sensor:
  type: DHT22
  gpio_pin: 4
  sea_level_pressure: 1013.25
heating_control:
  enabled: true
  gpio_pin: 16
  min_temp_c: 20.0
  max_temp_c: 22.0
  check_interval: 10
humidity_control:
  enabled: true
  gpio_pin: 20
  min_humidity: 10.0
  max_humidity: 15.0
  check_interval: 10
"""

ADJUSTED = "sensor.read_interval: 0.25 → 2.0 (the minimum for sensor.type dht22)"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    box = tmp_path / "box"
    assert cli(box, "config", "init").returncode == 0
    return box


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FILAMENTCTL_HOME": str(home)}
    env["FILAMENTCTL_SOCKET"] = str(home / "no-service.sock")
    return subprocess.run(
        [sys.executable, "-m", "filamentctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def stored(home: Path, key: str) -> str:
    result = cli(home, "config", "get", key)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_seed_config_with_a_dht22_imports_with_the_read_interval_adjusted(
    home: Path, tmp_path: Path
) -> None:
    seed = tmp_path / "config.yaml"
    seed.write_text(SEED_V1_DHT22)

    dry = cli(home, "config", "import", str(seed), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert stored(home, "sensor.type") == "bme280"  # a dry run changes nothing

    real = cli(home, "config", "import", str(seed))
    assert real.returncode == 0, real.stderr
    assert ADJUSTED in real.stdout
    assert "sensor.read_interval = 2.0" in real.stdout
    # The dry run said exactly what the import then did.
    assert dry.stdout.replace("would import", "imported") == real.stdout
    assert dry.stderr == real.stderr
    assert stored(home, "sensor.type") == "dht22"
    assert stored(home, "sensor.read_interval") == "2.0"
    assert stored(home, "heater.gpio_pin") == "16"
    assert "s3cret-pass" not in real.stdout + real.stderr


def test_dry_run_and_import_fail_alike_when_the_result_is_inconsistent(
    home: Path, tmp_path: Path
) -> None:
    """A cross-field rule the adjustments cannot fix (heater band upside down)."""
    bad = tmp_path / "config.yaml"
    bad.write_text(SEED_V1_DHT22.replace("max_temp_c: 22.0", "max_temp_c: 19.0"))
    dry = cli(home, "config", "import", str(bad), "--dry-run")
    real = cli(home, "config", "import", str(bad))
    assert dry.returncode == real.returncode == 2
    assert dry.stderr == real.stderr
    assert "heater.min_temp_c" in real.stderr and len(real.stderr.strip().splitlines()) == 1
    assert stored(home, "sensor.type") == "bme280"  # nothing was stored


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("config.yaml", b"influxdb:\n  host: [1, 2\n  port: 8086\n", "YAML line"),
        ("config.yaml", b"- just\n- a list\n", "expected a mapping of settings"),
        ("config.yaml", b"a: " + b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested"),
        ("config.json", b"[" * 50_000 + b"]" * 50_000, "nested"),
        ("config.yaml", b"influxdb:\n  host: \xff\xfe\n", "not UTF-8 text"),
    ],
    ids=["malformed yaml", "not a mapping", "deep yaml", "deep json", "not utf-8"],
)
def test_a_broken_file_is_one_line_and_exit_2(
    home: Path, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for extra in ((), ("--dry-run",)):
        result = cli(home, "config", "import", str(path), *extra)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_non_utf8_env_file_is_one_line_and_exit_2(home: Path, tmp_path: Path) -> None:
    seed = tmp_path / "config.yaml"
    seed.write_text(SEED_V1_DHT22)
    env = tmp_path / ".env"
    env.write_bytes(b"INFLUXDB_PASSWORD=caf\xe9\n")  # Latin-1, as an old editor saved it
    result = cli(home, "config", "import", str(seed), "--env", str(env))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not UTF-8 text" in lines[0] and str(env) in lines[0]
    assert stored(home, "sensor.type") == "bme280"
