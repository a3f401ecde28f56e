"""Staging's share of the spec's "What real exports get wrong": blank required dates, blank Required
UDFs, attachment bodies landing found wrong, and cycles in Parent Asset ID."""

from __future__ import annotations

import re

import duckdb
import pytest

from flitstack_dagster.novo import columns as novo
from flitstack_dagster.novo.generator.mess import REQUIRED_DATES
from flitstack_dagster.staging.models import RenderContext, discover_models, render
from flitstack_dagster.staging.quarantine import accounting
from flitstack_dagster.staging.runner import run_all
from flitstack_dagster_tests.staging.rawkit import raw_layer

SHA = "a" * 64
WO = {"WO Number": "WO-1", "Title": "t", "Status": "Open", "Date Requested": "11/01/2026 10:00"}


def _quarantine(con, **where) -> list[dict]:
    cond = "".join(f' AND "{k}" = ?' for k in where)
    cur = con.execute(f"SELECT * FROM staging.quarantine WHERE true{cond} ORDER BY file, row_number, \"column\"",
                      list(where.values()))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    raw_layer(c, "r", {
        "work_orders": [
            WO,
            {"WO Number": "WO-2", "Title": "t", "Status": "Open", "Date Requested": "", "UDF: Budget Code": "",
             "UDF: Ward": ""},
            {"WO Number": "WO-3", "Title": "t", "Status": "Open", "Date Requested": "N/A",
             "UDF: Budget Code": "B-7"},
        ],
        "labor": [{"Labor ID": "L1", "WO Number": "WO-1", "Work Date": " "}],
        "assets": [
            {"Asset ID": "AS1", "Asset Name": "a", "Parent Asset ID": "AS2", "Date Added": "2026-01-01"},
            {"Asset ID": "AS2", "Asset Name": "b", "Parent Asset ID": "AS1", "Date Added": "2026-01-01"},
            {"Asset ID": "AS3", "Asset Name": "c", "Parent Asset ID": "AS3", "Date Added": "2026-01-01"},
            {"Asset ID": "AS4", "Asset Name": "d", "Parent Asset ID": "AS1", "Date Added": "2026-01-01"},
            {"Asset ID": "AS5", "Asset Name": "e", "Date Added": "2026-01-01"},
            {"Asset ID": "AS6", "Asset Name": "f", "Parent Asset ID": "AS5", "Date Added": "2026-01-01"},
        ],
        "attachments": [
            {"Attachment ID": f"F{i}", "Parent Type": "Work Order", "Parent ID": "WO-1", "Bundle Path": path,
             "Size": size, "SHA-256": sha, "Uploaded At": "2026-11-01 10:00", "_body": body,
             "_body_bytes": nbytes, "_body_sha256": actual}
            for i, (path, size, sha, body, nbytes, actual) in enumerate([
                ("files/ok.txt", "5", SHA.upper(), "found", "5", SHA),  # fine (hash case ignored)
                ("files/gone.txt", "5", SHA, "missing", None, None),
                ("../../etc/passwd", "5", SHA, "outside", None, None),
                ("", "5", SHA, "no_path", None, None),
                ("files/big.txt", "1,024", SHA, "found", "1000", SHA),
                ("files/bad.txt", "5", SHA, "found", "5", "b" * 64),
                ("files/unchecked.txt", "5", SHA, None, None, None),  # landed before the check: staged
                ("files/nosha.txt", "5", "", "found", "5", SHA),  # no hash to compare: staged
            ], start=1)
        ],
        "user_defined_fields": [
            {"Entity": "Work Order", "Label": "Budget Code", "Column": "UDF: Budget Code", "Data Type": "Text",
             "Required": "Yes"},
            {"Entity": "Work Order", "Label": "Ward", "Column": "UDF: Ward", "Data Type": "Number", "Required": "No"},
        ],
    }, fill_required_dates=False)
    run_all(c, "r")
    yield c
    c.close()


@pytest.mark.slow
def test_blank_required_dates_are_reported_and_the_record_still_loads(con):
    got = [(x["file"], x["row_number"], x["column"], x["raw_value"], x["level"])
           for x in _quarantine(con, reason_code="missing_required") if x["column"] in ("Date Requested", "Work Date")]
    assert got == [("labor.csv", 1, "Work Date", " ", "value"),
                   ("work_orders.csv", 2, "Date Requested", "", "value"),
                   ("work_orders.csv", 3, "Date Requested", "N/A", "value")]
    msg = _quarantine(con, file="work_orders.csv", row_number=2, column="Date Requested")[0]["message"]
    assert msg == "required Date Requested is empty; the work order loads without it"
    staged = con.execute("SELECT wo_number, date_requested FROM staging.stg_work_orders ORDER BY 1").fetchall()
    assert [w for w, _ in staged] == ["WO-1", "WO-2", "WO-3"] and staged[1][1] is None


