"""Smoke test of `benchmarks/sandbox_bench.py --quick`: it fills, serves, measures and rehearses end to
end, and its rehearsal keeps the day plan.

No timing assertions: the numbers depend on the machine; the full-size run is in BENCHMARKS.md.
"""

from __future__ import annotations

import pytest

from flitstack_dagster_tests.kit import run_quick_benchmark

pytestmark = pytest.mark.slow


def test_sandbox_bench_quick_completes_and_keeps_the_day_plan(tmp_path):
    out, result = run_quick_benchmark("sandbox_bench.py", tmp_path, timeout=900)
    assert result["records"] == 20_000 and sum(result["counts"].values()) == 20_000
    assert len(result["routes"]) == 15 and all(r["p99_ms"] >= r["p50_ms"] > 0 for r in result["routes"].values())
    assert result["sandbox_rss_mb"] > 0 and "load average" in out
    rh = result["rehearsal"]
    assert rh["creates"] == 300 and rh["day_plan_ok"] and rh["simulated_days"] == rh["calendar_days"] == 5
    assert all(tokens <= rh["usable_daily"] for tokens in rh["tokens_by_day"].values())
