"""Staging a small hand-built raw layer: types, duplicates, orphans, UDFs, quarantine, accounting, re-runs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.staging.models import discover_models
from flitstack_dagster.staging.quarantine import accounting, quarantine_summary
from flitstack_dagster.staging.runner import run_all, run_model
from flitstack_dagster_tests.staging.rawkit import add_bundle, add_rows, raw_layer

UDFS = [
    {"Entity": "Work Order", "Label": "District", "Column": "UDF: District", "Data Type": "Pick List",
     "Choices": "North|South", "Required": "No"},
    {"Entity": "Work Order", "Label": "Cost", "Column": "UDF: Cost", "Data Type": "Currency"},
    {"Entity": "Work Order", "Label": "Tags", "Column": "UDF: Tags", "Data Type": "Multi Pick List", "Choices": "a|b"},
    {"Entity": "Work Order", "Label": "Inspected", "Column": "UDF: Inspected", "Data Type": "Date"},
    {"Entity": "Work Order", "Label": "Billable", "Column": "UDF: Billable", "Data Type": "Yes/No"},
    {"Entity": "Work Order", "Label": "Miles", "Column": "UDF: Miles", "Data Type": "Number"},
    {"Entity": "Work Order", "Label": "Memo", "Column": "UDF: Memo", "Data Type": "Long Text"},
    {"Entity": "Asset", "Label": "Zone", "Column": "UDF: Zone", "Data Type": "Text"},
]

FILES = {
    "departments": [{"Department ID": "D1", "Department Name": "Public Works", "Department Type": "Internal",
                     "Active": "Yes"}],
    "accounts": [
        {"Account ID": "A1", "Account Name": "Acme", "Account Type": "Customer", "Department ID": "D9",
         "Email": " Billing@ACME.com ", "Date Modified": "11/01/2026 10:00"},
    ],
    "contacts": [
        {"Contact ID": "C1", "First Name": "  JOHN  ", "Last Name": "SMITH", "Email": "bad@", "Role": "Technician",
         "Account ID": "A1", "Department ID": "D1", "Hourly Rate": "$45.50", "Active": "Y"},
        {"Contact ID": "C2", "First Name": "", "Last Name": "N/A"},  # no name at all
    ],
    "assets": [
        {"Asset ID": "AS1", "Asset Name": "Pump", "Parent Asset ID": "AS9", "Account ID": "A1",
         "Latitude": "41.5", "Longitude": "-999", "Install Date": "3/4/2020", "UDF: Zone": "Z1"},
        {"Asset ID": "AS2", "Asset Name": "Motor", "Parent Asset ID": "AS1", "Account ID": "A7"},
    ],
    "work_orders": [
        {"WO Number": "WO-1", "Title": "old", "Status": "Open", "Date Modified": "11/01/2026 10:00"},
        {"WO Number": "WO-1", "Title": "new", "Status": "Open", "Date Modified": "11/02/2026 10:00"},
        {"WO Number": "WO-1", "Title": "older", "Status": "Open", "Date Modified": "10/01/2026 10:00"},
        {"WO Number": "WO-2", "Title": "tie a", "Status": "New", "Date Modified": "11/03/2026 9:00 AM"},
        {"WO Number": "WO-2", "Title": "tie b", "Status": "New", "Date Modified": "2026-11-03 09:00"},
        {"WO Number": "WO-3", "Title": " ", "Status": "Open"},
        {"WO Number": "N/A", "Title": "no id", "Status": "Open"},
        {"WO Number": "WO-4", "Title": "  <b>Leak</b>  ", "Description": "line 1\n  line 2 ", "Status": "Awaiting Parts",
         "Priority": "High", "Asset ID": "X9", "Account ID": "A1", "Requester ID": "C1", "Estimated Hours": "99999",
         "Date Requested": "02/30/2026 10:00", "Date Completed": "11/20/2026 2:15 PM", "Due Date": "2026-12-01",
         "UDF: District": "East", "UDF: Cost": "$1,000.50", "UDF: Tags": "a; c", "UDF: Inspected": "11/05/2026",
         "UDF: Billable": "Y", "UDF: Miles": "1,234.5", "UDF: Memo": " keep  me "},
        {"WO Number": "00042", "Title": "zeros", "Status": "Closed", "Asset ID": "AS2", "UDF: Billable": "perhaps"},
    ],
    "labor": [
        {"Labor ID": "L1", "WO Number": "WO-1", "Hours": "7.5", "Rate": "$45.00", "Work Date": "11/02/2026"},
        {"Labor ID": "L2", "WO Number": "WO-9", "Hours": "1"},
        {"Labor ID": "L3", "WO Number": "WO-3", "Hours": "1"},  # its work order was quarantined
        {"Labor ID": "L4", "WO Number": "00042", "Hours": "-3"},
        {"Labor ID": "L5", "WO Number": "42", "Hours": "1"},  # 42 is not 00042
    ],
    "pm_schedules": [{"PM ID": "PM1", "PM Name": "Monthly", "Every": "1", "Active": "True"}],
    "pm_history": [{"PM Event ID": "E1", "PM ID": "PM1"}, {"PM Event ID": "E2", "PM ID": "PM9"}],
    "attachments": [
        {"Attachment ID": "AT1", "Parent Type": "Work Order", "Parent ID": "WO-1", "Size": "10"},
        {"Attachment ID": "AT2", "Parent Type": "Asset", "Parent ID": "AS1"},
        {"Attachment ID": "AT3", "Parent Type": "Work Order", "Parent ID": "AS1"},
        {"Attachment ID": "AT4", "Parent Type": "Invoice", "Parent ID": "WO-1"},
    ],
    "user_defined_fields": UDFS,
    "workflow_rules": [{"rule_id": "R1", "name": "Assign", "enabled": True, "conditions": [], "actions": []},
                       "{not json", {"name": "no id"}],
    "form_configurations": [{"form_id": "F1", "name": "Request", "fields": [{"label": "x"}], "enabled": "Yes"}],
}


RESULTS: dict = {}


def _staged() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    raw_layer(c, "r1", FILES)
    RESULTS.clear()
    RESULTS.update(run_all(c, "r1"))
    return c


@pytest.fixture(scope="module")
def ro():
    """Staged once for the read-only tests."""
    c = _staged()
    yield c
    c.close()


@pytest.fixture()
def con():
    """Staged afresh for tests that change things."""
    c = _staged()
    yield c
    c.close()


def rows(con, sql, *params) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def q(con, run_key="r1", **where) -> list[dict]:
    cond = " AND ".join(f'"{k}" = ?' for k in where)
    return rows(con, f"SELECT * FROM staging.quarantine WHERE _run_key = ? {'AND ' + cond if cond else ''} "
                     "ORDER BY file, row_number, \"column\"", run_key, *where.values())


@pytest.mark.slow
def test_accounting_identity_holds_for_every_file(ro):
    con = ro
    accts = {a.file: a for a in accounting(con, "r1")}
    assert all(a.ok for a in accts.values()), [a for a in accts.values() if not a.ok]
    wo = accts["work_orders.csv"]
    assert (wo.raw_rows, wo.staged_rows, wo.quarantined_rows) == (9, 4, 5)
    assert (accts["labor.csv"].staged_rows, accts["labor.csv"].quarantined_rows) == (2, 3)
    assert accts["deleted.csv"].raw_rows == 0  # no raw table at all: still accounted
    assert (accts["workflow_rules.json"].staged_rows, accts["workflow_rules.json"].quarantined_rows) == (1, 2)


@pytest.mark.slow
def test_accounting_flags_a_lost_row(con):
    con.execute("DELETE FROM staging.stg_labor WHERE labor_id = 'L1'")
    assert not {a.file: a for a in accounting(con, "r1")}["labor.csv"].ok


def test_model_results(ro):
    con = ro
    r = RESULTS["stg_work_orders"]
    assert r.table == "staging.stg_work_orders"
    assert (r.rows, r.quarantined_rows) == (4, 5)
    assert [p["wo_number"] for p in r.preview] == ["WO-1", "WO-2", "WO-4", "00042"]
    assert r.quarantined_values == len(q(con, file="work_orders.csv", level="value"))


def test_typed_values(ro):
    con = ro
    wo = {r["wo_number"]: r for r in rows(con, "SELECT * FROM staging.stg_work_orders WHERE _run_key='r1'")}
    w4 = wo["WO-4"]
    assert w4["title"] == "  <b>Leak</b>  " and w4["description"] == "line 1\n  line 2 "
    assert w4["status"] == "Awaiting Parts"  # unknown status kept
    assert w4["date_completed"] == datetime(2026, 11, 20, 20, 15, tzinfo=UTC)
    assert w4["date_requested"] is None and w4["estimated_hours"] is None
    assert w4["due_date"] == date(2026, 12, 1)
    assert w4["asset_id"] is None and w4["account_id"] == "A1" and w4["requester_id"] == "C1"
    assert w4["udf_district"] == "East" and w4["udf_cost"] == Decimal("1000.50")
    assert w4["udf_tags"] == ["a", "c"] and w4["udf_inspected"] == date(2026, 11, 5)
    assert w4["udf_billable"] is True and w4["udf_miles"] == 1234.5 and w4["udf_memo"] == " keep  me "
    assert wo["00042"]["asset_id"] == "AS2" and wo["00042"]["udf_billable"] is None
    c1 = rows(con, "SELECT * FROM staging.stg_contacts WHERE contact_id='C1'")[0]
    assert (c1["first_name"], c1["last_name"], c1["email"]) == ("John", "Smith", None)
    assert c1["hourly_rate"] == Decimal("45.50") and c1["active"] is True
    a1 = rows(con, "SELECT * FROM staging.stg_accounts")[0]
    assert a1["email"] == "billing@acme.com" and a1["department_id"] is None
    assets = {r["asset_id"]: r for r in rows(con, "SELECT * FROM staging.stg_assets")}
    assert assets["AS1"]["parent_asset_id"] is None and assets["AS2"]["parent_asset_id"] == "AS1"
    assert assets["AS1"]["install_date"] == date(2020, 3, 4) and assets["AS1"]["longitude"] is None
    assert assets["AS1"]["udf_zone"] == "Z1" and assets["AS2"]["account_id"] is None
    wr = rows(con, "SELECT * FROM staging.stg_workflow_rules")
    assert [(r["rule_id"], r["enabled"]) for r in wr] == [("R1", True)]
    assert rows(con, "SELECT enabled FROM staging.stg_form_configurations")[0]["enabled"] is True


def test_udf_column_types(ro):
    con = ro
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema='staging' AND table_name='stg_work_orders'").fetchall())
    assert {k: v for k, v in types.items() if k.startswith("udf_")} == {
        "udf_district": "VARCHAR", "udf_cost": "DECIMAL(18,2)", "udf_tags": "VARCHAR[]",
        "udf_inspected": "DATE", "udf_billable": "BOOLEAN", "udf_miles": "DOUBLE", "udf_memo": "VARCHAR"}


def test_duplicate_id_latest_date_modified_wins_ties_go_to_the_last_row(ro):
    con = ro
    wo = {r["wo_number"]: r for r in rows(con, "SELECT wo_number, title, _row_number FROM staging.stg_work_orders")}
    assert (wo["WO-1"]["title"], wo["WO-1"]["_row_number"]) == ("new", 2)
    assert (wo["WO-2"]["title"], wo["WO-2"]["_row_number"]) == ("tie b", 5)
    dups = q(con, file="work_orders.csv", reason_code="duplicate_id")
    assert [(d["row_number"], d["level"], d["column"], d["raw_value"]) for d in dups] == [
        (1, "row", "WO Number", "WO-1"), (3, "row", "WO Number", "WO-1"), (4, "row", "WO Number", "WO-2")]
    assert "row 2 wins" in dups[0]["message"] and "row 5 wins" in dups[2]["message"]


def test_missing_required(ro):
    con = ro
    miss = q(con, file="work_orders.csv", reason_code="missing_required", level="row")
    assert [(m["row_number"], m["column"], m["raw_value"]) for m in miss] == [(6, "Title", " "), (7, "WO Number", "N/A")]
    c = q(con, file="contacts.csv", reason_code="missing_required")
    assert [(m["row_number"], m["level"]) for m in c] == [(2, "row")]
    assert q(con, file="workflow_rules.json", reason_code="missing_required")[0]["row_number"] == 3
    assert q(con, file="workflow_rules.json", reason_code="bad_json")[0]["raw_value"] == "{not json"


def test_required_parent_orphans_are_row_quarantined(ro):
    con = ro
    lab = q(con, file="labor.csv", reason_code="orphan_reference")
    assert [(x["row_number"], x["raw_value"], x["level"]) for x in lab] == [
        (2, "WO-9", "row"), (3, "WO-3", "row"), (5, "42", "row")]
    assert [r["labor_id"] for r in rows(con, "SELECT labor_id FROM staging.stg_labor ORDER BY 1")] == ["L1", "L4"]
    assert [x["raw_value"] for x in q(con, file="pm_history.csv", reason_code="orphan_reference")] == ["PM9"]
    att = q(con, file="attachments.csv", reason_code="orphan_reference")
    assert [(x["row_number"], x["level"]) for x in att] == [(3, "row"), (4, "row")]
    assert "Invoice" in att[1]["message"]
    assert {r["attachment_id"] for r in rows(con, "SELECT attachment_id FROM staging.stg_attachments")} == {"AT1", "AT2"}


def test_optional_orphans_are_value_level_and_set_null(ro):
    con = ro
    got = {(x["file"], x["column"], x["raw_value"]) for x in q(con, reason_code="orphan_reference", level="value")}
    assert got == {
        ("work_orders.csv", "Asset ID", "X9"), ("accounts.csv", "Department ID", "D9"),
        ("assets.csv", "Parent Asset ID", "AS9"), ("assets.csv", "Account ID", "A7"),
    }
    msg = q(con, file="work_orders.csv", reason_code="orphan_reference")[0]["message"]
    assert "X9" in msg and "without" in msg


def test_value_level_reason_codes(ro):
    con = ro
    got = {(x["file"], x["column"], x["reason_code"]) for x in q(con, level="value")}
    for want in [
        ("work_orders.csv", "Status", "unknown_value"),
        ("work_orders.csv", "Date Requested", "bad_datetime"),
        ("work_orders.csv", "Estimated Hours", "absurd_number"),
        ("work_orders.csv", "UDF: District", "unknown_value"),
        ("work_orders.csv", "UDF: Tags", "unknown_value"),
        ("work_orders.csv", "UDF: Billable", "bad_yesno"),
        ("contacts.csv", "Email", "invalid_email"),
        ("labor.csv", "Hours", "negative_number"),
        ("assets.csv", "Longitude", "absurd_number"),
    ]:
        assert want in got, want
    # notices are only written for staged rows, never for a row set aside
    staged = {(r["wo_number"], r["_row_number"]) for r in rows(con, "SELECT wo_number, _row_number FROM staging.stg_work_orders")}
    assert {x["row_number"] for x in q(con, file="work_orders.csv", level="value")} <= {n for _, n in staged}


def test_quarantine_summary(ro):
    con = ro
    s = {(x.file, x.reason_code, x.level): x.count for x in quarantine_summary(con, "r1")}
    assert s[("work_orders.csv", "duplicate_id", "row")] == 3
    assert s[("labor.csv", "orphan_reference", "row")] == 3
    assert s[("work_orders.csv", "unknown_value", "value")] == 3  # Status, District, Tags


@pytest.mark.slow
def test_rerun_replaces_exactly_that_runs_partition(con):
    raw_layer(con, "r2", {"work_orders": [{"WO Number": "B-1", "Title": "t", "Status": "Open"},
                                          {"WO Number": "B-1", "Title": "t2", "Status": "Open"}],
                          "user_defined_fields": []},
              date_order="DMY", timezone="Europe/Berlin")
    m = {x.name: x for x in discover_models()}
    for n in ("stg_departments", "stg_accounts", "stg_contacts", "stg_assets", "stg_work_orders"):
        run_model(con, m[n], "r2")
    before_r1 = rows(con, "SELECT * FROM staging.stg_work_orders WHERE _run_key='r1' ORDER BY _row_number")
    q_r1 = q(con, "r1")
    # r2 lands again with other data and is re-staged
    add_rows(con, "r2", "work_orders", [{"WO Number": "B-2", "Title": "x", "Status": "Open",
                                         "Date Modified": "20/11/2026 14:15"}])
    res = run_model(con, m["stg_work_orders"], "r2")
    assert res.rows == 1 and res.quarantined_rows == 0
    r2 = rows(con, "SELECT * FROM staging.stg_work_orders WHERE _run_key='r2'")
    assert [(r["wo_number"], r["date_modified"]) for r in r2] == [("B-2", datetime(2026, 11, 20, 13, 15, tzinfo=UTC))]
    assert r2[0]["udf_district"] is None  # a column from another run reads NULL here
    assert q(con, "r2", file="work_orders.csv") == []  # r2's old duplicate notice is gone
    assert rows(con, "SELECT * FROM staging.stg_work_orders WHERE _run_key='r1' ORDER BY _row_number") == before_r1
    assert q(con, "r1") == q_r1
    # running r1 again gives the same result, no doubles
    run_model(con, m["stg_work_orders"], "r1")
    assert rows(con, "SELECT * FROM staging.stg_work_orders WHERE _run_key='r1' ORDER BY _row_number") == before_r1
    assert q(con, "r1") == q_r1


@pytest.mark.slow
def test_new_udf_column_in_a_later_run_is_added(con):
    raw_layer(con, "r3", {"work_orders": [{"WO Number": "C-1", "Title": "t", "Status": "Open", "UDF: Ward": "7"}],
                          "user_defined_fields": [{"Entity": "Work Order", "Label": "Ward", "Column": "UDF: Ward",
                                                   "Data Type": "Number"}]})
    m = {x.name: x for x in discover_models()}
    for n in ("stg_departments", "stg_accounts", "stg_contacts", "stg_assets", "stg_work_orders"):
        run_model(con, m[n], "r3")
    got = rows(con, "SELECT _run_key, udf_ward FROM staging.stg_work_orders WHERE wo_number IN ('C-1', 'WO-1')")
    assert sorted((r["_run_key"], r["udf_ward"]) for r in got) == [("r1", None), ("r3", 7.0)]


@pytest.mark.slow
def test_delta_deleted_rows_stage(con):
    raw_layer(con, "d1", {"deleted": [{"Entity": "Work Order", "ID": "WO-1", "Deleted At": "2026-11-21T10:00:00Z"},
                                      {"Entity": "Gadget", "ID": "G1", "Deleted At": "later"}]}, kind="delta")
    res = run_model(con, {x.name: x for x in discover_models()}["stg_deleted"], "d1")
    assert res.rows == 2
    got = rows(con, "SELECT entity, id, deleted_at FROM staging.stg_deleted WHERE _run_key='d1' ORDER BY _row_number")
    assert got[0] == {"entity": "Work Order", "id": "WO-1", "deleted_at": datetime(2026, 11, 21, 10, 0, tzinfo=UTC)}
    assert {x["reason_code"] for x in q(con, "d1")} == {"unknown_value", "bad_datetime"}


def test_unlanded_run_and_unstaged_ref_are_clear_errors():
    c = duckdb.connect()
    m = {x.name: x for x in discover_models()}
    with pytest.raises(UserError, match="land"):
        run_model(c, m["stg_departments"], "nope")
    add_bundle(c, "r")
    with pytest.raises(UserError, match="no bundle landed"):
        run_model(c, m["stg_departments"], "other")
    with pytest.raises(UserError, match="run stg_work_orders first"):
        run_model(c, m["stg_labor"], "r")
    add_bundle(c, "bad", timezone="Mars/Olympus")
    with pytest.raises(UserError, match="Mars/Olympus"):
        run_model(c, m["stg_departments"], "bad")


@pytest.mark.slow
def test_failed_model_rolls_back_and_keeps_the_previous_partition(con, tmp_path):
    m = {x.name: x for x in discover_models()}["stg_labor"]
    before = rows(con, "SELECT * FROM staging.stg_labor ORDER BY _row_number")
    broken = type(m)(m.name, m.path, m.layer, m.refs, m.sources, m.description, m.sql.replace("novo_id(", "no_such_fn(", 1))
    with pytest.raises(duckdb.Error):
        run_model(con, broken, "r1")
    assert rows(con, "SELECT * FROM staging.stg_labor ORDER BY _row_number") == before
    assert len(q(con, file="labor.csv")) == 4


@pytest.mark.slow
def test_delta_links_to_records_of_the_tenants_earlier_runs(con):
    m = {x.name: x for x in discover_models()}
    delta = {"assets": [{"Asset ID": "AS3", "Asset Name": "Valve", "Parent Asset ID": "AS1", "Account ID": "A1"}],
             "work_orders": [{"WO Number": "WO-7", "Title": "t", "Status": "Open", "Asset ID": "AS2",
                              "Requester ID": "C1"}],
             "labor": [{"Labor ID": "L9", "WO Number": "WO-1", "Hours": "2"},  # WO-1 only in r1
                       {"Labor ID": "L10", "WO Number": "WO-404", "Hours": "2"}],
             "user_defined_fields": []}
    raw_layer(con, "d2", delta, kind="delta", exported_at="2026-11-27T07:00:00Z")
    # another tenant's full run and a later run do not count as parents
    raw_layer(con, "x1", {"work_orders": [{"WO Number": "WO-404", "Title": "t", "Status": "Open"}]},
              tenant="Elsewhere")
    run_all(con, "x1")
    res = run_all(con, "d2")
    assert res["stg_labor"].rows == 1 and res["stg_labor"].quarantined_rows == 1
    assert [x["raw_value"] for x in q(con, "d2", file="labor.csv")] == ["WO-404"]
    a3 = rows(con, "SELECT parent_asset_id, account_id FROM staging.stg_assets WHERE _run_key='d2'")[0]
    assert a3 == {"parent_asset_id": "AS1", "account_id": "A1"}
    w7 = rows(con, "SELECT asset_id, requester_id FROM staging.stg_work_orders WHERE _run_key='d2'")[0]
    assert w7 == {"asset_id": "AS2", "requester_id": "C1"}
    assert q(con, "d2", reason_code="orphan_reference", level="value") == []
    # a full run stays self-contained: r1 re-staged still reports its own orphans only
    run_model(con, m["stg_labor"], "r1")
    assert [x["raw_value"] for x in q(con, "r1", file="labor.csv", reason_code="orphan_reference")] == ["WO-9", "WO-3", "42"]
