"""The `migrate` job end to end through Dagster into the sandbox over HTTP: gated by approval, then
every shaped record lands once with its fields, a re-materialization writes nothing, a data change
the approval does not cover stops it again, and a delta touches only what changed."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.mapping.demo_approval import approve_for_demo
from flitstack_dagster.defs.instance import launch_migrate
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.core.settings import data_paths
from flitstack_dagster_tests.kit import resign

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _failed_checks(result) -> dict[str, str]:
    return {c.check_name: c.description or "" for c in result.get_asset_check_evaluations() if not c.passed}


def _writes(usage_before: dict, usage_after: dict) -> dict[str, int]:
    """Write operations the sandbox counted between two usage snapshots."""
    ops_b, ops_a = usage_before["operations"], usage_after["operations"]
    out = {}
    for op, u in ops_a.items():
        n = u["count"] - ops_b.get(op, {}).get("count", 0)
        if n and op.startswith(("add", "update", "delete")):
            out[op] = n
    return out


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A 20-work-order messy bundle migrated through Dagster (after the approval gate)."""
    root = tmp_path_factory.mktemp("migrate")
    old = {k: os.environ.get(k) for k in ("FLITSTACK_DATA_DIR", "PIPEDRIVE_BASE_URL", "PIPEDRIVE_API_TOKEN", "DAGSTER_HOME")}
    os.environ["FLITSTACK_DATA_DIR"] = str(root / "data")
    paths = data_paths().ensure()
    bundle = paths.exports / "b"
    assert cli_main(["generate", "--work-orders", "20", "--seed", "11", "--mess", "0.03", "--out", str(bundle)]) == 0
    with duck.connect(paths.duckdb) as con:
        run = add_run(con, bundle, "full", paths.work)
    sandbox = SandboxServer(state_path=paths.sandbox_state, plan="ultimate", seats=5)
    sandbox.start()
    os.environ["PIPEDRIVE_BASE_URL"], os.environ["PIPEDRIVE_API_TOKEN"] = sandbox.base_url, sandbox.api_token
    try:
        first = launch_migrate(paths, run.run_key, run.mode, str(bundle))
        approve_for_demo(paths)
        gated = launch_migrate(paths, run.run_key, run.mode, str(bundle))  # no verified sample yet
        with duck.connect(paths.duckdb) as con:
            sample = add_run(con, bundle, "sample", paths.work)
        sampled = launch_migrate(paths, sample.run_key, sample.mode, str(bundle))
        second = launch_migrate(paths, run.run_key, run.mode, str(bundle))
        yield {"paths": paths, "run": run, "sample": sample, "bundle": bundle, "sandbox": sandbox, "first": first,
               "gated": gated, "sampled": sampled, "second": second}
    finally:
        sandbox.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_stops_at_approval_then_at_the_sample_gate_then_loads(migrated):
    first, gated, sampled, second = migrated["first"], migrated["gated"], migrated["sampled"], migrated["second"]
    failed = _failed_checks(first)
    assert "mapping_approved" in failed and "approve" in failed["mapping_approved"].lower()
    assert not [e for e in first.all_node_events if e.is_step_success and e.step_key.startswith("loaded_")]
    failed = _failed_checks(gated)
    assert set(failed) == {"ready_to_load"} and "no sample run" in failed["ready_to_load"]
    assert not [e for e in gated.all_node_events if e.is_step_success and e.step_key.startswith("loaded_")]
    assert sampled.success, _failed_checks(sampled)
    assert second.success, _failed_checks(second)
    done = {e.step_key for e in second.all_node_events if e.is_step_success}
    assert {"loaded_organizations", "loaded_persons", "loaded_deals", "loaded_activities", "loaded_notes",
            "loaded_files", "loaded_org_relationships", "applied_deletions"} <= done