def test_blank_required_udf_is_reported_an_optional_one_is_not(con):
    udf = [(x["row_number"], x["column"], x["reason_code"]) for x in _quarantine(con, file="work_orders.csv")
           if x["column"].startswith("UDF:")]
    assert udf == [(1, "UDF: Budget Code", "missing_required"), (2, "UDF: Budget Code", "missing_required")]
    msg = _quarantine(con, file="work_orders.csv", row_number=2, column="UDF: Budget Code")[0]["message"]
    assert "required UDF: Budget Code is empty" in msg and "loads without it" in msg


def test_attachment_body_problems_are_set_aside_with_the_column_and_value(con):
    got = {x["row_number"]: (x["reason_code"], x["column"], x["raw_value"], x["level"])
           for x in _quarantine(con, file="attachments.csv") if x["level"] == "row"}
    assert got == {
        2: ("body_missing", "Bundle Path", "files/gone.txt", "row"),
        3: ("hostile_path", "Bundle Path", "../../etc/passwd", "row"),
        4: ("body_missing", "Bundle Path", "", "row"),
        5: ("size_mismatch", "Size", "1,024", "row"),
        6: ("hash_mismatch", "SHA-256", SHA, "row"),
    }
    msgs = {x["row_number"]: x["message"] for x in _quarantine(con, file="attachments.csv", level="row")}
    assert "no body at files/gone.txt" in msgs[2] and "leaves the bundle" in msgs[3]
    assert "is 1000 bytes, the row says 1,024" in msgs[5] and "bbbbbbbbbbbb…" in msgs[6]
    staged = [r for (r,) in con.execute("SELECT attachment_id FROM staging.stg_attachments ORDER BY 1").fetchall()]
    assert staged == ["F1", "F7", "F8"]
    cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'stg_attachments'").fetchall()]
    # of landing's facts only the checked size is staged (so shaping does not open those bodies again)
    assert [c for c in cols if "body" in c and c != "bundle_path"] == ["_body_bytes"]
    checked = dict(con.execute("SELECT attachment_id, _body_bytes FROM staging.stg_attachments").fetchall())
    assert checked == {"F1": 5, "F7": None, "F8": 5}
    assert all(a.ok for a in accounting(con, "r"))


def test_every_asset_on_a_cycle_is_reported_and_kept_for_shaping(con):
    got = {x["row_number"]: x for x in _quarantine(con, file="assets.csv", reason_code="hierarchy_cycle")}
    assert sorted(got) == [1, 2, 3]  # AS1 <-> AS2, AS3 -> AS3; not AS4 (under the cycle) nor AS5/AS6
    assert {r: (x["raw_value"], x["level"]) for r, x in got.items()} == {
        1: ("AS2", "value"), 2: ("AS1", "value"), 3: ("AS3", "value")}
    assert "cycle of 2 asset(s)" in got[1]["message"] and "cycle of 1 asset(s)" in got[3]["message"]
    assert "smallest Asset ID" in got[1]["message"]
    kept = dict(con.execute("SELECT asset_id, parent_asset_id FROM staging.stg_assets").fetchall())
    assert kept == {"AS1": "AS2", "AS2": "AS1", "AS3": "AS3", "AS4": "AS1", "AS5": None, "AS6": "AS5"}


def test_the_sql_marks_blank_required_values_as_columns_py_says():
    """Row-level required columns appear in the model's missing-row CASE; value-level ones get
    novo_required_issue — so columns.py and the SQL cannot drift apart."""
    models = {m.entity: render(m, RenderContext(run_key="r")) for m in discover_models()}
    for f in novo.FILES:
        sql = models[f.entity]
        for c in f.columns:
            value_level = f"novo_required_issue('{c.label}', \"{c.label}\"" in sql
            row_level = re.search(rf'WHEN novo_is_null\("{re.escape(c.label)}"\) THEN \'{re.escape(c.label)}\'', sql)
            if c.required and c.required_level == "value":
                assert value_level and not row_level, (f.file, c.label)
            elif c.required:
                assert row_level and not value_level, (f.file, c.label)
            else:
                assert not value_level, (f.file, c.label)


def test_generator_blanks_exactly_the_required_dates():
    want = {f.file: c.label for f in novo.FILES for c in f.columns if c.required and c.required_level == "value"}
    assert REQUIRED_DATES == want
