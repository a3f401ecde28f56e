"""Smoke test of `benchmarks/scale_bench.py --quick`: it runs end to end and prints its figures.

No timing assertions: the numbers depend on the machine; the full-size run is in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_scale_bench_quick_completes_and_prints_its_numbers(tmp_path):
    out_json = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale_bench.py"), "--quick", "--cache", str(tmp_path),
         "--json", str(out_json)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for stage in ("land", "stage", "mapping", "shape", "total"):
        assert re.search(rf"^{stage}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\d", out, flags=re.MULTILINE), out
    assert "blocking checks failed: none" in out, out
    result = json.loads(out_json.read_text())
    assert [s["name"] for s in result["stages"]] == ["land", "stage", "mapping", "shape"]
    assert all(s["seconds"] > 0 and s["peak_rss_bytes"] > 0 for s in result["stages"])
    assert result["rows"]["pd_deals"] == 2000
    assert set(result["rows"]) == {"pd_organizations", "pd_org_relationships", "pd_persons", "pd_deals",
                                   "pd_activities", "pd_notes", "pd_files"}
