"""Bad records that do not stop the migration: the bundle lands, and the exact row is set aside (or the
exact value reported) in staging.quarantine with its reason code — or, for attachments over the
destination's 25 MB limit, set aside by shaping. Every file's rows still add up.

One generated bundle gets every defect at once (each on its own row, manifest re-signed so only the
content is wrong) and is landed and staged once; each test checks its own rows. A last test proves
nothing else was reported, so each entry is caused by its defect.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flitstack_dagster.mapping.model import Mapping, MappingOptions
from flitstack_dagster.novo.bundle import resolve_inside
from flitstack_dagster.shaping.common import ShapeContext
from flitstack_dagster.shaping.files import shape_files
from flitstack_dagster.staging.frames import read_staged
from flitstack_dagster.shaping.org_relationships import asset_hierarchy
from flitstack_dagster_tests.corpus.kit import (
    RUN,
    copy,
    edit_rows,
    land_and_stage,
    quarantine,
    read_rows,
    staged,
)

pytestmark = pytest.mark.slow

MB = 1024 * 1024
TENANT_STATUSES = {"Awaiting Parts", "Pending Approval"}  # the generator's own tenant statuses: not defects


class Case:
    """What was done to the bundle, for the tests to look up."""

    wo: list[dict]
    dup_row: int
    cycle: tuple[str, str]
    attachments: dict[str, dict]
    big_id: str


def _damage(root: Path) -> Case:
    case = Case()

    def wo(rows):
        rows[0]["Status"] = "Waiting on Vendor"
        rows[1]["Priority"] = "Urgent"
        rows[1]["Due Date"] = "02/30/2026"
        rows[2]["UDF: Council District"] = "District 99"
        rows[3]["UDF: Ward"] = "Ward 1; Ward 77"
        rows[3]["Date Requested"] = ""
        rows[4]["Asset ID"] = "99999"
        rows.append({**rows[5], "Title": "Edited later", "Date Modified": "2026-11-19 08:00"})
    case.wo = edit_rows(root, "work_orders.csv", wo)
    case.dup_row = len(case.wo)

    def labor(rows):
        rows[0]["WO Number"] = "WO-999999"
        rows[1]["Hours"] = "-3"
    edit_rows(root, "labor.csv", labor)

    def parts(rows):
        rows[0]["Unit Cost"] = "(12.00)"
    edit_rows(root, "parts_used.csv", parts)

    _, assets = read_rows(root, "assets.csv")
    child = next(r for r in assets if r["Parent Asset ID"])
    case.cycle = (child["Parent Asset ID"], child["Asset ID"])

    def cycle(rows):
        next(r for r in rows if r["Asset ID"] == case.cycle[0])["Parent Asset ID"] = case.cycle[1]
    edit_rows(root, "assets.csv", cycle)

    _, att = read_rows(root, "attachments.csv")
    src = att[0]
    body = (root / src["Bundle Path"]).read_bytes()
    folder = Path(src["Bundle Path"]).parent.as_posix()
    (root.parent / "outside.txt").write_bytes(body)  # size and hash would match: must still never be read
    os.symlink(root.parent / "outside.txt", root / folder / "link.txt")
    big = bytes(26 * MB)
    (root / folder / "drawings.pdf").write_bytes(big)
    same = {"Size": src["Size"], "SHA-256": src["SHA-256"]}
    case.attachments = {
        "ATT-900001": {"Bundle Path": "../outside.txt", **same, "_want": ("hostile_path", "Bundle Path")},
        "ATT-900002": {"Bundle Path": str((root / src["Bundle Path"]).resolve()), **same,
                       "_want": ("hostile_path", "Bundle Path")},
        "ATT-900003": {"Bundle Path": "C:\\Windows\\win.ini", **same, "_want": ("hostile_path", "Bundle Path")},
        "ATT-900004": {"Bundle Path": f"{folder}/link.txt", **same, "_want": ("hostile_path", "Bundle Path")},
        "ATT-900005": {"Bundle Path": f"{folder}/gone.txt", **same, "_want": ("body_missing", "Bundle Path")},
        "ATT-900006": {"Bundle Path": src["Bundle Path"], "Size": src["Size"], "SHA-256": "0" * 64,
                       "_want": ("hash_mismatch", "SHA-256")},
        "ATT-900007": {"Bundle Path": src["Bundle Path"], "Size": str(len(body) + 1), "SHA-256": src["SHA-256"],
                       "_want": ("size_mismatch", "Size")},
    }
    case.big_id = "ATT-900008"

    def add(rows):
        for n, (aid, over) in enumerate(case.attachments.items(), start=len(rows) + 1):
            rows.append({**src, "Attachment ID": aid, **{k: v for k, v in over.items() if k != "_want"}})
            over["_row"] = n
        rows.append({**src, "Attachment ID": case.big_id, "File Name": "drawings.pdf",
                     "Bundle Path": f"{folder}/drawings.pdf", "Size": str(len(big)),
                     "SHA-256": hashlib.sha256(big).hexdigest(), "Content Type": "application/pdf"})
    edit_rows(root, "attachments.csv", add)
    return case


@pytest.fixture(scope="module")
def landed(base: Path, tmp_path_factory):
    root = copy(base, tmp_path_factory.mktemp("quarantined") / "bundle")
    case = _damage(root)
    con = land_and_stage(root, root.parent / "work")
    yield con, case, root
    con.close()


def _where(con, **where) -> list[tuple]:
    return [(q["row_number"], q["column"], q["raw_value"], q["level"]) for q in quarantine(con, **where)]


def test_duplicate_ids_latest_date_modified_wins(landed):
    con, case, _ = landed
    q = quarantine(con, file="work_orders.csv", reason_code="duplicate_id")
    assert [(x["row_number"], x["column"], x["raw_value"], x["level"]) for x in q] == [
        (6, "WO Number", case.wo[5]["WO Number"], "row")]
    assert f"row {case.dup_row} wins" in q[0]["message"]
    title = con.execute("SELECT title FROM staging.stg_work_orders WHERE wo_number = ?", [case.wo[5]["WO Number"]]).fetchall()
    assert title == [("Edited later",)]


def test_orphan_references_required_parent_row_optional_link_value(landed):
    con, _, _ = landed
    assert _where(con, file="labor.csv", reason_code="orphan_reference") == [(1, "WO Number", "WO-999999", "row")]
    assert _where(con, file="work_orders.csv", reason_code="orphan_reference") == [(5, "Asset ID", "99999", "value")]


def test_hierarchy_cycle_reported_in_staging_and_broken_by_shaping(landed):
    con, case, _ = landed
    got = {(q["raw_value"], q["level"]) for q in quarantine(con, file="assets.csv", reason_code="hierarchy_cycle")}
    assert got == {(case.cycle[1], "value"), (case.cycle[0], "value")}
    h = asset_hierarchy(read_staged(con, RUN).assets)
    assert h.filter("cycle_broken")["asset_id"].to_list() == [min(case.cycle)]


def test_impossible_and_blank_required_dates(landed):
    con, case, _ = landed
    assert _where(con, file="work_orders.csv", reason_code="bad_date") == [(2, "Due Date", "02/30/2026", "value")]
    assert _where(con, file="work_orders.csv", reason_code="missing_required") == [(4, "Date Requested", "", "value")]
    got = con.execute("SELECT due_date FROM staging.stg_work_orders WHERE wo_number = ?", [case.wo[1]["WO Number"]]).fetchall()
    assert got == [(None,)]
    assert case.wo[3]["WO Number"] in staged(con, "work_orders", "wo_number")  # the record still loads


def test_negative_amounts(landed):
    con, _, _ = landed
    assert _where(con, file="parts_used.csv", reason_code="negative_number") == [(1, "Unit Cost", "(12.00)", "value")]
    assert _where(con, file="labor.csv", reason_code="negative_number") == [(2, "Hours", "-3", "value")]


def test_unknown_status_priority_and_pick_list_values_are_kept_and_reported(landed):
    con, case, _ = landed
    got = {x for x in _where(con, file="work_orders.csv", reason_code="unknown_value") if x[2] not in TENANT_STATUSES}
    assert got == {(1, "Status", "Waiting on Vendor", "value"), (2, "Priority", "Urgent", "value"),
                   (3, "UDF: Council District", "District 99", "value"), (4, "UDF: Ward", "Ward 1; Ward 77", "value")}
    kept = con.execute("SELECT status FROM staging.stg_work_orders WHERE wo_number = ?", [case.wo[0]["WO Number"]]).fetchall()
    assert kept == [("Waiting on Vendor",)]


def test_attachment_hostile_paths_missing_bodies_and_mismatches_are_set_aside(landed):
    con, case, _ = landed
    got = {q["row_number"]: (q["reason_code"], q["column"], q["level"])
           for q in quarantine(con, file="attachments.csv")}
    assert got == {a["_row"]: (*a["_want"], "row") for a in case.attachments.values()}
    assert staged(con, "attachments", "attachment_id") & set(case.attachments) == set()


def test_attachment_over_25_mb_stages_and_shaping_sets_it_aside(landed):
    con, case, root = landed
    assert case.big_id in staged(con, "attachments", "attachment_id")  # not a staging matter
    inputs = read_staged(con, RUN)
    ctx = ShapeContext(run_key=RUN, exported_at=datetime(2026, 11, 20, 7, tzinfo=UTC), bundle_root=root,
                       resolve_inside=lambda rel: resolve_inside(root, rel))
    orgs = {f"asset:{a}" for a in inputs.assets["asset_id"].to_list()}
    deals = {f"work_order:{w}" for w in inputs.work_orders["wo_number"].to_list()}
    out = shape_files(inputs.attachments, orgs, deals, Mapping(), ctx)
    aside = {s: (c, m) for s, c, m in out.set_aside.select("source_id", "reason_code", "message").iter_rows()}
    assert set(aside) == {f"attachment:{case.big_id}"}  # the bodies staging set aside never reach shaping
    code, message = aside[f"attachment:{case.big_id}"]
    assert code == "file_too_large" and f"{26 * MB} bytes" in message
    split = shape_files(inputs.attachments, orgs, deals, Mapping(options=MappingOptions(large_file_policy="split")), ctx)
    assert dict(split.frame.select("source_id", "decision").iter_rows())[f"attachment:{case.big_id}"] == "split"


def test_nothing_else_is_reported(landed):
    """The control: apart from the generator's tenant statuses, every entry is one of the defects above."""
    con, _, _ = landed
    codes = {(q["file"], q["reason_code"]) for q in quarantine(con) if q["raw_value"] not in TENANT_STATUSES}
    assert codes == {
        ("work_orders.csv", "duplicate_id"), ("work_orders.csv", "orphan_reference"), ("labor.csv", "orphan_reference"),
        ("assets.csv", "hierarchy_cycle"), ("work_orders.csv", "bad_date"), ("work_orders.csv", "missing_required"),
        ("parts_used.csv", "negative_number"), ("labor.csv", "negative_number"), ("work_orders.csv", "unknown_value"),
        ("attachments.csv", "hostile_path"), ("attachments.csv", "body_missing"), ("attachments.csv", "hash_mismatch"),
        ("attachments.csv", "size_mismatch"),
    }
    per_code = {}
    for q in quarantine(con):
        if q["raw_value"] not in TENANT_STATUSES:
            per_code[q["reason_code"]] = per_code.get(q["reason_code"], 0) + 1
    assert per_code == {"duplicate_id": 1, "orphan_reference": 2, "hierarchy_cycle": 2, "bad_date": 1,
                        "missing_required": 1, "negative_number": 2, "unknown_value": 4, "hostile_path": 4,
                        "body_missing": 1, "hash_mismatch": 1, "size_mismatch": 1}
