"""What shaping produces from a mid-size generated messy bundle is pinned, under every record plan and
with an archive cutoff: shaping may be rewritten for speed or memory (chunks, joins instead of
per-row work, another hash path), but every shaped record (content hash included), set-aside row,
warning, reconciliation row and check result must stay the same, byte for byte.

The golden file holds, per case and table, the row count and a SHA-256 of its rows sorted as text. To
re-pin after an intended change of the output: `python -m flitstack_dagster_tests.shaping.test_shaped_output_pinned`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.bundle import open_bundle, resolve_inside
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster.shaping import OUTPUTS, read_staged, shape_all
from flitstack_dagster.shaping.checks import check_values_mapped, run_checks
from flitstack_dagster.shaping.common import Owners, ShapeContext
from flitstack_dagster.shaping.prepare import NOTES_ONLY
from flitstack_dagster.staging.runner import run_all

GOLDEN = Path(__file__).parent / "golden" / "shaped_output.json"
GENERATE = ["--work-orders", "400", "--mess", "0.05", "--seed", "23", "--timezone", "America/Chicago"]
RUN_KEY = "full-p"
# archive files' paths are part of their records (and content hash), so they are written to one fixed place
ARCHIVES = Path(tempfile.gettempdir()) / "flitstack-shaped-output-pinned"
CASES = {
    "complete": Mapping(),
    "balanced": Mapping(record_plan="balanced"),
    "compact": Mapping(record_plan="compact"),
    "archive": Mapping(archive_before=date(2025, 1, 1)),
}


def _digest(df: pl.DataFrame) -> dict:
    lines = sorted(json.dumps(row, ensure_ascii=False, default=str) for row in df.rows())
    body = "\n".join([json.dumps(df.columns), *lines]).encode("utf-8")
    return {"rows": len(lines), "sha256": hashlib.sha256(body).hexdigest()}


def _staged(work: Path) -> tuple[duckdb.DuckDBPyConnection, Path]:
    bundle = work / "bundle"
    assert main(["generate", "--out", str(bundle), *GENERATE, "--no-mess-log"]) == 0
    con = duckdb.connect()
    land_bundle(con, open_bundle(bundle, work / "work"), RUN_KEY)
    run_all(con, RUN_KEY)
    return con, bundle


def _shaped(con: duckdb.DuckDBPyConnection, bundle: Path, mapping: Mapping, archives: Path) -> dict:
    """One case shaped the way the product does (streamed into a sink, checks on the tally)."""
    exported_at, tz = con.execute("SELECT exported_at, timezone FROM raw.bundles WHERE _run_key = ?",
                                  [RUN_KEY]).fetchall()[0]
    ctx = ShapeContext(run_key=RUN_KEY, exported_at=exported_at, timezone=tz, bundle_root=bundle,
                       resolve_inside=lambda rel: resolve_inside(bundle, rel), archive_dir=archives)
    inputs = read_staged(con, RUN_KEY, defer=NOTES_ONLY)
    contacts = inputs.contacts["contact_id"].drop_nulls().sort().to_list()
    owners = Owners.of({c: 100 + i for i, c in enumerate(contacts[::3])}, default_owner_id=1)
    values_mapped = check_values_mapped(inputs, mapping)
    parts: dict[str, list[pl.DataFrame]] = {}
    run = shape_all(inputs, mapping, owners, ctx, sink=lambda name, df: parts.setdefault(name, []).append(df))
    checks = [(r.name, r.passed, r.severity, r.count, r.message, sorted(r.sample))
              for r in run_checks(run, None, mapping, values_mapped=values_mapped)]
    out = {name: _digest(pl.concat(parts[name]) if name in parts else run.outputs()[name]) for name in OUTPUTS}
    out |= {t: _digest(getattr(run, t)) for t in ("set_aside", "warnings", "reconciliation")}
    out["checks"] = {"rows": len(checks), "sha256": hashlib.sha256(json.dumps(checks).encode()).hexdigest()}
    return out


def shaped_output(work: Path) -> dict:
    con, bundle = _staged(work)
    shutil.rmtree(ARCHIVES, ignore_errors=True)
    try:
        return {case: _shaped(con, bundle, mapping, ARCHIVES / case) for case, mapping in CASES.items()}
    finally:
        shutil.rmtree(ARCHIVES, ignore_errors=True)


@pytest.fixture(scope="module")
def got(tmp_path_factory) -> dict:
    return shaped_output(tmp_path_factory.mktemp("pinned"))


@pytest.mark.slow  # generates, lands, stages and shapes a 400-work-order bundle four times
@pytest.mark.parametrize("case", list(CASES))
def test_shaped_output_is_unchanged(got: dict, case: str):
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))[case]
    assert got[case]["pd_deals"]["rows"] > 0 and got[case]["warnings"]["rows"] > 0  # the mess reached shaping
    changed = {t: (want.get(t), d) for t, d in got[case].items() if d != want.get(t)}
    assert not changed, f"{case}: shaped output changed: {changed}"


if __name__ == "__main__":  # re-pin (see the module docstring)
    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(shaped_output(Path(d)), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {GOLDEN}\n")
