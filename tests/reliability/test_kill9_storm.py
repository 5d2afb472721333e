"""20 ``kill -9`` at random moments of a 5 Hz simulated run delivering to a real VictoriaMetrics.

After the last restart and a drain, every reading in the local history must be in the server
exactly once (at its sample timestamp, compared at VictoriaMetrics' millisecond precision), the
server must hold nothing else of this run, and the history file must pass
``PRAGMA integrity_check`` after every kill.

What "exactly once" can honestly mean here: delivery is at-least-once. If VictoriaMetrics stores a
batch and the service is killed before it records the acknowledgement, the next start sends that
batch again — no writer can make a non-idempotent server idempotent, and shrinking the window
between "server stored" and "ack recorded" only makes the race rarer, never impossible. So this
test runs its own VictoriaMetrics with ``-dedup.minScrapeInterval=1ms``, which is how users should
run it behind an at-least-once writer (docs/performance.md says so): a resent sample has the same
series and millisecond, and the server keeps one copy. Exactly once is then what a user sees.
To keep that from hiding a real bug (a cursor that is never saved would resend everything and
still pass), the test also counts the samples the server *received* (``vm_rows_inserted_total``,
counted before dedup) and requires the resends to fit in one in-flight batch per kill.

The kill moments come from a seeded RNG, printed with the outcome of every round, so a failure can
be replayed with ``FILAMENTCTL_STORM_SEED=<seed>``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filamentctl.client import Client
from tests.helpers import ServiceProcess, short_home
from tests.servers import MS, VictoriaMetricsServer, count_by_time

pytestmark = [pytest.mark.servers, pytest.mark.slow]

KILLS = 20
BATCH_SIZE = 5
SEED = int(os.environ.get("FILAMENTCTL_STORM_SEED", "8675309"))
# A kill lands this long after the process was started: the low end hits the start-up itself
# (opening the history, first delivery), the high end a running box with a backlog in flight.
KILL_AFTER_S = (0.2, 2.5)


@pytest.fixture(scope="module")
def dedup_vm() -> Iterator[VictoriaMetricsServer]:
    """A VictoriaMetrics of our own with dedup on (the shared one keeps every copy on purpose)."""
    with VictoriaMetricsServer(dedup_interval="1ms") as server:
        yield server


def _service_env(vm: VictoriaMetricsServer, run_tag: str) -> dict[str, str]:
    return {
        "FILAMENTCTL_DATABASE__TYPE": "victoriametrics",
        "FILAMENTCTL_DATABASE__VICTORIAMETRICS__URL": vm.url,
        "FILAMENTCTL_DATA__TAGS": json.dumps({"run": run_tag}),
        "FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2",
        "FILAMENTCTL_STORAGE__COMMIT_INTERVAL": "0.4",
        "FILAMENTCTL_WRITER__FLUSH_INTERVAL": "0.3",
        "FILAMENTCTL_WRITER__BATCH_SIZE": str(BATCH_SIZE),
        "FILAMENTCTL_RETRY__BACKOFF_BASE": "0.2",
        "FILAMENTCTL_RETRY__BACKOFF_MAX": "1",
    }


def _integrity(db: Path) -> str:
    """``integrity_check`` of the history as the next start would find it (WAL included).

    Checked on a copy: opening the real file would checkpoint and delete the WAL, and then the
    service's own crash recovery would not be exercised by the next restart.
    """
    scratch = Path(tempfile.mkdtemp(prefix="fc-ic-"))
    try:
        for suffix in ("", "-wal"):
            src = db.with_name(db.name + suffix)
            if src.exists():
                shutil.copy2(src, scratch / src.name)
        if not (scratch / db.name).exists():
            return "ok"  # killed before the history was created
        conn = sqlite3.connect(scratch / db.name)
        try:
            return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
        finally:
            conn.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _history(db: Path) -> tuple[list[tuple[int, int, float]], int]:
    """(seq, time_ns, temperature_c) of every stored reading, and the VictoriaMetrics cursor."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT seq, time_ns, temperature_c FROM readings ORDER BY seq")
        readings = [(int(s), int(t), float(c)) for s, t, c in rows]
        row = conn.execute("SELECT last_seq FROM cursors WHERE sink = 'victoriametrics'").fetchone()
        return readings, int(row[0]) if row else 0
    finally:
        conn.close()


def test_after_20_kill9_every_reading_is_stored_once_by_vm_dedup_and_resends_are_bounded(
    dedup_vm: VictoriaMetricsServer, unique_name: str
) -> None:
    rng = random.Random(SEED)
    print(f"kill -9 storm: seed {SEED} (replay with FILAMENTCTL_STORM_SEED={SEED})")
    home = short_home()
    svc = ServiceProcess(home, env=_service_env(dedup_vm, unique_name))
    db = home / "state" / "history.db"
    inserted_before = dedup_vm.rows_inserted()
    try:
        for round_no in range(1, KILLS + 1):
            delay = rng.uniform(*KILL_AFTER_S)
            svc.start(wait=False)
            time.sleep(delay)
            assert svc.proc is not None
            assert svc.proc.poll() is None, (
                f"service died by itself in round {round_no}:\n" + (svc.log()[-3000:])
            )
            svc.kill9()
            verdict = _integrity(db)
            print(f"round {round_no:2d}: kill -9 after {delay:.3f} s; integrity_check: {verdict}")
            assert verdict == "ok", f"history damaged by kill -9 #{round_no}: {verdict}"

        # The last start: it must come up, deliver the whole backlog, and stop cleanly.
        svc.start()
        with Client.connect(svc.socket, timeout=70) as client:
            flushed = client.call("flush", {"timeout": 60})
        assert flushed["ok"], flushed
        assert svc.signal(signal.SIGTERM) == 0, svc.log()[-3000:]
        assert _integrity(db) == "ok"

        readings, cursor = _history(db)
        assert len(readings) > KILLS, "too few readings to say anything"
        assert cursor == readings[-1][0], "the graceful stop left readings undelivered"
        stored_ms = [t // MS * MS for _, t, _ in readings]
        assert len(set(stored_ms)) == len(stored_ms), "readings must have distinct milliseconds"

        points = dedup_vm.points("environment", {"run": unique_name}, expected=len(readings))
        copies = count_by_time(points)
        lost = [seq for (seq, _, _), t in zip(readings, stored_ms, strict=True) if copies[t] == 0]
        twice = [seq for (seq, _, _), t in zip(readings, stored_ms, strict=True) if copies[t] > 1]
        foreign = sorted(set(copies) - set(stored_ms))
        assert not lost, f"{len(lost)} readings never reached the server: seq {lost[:20]}"
        assert not twice, f"{len(twice)} readings stored more than once: seq {twice[:20]}"
        assert not foreign, f"{len(foreign)} points in the server are not in the history"
        by_time = dict(points)
        for (seq, _, temperature), t in zip(readings, stored_ms, strict=True):
            assert by_time[t]["temperature_c"] == pytest.approx(temperature, abs=0.001), seq

        # Resends are allowed (that is at-least-once), but only what was in flight at a kill.
        exported = sum(len(fields) for _, fields in points)
        resent = dedup_vm.rows_inserted() - inserted_before - exported
        per_batch = BATCH_SIZE * max(len(fields) for _, fields in points)
        print(
            f"{len(readings)} readings in the history, all delivered once; "
            f"{resent} samples were resent (dedup kept one copy)"
        )
        assert 0 <= resent <= KILLS * per_batch, f"{resent} samples resent for {KILLS} kills"
    finally:
        svc.cleanup()
