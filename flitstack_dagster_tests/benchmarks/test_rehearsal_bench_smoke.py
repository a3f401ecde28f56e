"""Smoke test of `benchmarks/rehearsal_bench.py --quick`: the migrate job under `compact` against a
sandbox process on a simulated clock, with a budget small enough that the load stops once and finishes
on the next simulated day. No timing assertions; the 100,000-work-order run is in BENCHMARKS.md."""

from __future__ import annotations

import pytest

from flitstack_dagster_tests.kit import run_quick_benchmark

pytestmark = pytest.mark.slow


def test_rehearsal_bench_quick_crosses_a_budget_stop_and_reads_back_clean(tmp_path):
    out, r = run_quick_benchmark("rehearsal_bench.py", tmp_path, timeout=900)
    assert r["work_orders"] == 20 and r["record_plan"] == "compact"
    assert r["budget_stops"] >= 1 and r["simulated_days"] == len(r["tokens_by_day"]) >= 2
    assert r["reserve_untouched"] and all(t <= r["usable_daily"] for t in r["tokens_by_day"].values())
    assert r["read_back_clean"] and r["within_max_days"]
    assert r["tokens"] == r["client_tokens"] > 0  # the client's own count is the sandbox's
    assert r["records_in_sandbox"] > 20 and r["latency_ms"]["p99"] >= r["latency_ms"]["p50"] > 0
    assert "reserve untouched" in out and "read-back clean" in out
