"""Record plans `balanced` and `compact` end to end: a generated bundle through `migrate` into the
sandbox under each plan verifies clean with every folded fact a diff row of its own; a delta that
changes a status-log entry rewrites exactly that line of the deal's timeline; rolling back restores
the account."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core import duck
from flitstack_dagster.shaping.folding import lines_in
from flitstack_dagster_tests.kit import migrated_through_dagster, resign
from flitstack_dagster_tests.loading.test_rollback import live_state
from flitstack_dagster_tests.reliability.kit import read_csv, write_csv

pytestmark = pytest.mark.slow

CHANGED_COMMENT = "Waiting on parts — corrected after the export"


def _generate(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    assert cli_main(["generate", "--work-orders", "4", "--seed", "5", "--mess", "0", "--out", str(bundle),
                     "--no-mess-log"]) == 0
    return bundle


def _delta_with_a_changed_entry(base: Path, out: Path) -> tuple[str, str]:
    """A generated delta whose status log also carries one changed entry of the base (same Log ID, new
    comment) of a work order the delta changes.
    Returns (work order, log id) of the changed entry."""
    assert cli_main(["generate", "--delta-from", str(base), "--seed", "12", "--out", str(out), "--no-mess-log"]) == 0
    _, delta_wos, _ = read_csv(out, "work_orders.csv")
    header, delta_log, enc = read_csv(out, "status_log.csv")
    _, base_log, _ = read_csv(base, "status_log.csv")
    changed_wos = {r["WO Number"] for r in delta_wos}
    old = next(r for r in base_log if r["WO Number"] in changed_wos and r["Comment"])
    assert not {r["Log ID"] for r in delta_log} & {r["Log ID"] for r in base_log}  # the delta's ids continue the base's
    delta_log.append(dict(old, Comment=CHANGED_COMMENT))
    write_csv(out, "status_log.csv", header, delta_log, enc)
    resign(out, rows={"status_log.csv": len(delta_log)})
    return old["WO Number"], old["Log ID"]


def _diff(con, run_key: str) -> pl.DataFrame:
    rows = con.execute("SELECT entity, source_id, field, expected, actual, outcome FROM verification.field_diff "
                       "WHERE run_key = ?", [run_key]).fetchall()
    return pl.DataFrame(rows, schema=["entity", "source_id", "field", "expected", "actual", "outcome"], orient="row")


def _host_text(sandbox, m, record_plan: str, wo: str) -> str:
    """The work order's timeline as the account holds it: the deal's field, or its timeline note."""
    records = sandbox.snapshot()["records"]
    with duck.connect(m.paths.duckdb, read_only=True) as con:
        if record_plan == "compact":
            deal_id = con.execute("SELECT pipedrive_id FROM meta.id_map WHERE entity = 'deal' AND source_id = ?",
                                  [f"work_order:{wo}"]).fetchone()[0]
            key = con.execute("SELECT key FROM meta.field_registry WHERE entity = 'deal' AND name = 'Novo Timeline'"
                              ).fetchone()[0]
            return records["deals"][str(deal_id)]["custom_fields"][key]
        note_id = con.execute("SELECT pipedrive_id FROM meta.id_map WHERE entity = 'note' AND source_id = ?",
                              [f"work_order_timeline:{wo}"]).fetchone()[0]
        return records["notes"][str(note_id)]["content"]


@pytest.mark.parametrize("record_plan", ["balanced", "compact"])
def test_plan_verifies_every_fact_in_place_and_a_delta_rewrites_the_changed_line(tmp_path, record_plan):
    bundle = _generate(tmp_path)
    with migrated_through_dagster(bundle, tmp_path / "data", record_plan=record_plan) as m:
        assert m.second.success
        checks = {c.check_name: c.passed for c in m.second.get_asset_check_evaluations()}
        assert checks["reconciliation"] and checks["every_record_once"] and checks["no_unexplained_mismatches"]
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            diff = _diff(con, m.run_key)
            status_ids = {f"status_log:{r[0]}" for r in con.execute(
                "SELECT log_id FROM staging.stg_status_log WHERE _run_key = ?", [m.run_key]).fetchall()}
            folded = {r[0] for r in con.execute(
                "SELECT source_id FROM shaped.reconciliation WHERE run_key = ? AND file = 'status_log.csv' "
                "AND outcome = 'loaded'", [m.run_key]).fetchall()}
        assert folded == status_ids  # every status change is accounted for in its timeline
        lines = diff.filter(diff["source_id"].is_in(list(status_ids)))
        assert set(lines["source_id"]) == status_ids  # each status change is a row of its own ...
        assert set(lines["outcome"]) == {"match"}  # ... found on its line, with its timestamp
        assert set(lines["field"]) == {"Novo Timeline line" if record_plan == "compact" else "timeline line"}

        # a delta changing one status-log entry of a work order it also changes
        delta_bundle = tmp_path / "delta"
        wo, log_id = _delta_with_a_changed_entry(bundle, delta_bundle)
        before = lines_in(_host_text(m.sandbox, m, record_plan, wo), html_body=record_plan != "compact")
        from flitstack_dagster.novo.runs import add_run

        with duck.connect(m.paths.duckdb) as con:
            delta = add_run(con, delta_bundle, "delta", m.paths.work)
        m.instance.add_dynamic_partitions("migration_runs", [delta.run_key])
        result = m.job.execute_in_process(partition_key=delta.run_key, instance=m.instance, raise_on_error=False)
        assert result.success, [e.message for e in result.all_node_events if e.is_failure]
        after = lines_in(_host_text(m.sandbox, m, record_plan, wo), html_body=record_plan != "compact")
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            new = {f"status_log:{r[0]}" for r in con.execute(
                "SELECT log_id FROM staging.stg_status_log WHERE _run_key = ? AND wo_number = ?",
                [delta.run_key, wo]).fetchall()} | {f"note:{r[0]}" for r in con.execute(  # activity-log notes
                "SELECT note_id FROM staging.stg_notes WHERE _run_key = ? AND wo_number = ? AND entry_type = 'Note'",
                [delta.run_key, wo]).fetchall()}
            unexplained = con.execute("SELECT unexplained FROM verification.runs WHERE run_key = ?",
                                      [delta.run_key]).fetchone()[0]
        key = f"status_log:{log_id}"
        assert CHANGED_COMMENT in after[key] and CHANGED_COMMENT not in before[key]
        assert set(after) == set(before) | new  # every earlier line kept, the delta's added
        assert key in new and {k: v for k, v in after.items() if k not in new} == {
            k: v for k, v in before.items() if k not in new}  # and nothing else rewritten
        assert after[key].split(" · ")[0] == before[key].split(" · ")[0]  # its original timestamp
        assert unexplained == 0


def test_rollback_of_a_compact_run_restores_the_account(tmp_path):
    bundle = _generate(tmp_path)
    with migrated_through_dagster(bundle, tmp_path / "data", record_plan="compact") as m:
        assert m.second.success
        assert sum(len(v) for v in live_state(m.sandbox).values()) > 0
        from flitstack_dagster.definitions import build_definitions

        rollback = build_definitions(m.paths.root, pipedrive=m.pipedrive).resolve_job_def("rollback")
        r = rollback.execute_in_process(partition_key=m.run_key, instance=m.instance, raise_on_error=False,
                                        run_config={"ops": {"rollback_migration_run": {"config": {"cascade": True}}}})
        assert r.success, [e.message for e in r.all_node_events if e.is_failure]
        assert sum(len(v) for v in live_state(m.sandbox).values()) == 0
        deals = [json.loads(json.dumps(d)) for d in m.sandbox.snapshot()["records"]["deals"].values()]
        assert all(d.get("is_deleted") for d in deals)



def _where_each_fact_is(sandbox, m) -> dict[str, list[str]]:
    """Fact source id -> every live place in the account holding its line (deal plan fields, notes)."""
    records = sandbox.snapshot()["records"]
    with duck.connect(m.paths.duckdb, read_only=True) as con:
        keys = dict(con.execute("SELECT key, name FROM meta.field_registry WHERE entity = 'deal' AND name IN "
                                "('Novo Timeline', 'Novo Labor', 'Novo Parts')").fetchall())
    places: dict[str, list[str]] = {}
    for pid, d in records["deals"].items():
        if d.get("is_deleted"):
            continue
        for key, name in keys.items():
            for fact in lines_in((d.get("custom_fields") or {}).get(key)):
                places.setdefault(fact, []).append(f"deal {pid} {name}")
    for pid, n in records["notes"].items():
        if n.get("is_deleted") or n.get("active_flag") is False:
            continue
        for fact in lines_in(n.get("content"), html_body=True):
            places.setdefault(fact, []).append(f"note {pid}")
    return places


def _run_delta(m, bundle: Path) -> str:
    from flitstack_dagster.novo.runs import add_run

    with duck.connect(m.paths.duckdb) as con:
        delta = add_run(con, bundle, "delta", m.paths.work)
    m.instance.add_dynamic_partitions("migration_runs", [delta.run_key])
    result = m.job.execute_in_process(partition_key=delta.run_key, instance=m.instance, raise_on_error=False)
    assert result.success, [e.message for e in result.all_node_events if e.is_failure]
    with duck.connect(m.paths.duckdb, read_only=True) as con:
        assert con.execute("SELECT unexplained FROM verification.runs WHERE run_key = ?",
                           [delta.run_key]).fetchone()[0] == 0
        diff = _diff(con, delta.run_key)
    assert diff.height and set(diff["outcome"]) == {"match"}, diff.filter(diff["outcome"] != "match")
    return delta.run_key


def test_compact_deltas_keep_every_fact_in_exactly_one_place(tmp_path):
    """A delta with a new fact of a work order it does not send again, then a delta that sends that work
    order again: after each, every fact is in exactly one place of the account and the read-back is clean."""
    bundle = _generate(tmp_path)
    with migrated_through_dagster(bundle, tmp_path / "data", record_plan="compact") as m:
        assert m.second.success
        first = _where_each_fact_is(m.sandbox, m)
        assert first and all(len(v) == 1 for v in first.values())

        # delta 1: the generated delta plus a new status change of a work order it does not send
        d1 = tmp_path / "delta1"
        assert cli_main(["generate", "--delta-from", str(bundle), "--seed", "12", "--out", str(d1),
                         "--no-mess-log"]) == 0
        _, base_wos, _ = read_csv(bundle, "work_orders.csv")
        _, d1_wos, _ = read_csv(d1, "work_orders.csv")
        header, d1_log, enc = read_csv(d1, "status_log.csv")
        _, base_log, _ = read_csv(bundle, "status_log.csv")
        sent = {r["WO Number"] for r in d1_wos}
        quiet = next(r for r in base_wos if r["WO Number"] not in sent)
        wo = quiet["WO Number"]
        template = next(r for r in base_log if r["WO Number"] == wo)
        new_id = "SLX00000001"
        d1_log.append(dict(template, **{"Log ID": new_id, "Comment": "Called the requester back"}))
        write_csv(d1, "status_log.csv", header, d1_log, enc)
        resign(d1, rows={"status_log.csv": len(d1_log)})
        _run_delta(m, d1)
        after_one = _where_each_fact_is(m.sandbox, m)
        assert after_one[f"status_log:{new_id}"][0].endswith("Novo Timeline")  # the deal's field, not a note
        assert {f: p for f, p in after_one.items() if len(p) > 1} == {}
        assert set(first) <= set(after_one)

        # delta 2: the same delta again under a new export id, now also sending that work order
        d2 = tmp_path / "delta2"
        import shutil

        shutil.copytree(d1, d2)
        wo_header, d2_wos, wo_enc = read_csv(d2, "work_orders.csv")
        d2_wos.append(quiet)
        write_csv(d2, "work_orders.csv", wo_header, d2_wos, wo_enc)
        manifest = json.loads((d2 / "manifest.json").read_text(encoding="utf-8"))
        resign(d2, rows={"work_orders.csv": len(d2_wos)}, export_id=manifest["export_id"] + "-2")
        _run_delta(m, d2)
        after_two = _where_each_fact_is(m.sandbox, m)
        assert {f: p for f, p in after_two.items() if len(p) > 1} == {}
        assert set(after_two) == set(after_one)
