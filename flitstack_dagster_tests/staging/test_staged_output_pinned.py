"""The staged output of a small generated messy bundle (a full run, then a delta on it) is pinned: the
models may be rewritten (macros, CTE order) and planned with or without DuckDB's optimizer, but every
staged table and the quarantine must stay the same, row for row.

The golden file holds, per table and run, the row count and a SHA-256 of its rows sorted as text. To
re-pin after an intended change of the output: `python -m flitstack_dagster_tests.staging.test_staged_output_pinned`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster.staging import runner
from flitstack_dagster.staging.runner import run_all

GOLDEN = Path(__file__).parent / "golden" / "staged_output.json"
GENERATE = ["--work-orders", "30", "--mess", "0.1", "--seed", "11", "--timezone", "Europe/Berlin"]
RUNS = ("full-g", "delta-g")


def _table_digest(con: duckdb.DuckDBPyConnection, table: str, run_key: str) -> dict:
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    as_text = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)  # the session zone is pinned to UTC
    rows = con.execute(f"SELECT [{as_text}] FROM {table} WHERE _run_key = ?", [run_key]).fetchall()
    lines = sorted(json.dumps(r[0], ensure_ascii=False) for r in rows)
    body = "\n".join([json.dumps(cols), *lines]).encode("utf-8")
    return {"rows": len(lines), "sha256": hashlib.sha256(body).hexdigest()}


def staged_output(work: Path) -> dict:
    """Generate, land and stage the bundle and its delta; the digest of every staged table per run."""
    full, delta = work / "full", work / "delta"
    assert main(["generate", "--out", str(full), *GENERATE, "--no-mess-log"]) == 0
    assert main(["generate", "--out", str(delta), "--delta-from", str(full), *GENERATE, "--no-mess-log"]) == 0
    con = duckdb.connect()
    out: dict = {}
    for run_key, bundle in zip(RUNS, (full, delta), strict=True):
        land_bundle(con, open_bundle(bundle, work / f"work-{run_key}"), run_key)
        run_all(con, run_key)
    con.execute("SET TimeZone = 'UTC'")
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' ORDER BY 1").fetchall()]
    for run_key in RUNS:
        out[run_key] = {t: _table_digest(con, f'staging."{t}"', run_key) for t in tables}
    return out


# How the runner plans a model by its size (tiny: no optimizer; small: no common-subexpression pass;
# big: everything), forced on this small bundle through the thresholds: each must stage the same rows.
PLANNING = {"tiny": (10**9, 10**9), "small": (0, 10**9), "big": (0, 0)}


@pytest.mark.slow  # stages a full and a delta bundle
@pytest.mark.parametrize("planning", list(PLANNING))
def test_staged_output_is_unchanged(tmp_path: Path, monkeypatch, planning: str):
    monkeypatch.setattr(runner, "TINY_MODEL_ROWS", PLANNING[planning][0])
    monkeypatch.setattr(runner, "SMALL_MODEL_ROWS", PLANNING[planning][1])
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = staged_output(tmp_path)
    assert set(got["full-g"]) == set(want["full-g"])
    assert got["full-g"]["quarantine"]["rows"] > 0  # the mess reached staging
    assert any(d["rows"] for d in got["delta-g"].values())
    for run_key in RUNS:
        changed = {t: (want[run_key][t], d) for t, d in got[run_key].items() if d != want[run_key][t]}
        assert not changed, f"{run_key}: staged output changed: {changed}"


if __name__ == "__main__":  # re-pin (see the module docstring)
    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(staged_output(Path(d)), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {GOLDEN}\n")
