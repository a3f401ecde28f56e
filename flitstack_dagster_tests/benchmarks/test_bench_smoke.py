"""Smoke test of `benchmarks/scale_bench.py --quick`: it runs end to end and prints its figures.

No timing assertions: the numbers depend on the machine; the full-size run is in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flitstack_dagster_tests.kit import run_quick_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[str, dict]:
    """One `--quick` run shared by this file's tests: (what it printed, the results it wrote)."""
    tmp_path = tmp_path_factory.mktemp("scale_bench")
    return run_quick_benchmark("scale_bench.py", tmp_path, "--cache", str(tmp_path), timeout=600)


def test_scale_bench_quick_completes_and_prints_its_numbers(quick_run):
    out, result = quick_run
    for stage in ("floor", "land", "stage", "mapping", "shape", "total"):
        assert re.search(rf"^{stage}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\d.*\d+\.\d\d  ", out, flags=re.MULTILINE), out
    assert re.search(r"target <= 12x floor \(\d+\.\d s\): (met|MISSED); <= 4 GiB: (met|MISSED)", out), out
    assert "blocking checks failed: none" in out, out
    assert [s["name"] for s in result["stages"]] == ["land", "stage", "mapping", "shape"]
    assert all(s["seconds"] > 0 and s["peak_rss_bytes"] > 0 for s in result["stages"])
    assert result["rows"]["pd_deals"] == 2000
    assert set(result["rows"]) == {"pd_organizations", "pd_org_relationships", "pd_persons", "pd_deals",
                                   "pd_activities", "pd_notes", "pd_files"}


def test_scale_bench_quick_measures_the_floor_and_each_stage_as_a_multiple_of_it(quick_run):
    _, result = quick_run
    floor = result["floor"]
    assert floor["seconds"] > 0 and floor["cpu_seconds"] > 0 and floor["peak_rss_bytes"] > 0
    assert floor["rows"] == sum(f["rows"] for f in _manifest_csvs(result["bundle"]))
    assert floor["files"] == len(_manifest_csvs(result["bundle"]))
    for stage in result["stages"]:
        assert stage["cpu_seconds"] > 0
        assert stage["floor_multiple"] == pytest.approx(stage["seconds"] / floor["seconds"], abs=0.01)
        assert stage["cpu_floor_multiple"] == pytest.approx(stage["cpu_seconds"] / floor["cpu_seconds"], abs=0.01)
    assert result["total_seconds"] == pytest.approx(sum(s["seconds"] for s in result["stages"]), abs=0.05)
    assert result["total_floor_multiple"] == pytest.approx(result["total_seconds"] / floor["seconds"], abs=0.01)
    targets = result["targets"]
    assert (targets["floor_multiple"], targets["rss_gib"]) == (12.0, 4.0)
    assert targets["floor_multiple_met"] == (result["total_seconds"] <= 12.0 * floor["seconds"])
    assert targets["rss_met"] == (result["peak_rss_bytes"] <= 4 * 1024**3)


def _manifest_csvs(bundle: str) -> list[dict]:
    manifest = json.loads((Path(bundle) / "manifest.json").read_text(encoding="utf-8"))
    return [f for f in manifest["files"] if f["name"].endswith(".csv")]
