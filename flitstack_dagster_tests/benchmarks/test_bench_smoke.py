"""Smoke test of `benchmarks/scale_bench.py --quick`: it runs end to end and prints its figures.

No timing assertions: the numbers depend on the machine; the full-size run is in BENCHMARKS.md.
"""

from __future__ import annotations

import re

import pytest

from flitstack_dagster_tests.kit import run_quick_benchmark

pytestmark = pytest.mark.slow


def test_scale_bench_quick_completes_and_prints_its_numbers(tmp_path):
    out, result = run_quick_benchmark("scale_bench.py", tmp_path, "--cache", str(tmp_path), timeout=600)
    for stage in ("land", "stage", "mapping", "shape", "total"):
        assert re.search(rf"^{stage}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\d", out, flags=re.MULTILINE), out
    assert "blocking checks failed: none" in out, out
    assert [s["name"] for s in result["stages"]] == ["land", "stage", "mapping", "shape"]
    assert all(s["seconds"] > 0 and s["peak_rss_bytes"] > 0 for s in result["stages"])
    assert result["rows"]["pd_deals"] == 2000
    assert set(result["rows"]) == {"pd_organizations", "pd_org_relationships", "pd_persons", "pd_deals",
                                   "pd_activities", "pd_notes", "pd_files"}
