"""Fault matrix: a full load of a small generated bundle under each fault the sandbox can inject ends with
nothing missing, nothing duplicated and every field as sent (read back from the sandbox)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from flitstack_dagster.sandbox.faults import FaultConfig

from . import kit
from .oracle import destination_problems, fields_problems

pytestmark = pytest.mark.slow


def assert_clean(p: kit.Prepared, sb, baseline: dict) -> None:
    sb.set_faults(FaultConfig())  # the read-back itself runs without faults
    assert destination_problems(p.paths.duckdb, p.run_key, sb.snapshot(), baseline) == []
    assert fields_problems(p.paths.duckdb, p.run_key, kit.client(sb)) == []


@contextmanager
def every(period: float, action):
    """Call action(i) every `period` seconds in a background thread while the block runs."""
    stop = threading.Event()

    def loop():
        i = 0
        while not stop.wait(period):
            action(i)
            i += 1

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)


def full_load(p: kit.Prepared, sb) -> dict:
    pd = kit.client(sb)
    results = kit.load_all(p, pd)
    assert [e for e, r in results.items() if r.stopped] == []
    assert list(results) == list(kit.ENTITIES)
    return {"client": pd, "results": results}


FAULTS = {
    "5pct_5xx": FaultConfig(error_rate=0.05, seed=11),
    "1pct_dropped_connections": FaultConfig(drop_rate=0.01, seed=12),
    "1pct_commit_then_fail": FaultConfig(commit_then_fail_rate=0.01, seed=13),
    "2pct_commit_then_drop": FaultConfig(commit_then_fail_rate=0.02, commit_then_fail_mode="drop", seed=14),
}
INJECTED = {"5pct_5xx": "error", "1pct_dropped_connections": "drop", "1pct_commit_then_fail": "commit_then_fail",
            "2pct_commit_then_drop": "commit_then_fail"}


@pytest.mark.parametrize("name", list(FAULTS))
def test_load_under_injected_faults_is_complete_and_exact(fresh, name):
    with kit.sandbox(fresh) as sb:
        baseline = sb.snapshot()
        sb.set_faults(FAULTS[name])
        full_load(fresh, sb)
        assert sb.usage()["faults_injected"][INJECTED[name]] >= 2  # the faults really happened
        assert_clean(fresh, sb, baseline)


def test_load_through_429_bursts_from_a_neighbour(fresh):
    """Another integration on the same token bursts every second: the loader gets 429s and backs off."""
    with kit.sandbox(fresh, block_seconds=1.0) as sb:
        baseline = sb.snapshot()
        neighbour = httpx.Client(base_url=sb.base_url, headers={"x-api-token": kit.TOKEN}, timeout=10)

        def burst(_i):
            for _ in range(60):
                neighbour.get("/api/v2/pipelines")

        with every(0.7, burst):
            out = full_load(fresh, sb)
        neighbour.close()
        assert out["client"].rate_limited_responses > 0  # the loader did meet 429s
        assert_clean(fresh, sb, baseline)


def test_load_through_500_ms_latency_spikes(fresh):
    with kit.sandbox(fresh) as sb:
        baseline = sb.snapshot()
        spikes = []

        def spike(i):
            on = i % 3 == 0  # 500 ms on every request for one period in three
            sb.set_faults(latency_ms=500 if on else 0)
            spikes.append(on)

        t0 = time.monotonic()
        with every(0.4, spike):
            full_load(fresh, sb)
        assert any(spikes) and time.monotonic() - t0 > 0.5
        assert_clean(fresh, sb, baseline)


def test_daily_budget_running_out_stops_cleanly_and_the_next_day_finishes(fresh):
    with kit.sandbox(fresh) as sb:
        baseline = sb.snapshot()
        budget = sb.usage()["daily_budget"]
        sb.set_tokens_spent(budget - 1200)  # the load needs about 2,600 tokens
        results = kit.load_all(fresh, kit.client(sb))
        stopped = [r for r in results.values() if r.stopped]
        assert len(stopped) == 1, "the load stops once, at the entity where the budget ran out"
        msg = stopped[0].stopped
        assert stopped[0].resets_at is not None and "resets at" in msg and "UTC" in msg
        assert "again after the reset" in msg
        assert kit.TOKEN not in msg
        assert sb.usage()["tokens_today"] <= budget
        # what landed is in the id map and nothing is duplicated; the rest is only not loaded yet
        # (a create refused for the budget may stay pending: the next run looks it up first)
        problems = destination_problems(fresh.paths.duckdb, fresh.run_key, sb.snapshot(), baseline)
        assert any("not in the id map" in p for p in problems)
        assert all("not in the id map" in p or "creates left pending" in p for p in problems), problems

        sb.next_day()
        again = kit.load_all(fresh, kit.client(sb))
        assert [r for r in again.values() if r.stopped] == []
        assert sum(r.skipped for r in again.values()) > 0  # what landed yesterday is not sent again
        assert_clean(fresh, sb, baseline)
