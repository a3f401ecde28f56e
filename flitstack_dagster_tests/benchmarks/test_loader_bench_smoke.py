"""Smoke test of `benchmarks/loader_bench.py --quick`: it runs end to end and prints its figures.

No timing assertions: the numbers depend on the machine; the full-size run is in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_loader_bench_quick_completes_and_prints_its_figures(tmp_path):
    out_json = tmp_path / "loader.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "loader_bench.py"), "--quick", "--json", str(out_json)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**__import__("os").environ, "FLITSTACK_DATA_DIR": str(tmp_path / "data")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for heading in ("== 2. Loader at the rate limit", "== 3. Delta proportionality", "== 4. Estimate accuracy"):
        assert heading in out, out
    result = json.loads(out_json.read_text())
    assert [r["plan"] for r in result["rate_limit"]] == ["growth", "ultimate"]
    for r in result["rate_limit"]:
        assert r["full"]["records"] == 400 and r["full"]["tokens"] >= r["full"]["token_floor"] > 0
        assert r["speedup"] > 0 and r["sequential"]["records"] == 40
        # the machine's load is reported with the figures (other sessions share the cores)
        assert r["full"]["machine_load"]["loader_cpu_s"] > 0 and r["full"]["machine_load"]["load_avg_max"] >= 0
    assert "load average" in out
    assert result["delta"]["changed_records"] > 0 and result["delta"]["tokens"] > 0
    assert result["estimate"]["predicted"]["requests"] > 0 and result["estimate"]["real"]["requests"] > 0
    # issue [Mapping]: the scope document's request and token estimates are within 5% of what the
    # migrate job then spends, counted by the sandbox (an accuracy check, not a timing one)
    err = result["estimate"]["error"]
    assert abs(err["requests"]) <= 0.05 and abs(err["tokens"]) <= 0.05, result["estimate"]