def test_every_shaped_record_is_in_pipedrive_once(migrated):
    paths, run, sandbox = migrated["paths"], migrated["run"], migrated["sandbox"]
    snap = sandbox.snapshot()
    with duck.connect(paths.duckdb, read_only=True) as con:
        for entity, table, coll in [("organization", "pd_organizations", "organizations"), ("person", "pd_persons", "persons"),
                                    ("deal", "pd_deals", "deals"), ("activity", "pd_activities", "activities"),
                                    ("note", "pd_notes", "notes"), ("file", "pd_files", "files")]:
            shaped = {r[0] for r in con.execute(f"SELECT source_id FROM shaped.{table} WHERE run_key = ?", [run.run_key]).fetchall()}
            aside = {r[0] for r in con.execute("SELECT source_id FROM meta.load_set_aside WHERE run_key = ? AND entity = ?",
                                               [run.run_key, entity]).fetchall()}
            id_map = dict(con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = ?", [entity]).fetchall())
            in_pd = [int(r["id"]) for r in _records(snap, coll)]
            assert shaped - aside <= set(id_map), entity  # every record loaded or set aside with a reason
            assert not (aside & set(id_map)), entity
            assert len(in_pd) == len(set(in_pd)) and set(in_pd) == set(id_map.values()), entity  # no duplicate, none missing
            assert len(set(id_map.values())) == len(id_map), entity  # one Pipedrive record per source record
        reasons = con.execute("SELECT DISTINCT reason_code FROM meta.load_set_aside").fetchall()
        assert all(r[0] for r in reasons)


def test_fields_arrive(migrated):
    """Stages, costs, original note times, custom fields: spot-checked against shaping's intent."""
    paths, run, sandbox = migrated["paths"], migrated["run"], migrated["sandbox"]
    snap = sandbox.snapshot()
    deals = {int(d["id"]): d for d in _records(snap, "deals")}
    notes = {int(n["id"]): n for n in _records(snap, "notes")}
    with duck.connect(paths.duckdb, read_only=True) as con:
        rows = con.execute(
            "SELECT s.payload, m.pipedrive_id FROM shaped.pd_deals s JOIN meta.id_map m "
            "ON m.entity = 'deal' AND m.source_id = s.source_id WHERE s.run_key = ?", [run.run_key]).fetchall()
        stages = {r[0]: r[1] for r in con.execute("SELECT name, pd_id FROM meta.pipeline_registry WHERE kind = 'stage'").fetchall()}
        note_rows = con.execute(
            "SELECT s.payload, m.pipedrive_id FROM shaped.pd_notes s JOIN meta.id_map m "
            "ON m.entity = 'note' AND m.source_id = s.source_id WHERE s.run_key = ?", [run.run_key]).fetchall()
    assert rows
    for payload, pid in rows:
        p, d = json.loads(payload), deals[pid]
        assert d["title"] == p["title"]
        if p.get("value") is not None:
            assert float(d["value"]) == pytest.approx(float(p["value"]))
        if p.get("stage"):
            assert d["stage_id"] == stages[p["stage"]]
    for payload, pid in note_rows:
        p = json.loads(payload)
        if p.get("add_time"):
            assert notes[pid]["add_time"].replace("T", " ").rstrip("Z")[:19] == p["add_time"].replace("T", " ").rstrip("Z")[:19]


def test_rematerializing_writes_nothing(migrated):
    paths, run, sandbox = migrated["paths"], migrated["run"], migrated["sandbox"]
    before = sandbox.usage()
    again = launch_migrate(paths, run.run_key, run.mode, str(migrated["bundle"]))
    assert again.success
    assert _writes(before, sandbox.usage()) == {}


def test_data_change_outside_the_approval_stops_again(migrated, tmp_path):
    """A new tenant status in a later export is not covered by the approval: the gate closes."""
    paths, bundle = migrated["paths"], migrated["bundle"]
    changed = tmp_path / "changed"
    shutil.copytree(bundle, changed)
    wo = changed / "work_orders.csv"
    with wo.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[1][rows[0].index("Status")] = "Awaiting Inspector"
    with wo.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    export_id = json.loads((changed / "manifest.json").read_text(encoding="utf-8"))["export_id"]
    resign(changed, export_id=export_id + "b")  # a tenant re-export, not a damaged bundle
    with duck.connect(paths.duckdb) as con:
        run2 = add_run(con, changed, "full", paths.work)
    result = launch_migrate(paths, run2.run_key, run2.mode, str(changed))
    failed = _failed_checks(result)
    assert "mapping_approved" in failed and "Awaiting Inspector" in failed["mapping_approved"]
    assert not [e for e in result.all_node_events if e.is_step_success and e.step_key.startswith("loaded_")]


def _records(snap: dict, coll: str) -> list[dict]:
    return [r for r in snap["records"][coll].values() if not r.get("is_deleted") and r.get("active_flag", True) is not False]


def test_delta_touches_only_what_changed_then_rollbacks_restore(migrated):
    """A generated delta (changed, new, deleted records) through `migrate`, then the `rollback` job:
    the delta's rollback gives back the post-full state; rolling back full and sample empties it."""
    from flitstack_dagster.defs.instance import get_instance
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster_tests.loading.test_rollback import live_state

    paths, run, sandbox, bundle = migrated["paths"], migrated["run"], migrated["sandbox"], migrated["bundle"]
    after_full = live_state(sandbox)
    delta_bundle = paths.exports / "delta"
    assert cli_main(["generate", "--delta-from", str(bundle), "--seed", "12", "--out", str(delta_bundle)]) == 0
    with duck.connect(paths.duckdb) as con:
        delta = add_run(con, delta_bundle, "delta", paths.work)
    result = launch_migrate(paths, delta.run_key, delta.mode, str(delta_bundle))
    assert result.success, _failed_checks(result)
    with duck.connect(paths.duckdb, read_only=True) as con:
        ops = dict(con.execute("SELECT operation, count(*) FROM meta.audit_log WHERE run_key = ? GROUP BY 1",
                               [delta.run_key]).fetchall())
        shaped = sum(con.execute(f"SELECT count(*) FROM shaped.{t} WHERE run_key = ?", [delta.run_key]).fetchall()[0][0]
                     for t in ("pd_organizations", "pd_org_relationships", "pd_persons", "pd_deals", "pd_activities",
                               "pd_notes", "pd_files"))
        listed = con.execute("SELECT count(*) FROM staging.stg_deleted WHERE _run_key = ?", [delta.run_key]).fetchall()[0][0]
        verified = con.execute("SELECT unexplained, duplicates FROM verification.runs WHERE run_key = ?",
                               [delta.run_key]).fetchall()
    assert ops.get("create", 0) > 0 and ops.get("update", 0) > 0  # new and changed records
    assert ops.get("create", 0) + ops.get("update", 0) + ops.get("skip", 0) + ops.get("adopt", 0) <= shaped
    assert listed > 0 and ops.get("flag", 0) > 0  # deletions flagged (the default policy), not deleted
    assert ops.get("delete", 0) == 0
    assert verified == [(0, 0)]  # afterwards Pipedrive matches the delta's records field by field

    instance = get_instance(paths)
    rollback = build_definitions(paths.root).resolve_job_def("rollback")

    def roll_back(key: str, cascade: bool = False):
        r = rollback.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                        run_config={"ops": {"rollback_migration_run": {"config": {"cascade": cascade}}}})
        assert r.success, [e.message for e in r.all_node_events if e.is_failure]

    roll_back(delta.run_key)
    assert live_state(sandbox) == after_full
    roll_back(run.run_key, cascade=True)
    roll_back(migrated["sample"].run_key, cascade=True)
    assert sum(len(v) for v in live_state(sandbox).values()) == 0



def test_the_ledger_holds_every_token_the_sandbox_counted(migrated):
    """Every step that spends tokens writes them to the ledger — account audit, provisioning, loads,
    deletions, read-back, repair and rollback (the delta test's rollbacks, when it ran first) — so the
    ledger's total for the account is the sandbox's own count, request for request."""
    from flitstack_dagster.loading.ledger import Ledger

    ledger, sandbox = Ledger.in_folder(migrated["paths"].root), migrated["sandbox"]
    spent = sum(op["tokens"] for op in sandbox.usage()["operations"].values())
    runs = [migrated["run"].run_key, migrated["sample"].run_key]
    (account,) = {a for r in runs for a in ledger.accounts(r)}  # one account, named by its domain
    assert account == sandbox.snapshot()["account"]["company_domain"]
    assert spent > 0 and ledger.tokens(account=account) == spent
