"""The documents that need no Pipedrive: rebuild reference and audit log export."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster.staging.runner import run_all
from flitstack_dagster.verification.audit_export import export_audit_log
from flitstack_dagster.verification.rebuild import PIPEDRIVE, ZAP, build_rebuild_reference


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("rebuild")
    bundle = root / "bundle"
    assert main(["generate", "--out", str(bundle), "--work-orders", "40", "--mess", "0.02", "--seed", "5"]) == 0
    con = duckdb.connect()
    land_bundle(con, open_bundle(bundle, root / "work"), "full-r")
    run_all(con, "full-r")
    return con, bundle


@pytest.mark.slow
def test_rebuild_reference_lists_every_rule_and_form_of_the_bundle(staged):
    con, bundle = staged
    rules = json.loads((bundle / "workflow_rules.json").read_text(encoding="utf-8"))
    forms = json.loads((bundle / "form_configurations.json").read_text(encoding="utf-8"))
    ref = build_rebuild_reference(con, "full-r")
    md = ref.to_markdown()
    listed = {i.id for i in ref.items}
    for r in rules:
        assert r["rule_id"] in listed, r["rule_id"]
        assert f"### {r['rule_id']} — {r['name']}" in md
    for f in forms:
        assert f["form_id"] in listed, f["form_id"]
        assert f"### {f['form_id']} — {f['name']}" in md
        item = next(i for i in ref.items if i.id == f["form_id"])
        assert len(item.pattern.actions) == len(f["fields"])  # every form field has a Pipedrive target
    kinds = {i.id: i.kind for i in ref.items}
    routing = {r["rule_id"] for r in rules if {a["type"] for a in r["actions"]} & {"Assign", "Route To Department"}}
    assert routing and {k for k, v in kinds.items() if v == "routing_rule"} == routing
    summary = {row["what"]: row for row in ref.summary()}
    assert summary["Workflow rules"]["count"] + summary["Routing rules"]["count"] == len(rules)
    assert summary["Request forms"]["count"] == len(forms)


def test_pm_recurrences_are_structured_and_timers_go_to_zapier(staged):
    con, _ = staged
    ref = build_rebuild_reference(con, "full-r")
    pms = ref.of("pm_recurrence")
    staged_ids = {r[0] for r in con.execute("SELECT pm_id FROM staging.stg_pm_schedules WHERE _run_key = 'full-r'").fetchall()}
    assert {p.id for p in pms} == staged_ids
    date_pms = [p for p in pms if p.recurrence["trigger"] == "Date" and not p.recurrence["problem"]]
    assert date_pms
    for p in date_pms:
        r = p.recurrence
        assert r["rrule"].startswith("FREQ=") and r["frequency"] and r["interval"] >= 1
        assert f"RRULE {r['rrule']}" in ref.to_markdown()
    timers = [i for i in ref.items if i.original.get("trigger") == "Timer"]
    assert timers and all(i.pattern.tool == ZAP for i in timers)
    on_add = [i for i in ref.items if i.original.get("trigger") == "On Add"]
    assert any(i.pattern.tool == PIPEDRIVE and i.pattern.trigger == "Deal created" for i in on_add)


def test_audit_log_export_has_the_runs_rows_only(tmp_path: Path):
    con = duckdb.connect()
    store = LoadStore(con)
    store.record("full-a", "organization", "account:A-1", "create", 11, content_hash="h", payload={"name": "x"})
    store.record("full-a", "deal", "work_order:WO-1", "create", 21, content_hash="h", payload={"title": "t"})
    store.record("full-b", "deal", "work_order:WO-2", "create", 22, content_hash="h", payload={"title": "u"})
    store.record_skips("full-a", "person", [{"source_id": "contact:C1", "pipedrive_id": 31}])
    out = export_audit_log(con, "full-a", tmp_path)
    assert out.rows == 3 and out.by_operation == {"create": 2, "skip": 1}
    lines = out.csv.read_text().splitlines()
    assert lines[0].split(",")[:6] == ["seq", "entity", "source_id", "destination_id", "operation", "recorded_at_utc"]
    assert any(line.startswith("1,organization,account:A-1,11,create,") for line in lines)
    assert "WO-2" not in out.csv.read_text()
    rows = duckdb.sql(f"SELECT source_id, destination_id, operation FROM '{out.parquet}' ORDER BY seq").fetchall()
    assert rows == [("account:A-1", 11, "create"), ("work_order:WO-1", 21, "create"), ("contact:C1", 31, "skip")]
