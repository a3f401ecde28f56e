"""Smoke test of `benchmarks/token_bench.py --quick`: one small bundle under every record plan, tokens
counted by the client and by the sandbox alike, each read back clean, and a 1% delta after `compact`'s.
No target is asserted at this size (fixed costs dominate 20 work orders); the full-size run is in
BENCHMARKS.md."""

from __future__ import annotations

import pytest

from flitstack_dagster.mapping.model import RECORD_PLANS
from flitstack_dagster_tests.kit import run_quick_benchmark

pytestmark = pytest.mark.slow


def test_token_bench_quick_measures_every_plan(tmp_path):
    out, result = run_quick_benchmark("token_bench.py", tmp_path, timeout=1200)
    runs = {r["record_plan"]: r for r in result["results"]}
    assert list(runs) == list(RECORD_PLANS)
    for r in runs.values():
        assert r["success"] and r["clean"], r["checks"]
        assert r["tokens"] == r["server_tokens"] > 0  # the client's own count is the sandbox's
        assert r["work_orders"] == 20 and r["requests_per_wo"] > 0 and r["city"]["days"] >= 1
    r = runs["compact"]
    d = r["delta"]  # the 1% delta loaded after it into the same account
    assert d["success"] and d["clean"], d["checks"]
    assert 0 < d["read_tokens"] < d["tokens"] < r["tokens"] and d["share_of_full"] == round(d["tokens"] / r["tokens"], 4)
    assert runs["compact"]["tokens"] < runs["balanced"]["tokens"] < runs["complete"]["tokens"]
    assert "days for 100,000 work orders on professional" in out and "delta %" in out
