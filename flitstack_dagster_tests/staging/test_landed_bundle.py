"""Generate a messy bundle, land it with the real landing code, stage it: every injected problem that
staging owns is reported, and every file's rows are accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.columns import BY_FILE
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster.staging.quarantine import accounting
from flitstack_dagster.staging.runner import run_all

pytestmark = pytest.mark.slow

# generator problem -> the reason codes staging may report for it
EXPECT = {
    "invalid_email": {"invalid_email"}, "impossible_date": {"bad_date", "bad_datetime"},
    "far_date": {"date_out_of_range"}, "negative_number": {"negative_number"}, "absurd_number": {"absurd_number"},
    "unknown_status": {"unknown_value"}, "unknown_priority": {"unknown_value"},
    "unknown_pick_value": {"unknown_value"}, "unknown_choice_value": {"unknown_value"},
    "orphan_reference": {"orphan_reference"}, "duplicate_id": {"duplicate_id"},
    "blank_required_date": {"missing_required"}, "hierarchy_cycle": {"hierarchy_cycle"},
    "attachment_missing_body": {"body_missing"}, "attachment_size_mismatch": {"size_mismatch"},
    "attachment_hash_mismatch": {"hash_mismatch"}, "attachment_hostile_path": {"hostile_path"},
}


@pytest.mark.parametrize("opts", [
    [],
    ["--date-order", "DMY", "--encoding", "cp1252", "--timezone", "Europe/Berlin", "--seed", "3"],
])
def test_generated_messy_bundle_lands_and_stages_with_every_problem_reported(tmp_path: Path, opts):
    out = tmp_path / "bundle"
    assert main(["generate", "--out", str(out), "--work-orders", "250", "--mess", "0.05", *opts]) == 0
    con = duckdb.connect()
    land_bundle(con, open_bundle(out, tmp_path / "work"), "full-t")
    results = run_all(con, "full-t")
    assert results["stg_work_orders"].rows >= 250

    accounts = accounting(con, "full-t")
    assert all(a.ok for a in accounts), [a for a in accounts if not a.ok]
    assert sum(a.quarantined_rows for a in accounts) > 0

    q = con.execute('SELECT file, row_number, "column", reason_code, level, raw_value FROM staging.quarantine '
                    "WHERE _run_key = 'full-t'").fetchall()
    row_level = {(f, r) for f, r, _c, _code, lvl, _v in q if lvl == "row"}
    row_codes = {(f, r, code) for f, r, _c, code, lvl, _v in q if lvl == "row"}
    notices: dict[tuple, set] = {}
    for f, r, c, code, _lvl, _v in q:
        notices.setdefault((f, r, c), set()).add(code)
    dup_ids = {(f, v) for f, _r, _c, code, _lvl, v in q if code == "duplicate_id"}

    log = json.loads(Path(f"{out}.mess.json").read_text(encoding="utf-8"))
    checked, missed = 0, []
    for e in log:
        if e["problem"] not in EXPECT:
            continue
        entity = BY_FILE[e["file"]].entity
        raw = con.execute(f'SELECT "{e["column"]}" FROM raw.{entity} WHERE _run_key = ? AND _row_number = ?',
                          ["full-t", e["row_number"]]).fetchone()
        if e["problem"] != "duplicate_id" and (raw is None or raw[0] != e["value"]):
            continue  # a later injected problem overwrote this value
        checked += 1
        if e["problem"] == "duplicate_id":
            ok = (e["file"], e["id"]) in dup_ids
        elif e["problem"].startswith("attachment_"):  # set aside for its body, or for an earlier row reason
            ok = bool({(e["file"], e["row_number"], c) for c in EXPECT[e["problem"]]} & row_codes) or any(
                (e["file"], e["row_number"], c) in row_codes for c in ("duplicate_id", "orphan_reference"))
        else:
            ok = (e["file"], e["row_number"]) in row_level or bool(
                notices.get((e["file"], e["row_number"], e["column"]), set()) & EXPECT[e["problem"]])
        if not ok:
            missed.append(e)
    assert checked > 50
    assert missed == []
