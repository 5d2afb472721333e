"""How the running service handles each kind of server answer (docs/delivery.md), seen in status.

A real ``filamentctl run --simulate`` process writes to the real VictoriaMetrics through the fault
proxy, which answers 400, 401, 413, 429 + Retry-After or 503 instead of forwarding when told to.
Every behaviour is checked the way a user sees it: ``status --json`` and ``flush --dead-letter
list``. The tests share one service (starting one costs seconds) and run in file order; each
starts from an empty backlog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.delivery_rig import (
    flush,
    history_of,
    service_env,
    storage_of,
    vm_audit,
    vm_settings,
    wait_delivered,
)
from tests.faultproxy import FaultProxy, Seen, forward, respond
from tests.helpers import ServiceProcess, wait_until
from tests.servers import MS, VictoriaMetricsServer

pytestmark = [pytest.mark.servers, pytest.mark.slow]

BACKOFF_MAX_S = 2.0


class Rig:
    def __init__(self, proxy: FaultProxy, svc: ServiceProcess, vm: VictoriaMetricsServer, run: str):
        self.proxy = proxy
        self.svc = svc
        self.vm = vm
        self.run = run

    def storage(self) -> dict[str, Any]:
        return storage_of(self.svc)

    def wait_storage(self, predicate: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def check() -> bool:
            found.clear()
            found.update(self.storage())
            return bool(predicate(found))

        wait_until(check, timeout=timeout, interval=0.2, what=f"{what} (last: {found})")
        return dict(found)

    def drained(self) -> dict[str, Any]:
        self.proxy.default = forward()
        return self.wait_storage(lambda s: s["backlog"] == 0 and s["connected"], "an empty backlog")


@pytest.fixture(scope="module")
def rig(victoriametrics_server: VictoriaMetricsServer) -> Iterator[Rig]:
    vm = victoriametrics_server
    run = "t_delivery_faults_" + format(id(vm) % 10**8, "d")
    with FaultProxy(vm.url, lifetime_s=900) as proxy:
        env = service_env(vm_settings(proxy.url), run)
        env["FILAMENTCTL_RETRY__BACKOFF_MAX"] = str(BACKOFF_MAX_S)
        svc = ServiceProcess(env=env).start()
        try:
            wait_delivered(svc)
            yield Rig(proxy, svc, vm, run)
        finally:
            svc.cleanup()


def lines(seen: Seen) -> list[bytes]:
    return [line for line in seen.body.splitlines() if line.strip()]


def test_400_moves_the_batch_to_dead_letter_and_delivery_continues(rig: Rig) -> None:
    before = rig.drained()
    rig.proxy.script(respond(400, '{"error":"unable to parse line 1"}'))
    after = rig.wait_storage(
        lambda s: s["rejected"] > before["rejected"] and s["dead_letter"] > before["dead_letter"],
        "a dead-lettered batch",
    )
    rig.wait_storage(lambda s: s["written"] > after["written"], "delivery after the rejection")
    listed = rig.svc.cli("flush", "--dead-letter", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert any(e["status"] == 400 and "unable to parse" in e["error"] for e in entries), entries


def test_401_keeps_the_data_and_raises_an_auth_alert(rig: Rig) -> None:
    before = rig.drained()
    rig.proxy.default = respond(401, '{"error":"token is not valid"}')
    failing = rig.wait_storage(
        lambda s: (s.get("alert") or {}).get("kind") == "auth", "an auth alert"
    )
    assert "401" in failing["last_error"]
    rig.wait_storage(lambda s: s["backlog"] >= failing["backlog"] + 5, "the backlog to grow")
    assert rig.storage()["written"] == before["written"]  # nothing acknowledged, nothing dropped
    assert rig.storage()["dropped"] == before["dropped"]
    recovered = rig.drained()
    assert recovered["alert"] is None
    assert recovered["written"] > before["written"]


def test_413_splits_the_batch_and_all_of_it_lands(rig: Rig) -> None:
    rig.drained()
    rig.proxy.default = respond(503)  # pile up a batch worth splitting
    rig.wait_storage(lambda s: s["backlog"] >= 12, "a backlog of a dozen readings")
    first = len(rig.proxy.seen)
    rig.proxy.script(respond(413, "request entity too large"))
    rig.proxy.default = forward()
    rig.drained()
    seen = rig.proxy.seen[first:]
    too_large = next(s for s in seen if s.action == "respond" and lines(s))
    after = seen[seen.index(too_large) + 1 :]
    assert after and all(len(lines(s)) < len(lines(too_large)) for s in after[:2])
    # Every reading of the refused batch arrives, exactly once, through the smaller batches.
    refused_ms = {int(line.rsplit(b" ", 1)[1]) // MS for line in lines(too_large)}
    forwarded_ms = [
        int(line.rsplit(b" ", 1)[1]) // MS
        for s in after
        if s.action == "forward"
        for line in lines(s)
    ]
    assert refused_ms <= set(forwarded_ms)
    assert all(forwarded_ms.count(ms) == 1 for ms in refused_ms)


def test_429_with_retry_after_waits_at_least_that_long_and_keeps_the_data(rig: Rig) -> None:
    before = rig.drained()
    rig.proxy.default = respond(429, "slow down", {"Retry-After": "5"})
    # Backoff alone would wait at most retry.backoff_max (2 s): more means Retry-After counted.
    waiting = rig.wait_storage(
        lambda s: (s["next_retry_s"] or 0) > BACKOFF_MAX_S + 0.5, "a wait longer than backoff"
    )
    assert waiting["next_retry_s"] <= 5.5
    assert "429" in waiting["last_error"]
    assert waiting["backlog"] > 0 and waiting["dropped"] == before["dropped"]
    assert rig.drained()["written"] > before["written"]


def test_503_keeps_the_data_backs_off_and_delivers_when_the_server_answers_again(
    rig: Rig,
) -> None:
    before = rig.drained()
    rig.proxy.default = respond(503, "maintenance")
    failing = rig.wait_storage(
        lambda s: s.get("consecutive_failures", 0) >= 3, "three failed attempts"
    )
    assert failing["connected"] is False and "503" in failing["last_error"]
    assert failing["next_retry_s"] is not None
    assert failing["backlog"] > 0 and failing["rejected"] == before["rejected"]
    recovered = rig.drained()
    assert recovered["consecutive_failures"] == 0 and recovered["written"] > before["written"]


def test_after_all_these_faults_every_reading_not_dead_lettered_is_stored_exactly_once(
    rig: Rig,
) -> None:
    rig.drained()
    flush(rig.svc)
    listed = json.loads(rig.svc.cli("flush", "--dead-letter", "list", "--json").stdout)
    dead = {seq for e in listed for seq in range(e["first_seq"], e["last_seq"] + 1)}
    rows = [row for row in history_of(rig.svc) if row["seq"] not in dead]
    vm_audit("victoriametrics", rig.vm, rig.run, rows).assert_exactly_once()
