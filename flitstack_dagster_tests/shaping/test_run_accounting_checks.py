"""shape_all end to end on a small hand-made run: accounting identity, checks, sample, read_staged."""

from datetime import date

import duckdb
import polars as pl
import pytest

from flitstack_dagster.mapping.model import Mapping, StatusTarget
from flitstack_dagster.shaping import checks
from flitstack_dagster.shaping.accounting import summary
from flitstack_dagster.staging.frames import StagedInputs, read_staged
from flitstack_dagster.shaping.run import OUTPUTS, shape_all
from flitstack_dagster.shaping.sample import select_sample

from .conftest import utc


def small() -> StagedInputs:
    return StagedInputs(
        departments=pl.DataFrame({"department_id": ["D1"], "department_name": ["Utilities"], "department_type": ["Internal"]}),
        accounts=pl.DataFrame({"account_id": ["A1"], "account_name": ["City"]}),
        contacts=pl.DataFrame({"contact_id": ["T1", "R1"], "first_name": ["Tim", "Rae"], "account_id": ["A1", None], "role": ["Technician", "Requester"]}),
        assets=pl.DataFrame({"asset_id": ["001", "002", "003", "004", "005"], "asset_name": ["a", "b", "c", "d", "e"],
                             "parent_asset_id": [None, "001", "002", "003", "004"], "account_id": ["A1", None, None, None, None]}),
        work_orders=pl.DataFrame({"wo_number": ["WO-1", "WO-2", "WO-3"], "title": ["t1", "t2", "t3"], "status": ["Open", "Completed", "Open"],
                                  "account_id": ["A1", None, "GONE"], "asset_id": [None, "005", None], "requester_id": ["R1", "R1", None],
                                  "assigned_to_id": ["T1", None, None], "date_requested": [utc(2026, 1, 1)] * 3}),
        labor=pl.DataFrame({"labor_id": ["L1", "L2"], "wo_number": ["WO-1", "WO-3"], "technician_id": ["T1", "T1"], "hours": [1.0, 1.0], "rate": [10.0, 10.0]}),
        status_log=pl.DataFrame({"log_id": ["S1"], "wo_number": ["WO-2"], "to_status": ["Completed"], "changed_at": [utc(2026, 1, 2)]}),
        pm_schedules=pl.DataFrame({"pm_id": ["PM1", "PM2"], "pm_name": ["p", "q"], "asset_id": ["003", "003"], "trigger": ["Date", "Date"],
                                   "frequency": ["Weekly", "Yearly"], "every": [1.0, 1.0], "start_date": [date(2026, 1, 5), date(2026, 3, 1)], "active": [True, True]}),
        attachments=pl.DataFrame({"attachment_id": ["F1"], "parent_type": ["Asset"], "parent_id": ["005"], "bundle_path": ["files/x.pdf"], "size": [3.0]}),
        inventory=pl.DataFrame({"part_number": ["P1"], "description": ["Filter"]}),
        asset_parts=pl.DataFrame({"asset_id": ["005"], "part_number": ["P1"], "qty_required": [1.0]}),
        workflow_rules=pl.DataFrame({"json": ['{"rule_id": 1}']}),
    )


def test_shape_all_accounts_for_every_row(ctx, owners):
    i = small()
    run = shape_all(i, Mapping(), owners, ctx)
    rec = run.reconciliation
    assert rec.height == sum(i.frame(e).height for e in StagedInputs.entities())
    by = {(r["file"], r["source_id"]): r for r in rec.to_dicts()}
    assert by[("work_orders.csv", "work_order:WO-3")]["outcome"] == "set_aside"
    assert by[("work_orders.csv", "work_order:WO-3")]["reason_code"] == "org_unresolved"
    assert by[("labor.csv", "labor:L2")]["reason_code"] == "orphan_reference"  # its deal was set aside
    assert by[("assets.csv", "asset:005")]["targets"] == "pd_notes,pd_org_relationships,pd_organizations"  # + its inventory note
    assert by[("pm_schedules.csv", "pm_schedule:PM2")]["reason_code"] == "no_occurrence_in_window"
    assert by[("pm_schedules.csv", "pm_schedule:PM1")]["records"] == 12  # Mondays 2026-10-26 .. 2027-01-11
    assert by[("inventory.csv", "inventory:P1")]["outcome"] == "not_migrated"
    assert by[("asset_parts.csv", "asset_part:005:P1")]["targets"] == "pd_notes"
    assert by[("workflow_rules.json", "workflow_rule:1")]["reason_code"] == "workflow_rules_not_migrated"
    assert "unaccounted" not in rec["outcome"].to_list()
    assert summary(rec).height > 0
    results = {r.name: r for r in checks.run_checks(run, i, Mapping(), ctx.already_loaded)}
    assert not checks.blocking_failures(list(results.values())), checks.to_json(list(results.values()))
    assert results["hierarchy_flattened"].count == 2 and results["hierarchy_flattened"].severity == "WARN"
    assert set(run.outputs()) == set(OUTPUTS)
    assert all(f["run_key"].eq("full-t1").all() for f in run.outputs().values() if f.height)


def test_content_hash_stable_across_runs_and_changes_with_data(ctx, owners):
    from dataclasses import replace

    a = shape_all(small(), Mapping(), owners, ctx)
    b = shape_all(small(), Mapping(), owners, replace(ctx, run_key="delta-2"))
    assert a.pd_deals.sort("source_id")["content_hash"].to_list() == b.pd_deals.sort("source_id")["content_hash"].to_list()
    i = small()
    c = shape_all(i.replace(work_orders=i.work_orders.with_columns(pl.when(pl.col("wo_number") == "WO-1").then(pl.lit("new")).otherwise(pl.col("title")).alias("title"))), Mapping(), owners, ctx)
    ha = dict(a.pd_deals.select("source_id", "content_hash").iter_rows())
    hc = dict(c.pd_deals.select("source_id", "content_hash").iter_rows())
    assert ha["work_order:WO-1"] != hc["work_order:WO-1"] and ha["work_order:WO-2"] == hc["work_order:WO-2"]


def test_checks_fail_on_broken_runs(ctx, owners):
    i = small()
    run = shape_all(i, Mapping(), owners, ctx)
    # dangling reference
    run.pd_deals = run.pd_deals.with_columns(pl.lit("account:NOPE").alias("org_ref"))
    assert not checks.check_references(run).passed
    assert checks.check_references(run, already_loaded={"account:NOPE"}).passed
    # duplicates
    run.pd_persons = pl.concat([run.pd_persons, run.pd_persons.head(1)])
    assert not checks.check_unique_ids(run).passed
    # required field missing
    run.pd_organizations = run.pd_organizations.with_columns(pl.lit('{"name":null}').alias("payload"))
    assert not checks.check_required(run).passed
    # file over policy marked upload
    run.pd_files = run.pd_files.with_columns(pl.lit(30 * 1024 * 1024, dtype=pl.Int64).alias("size"))
    assert not checks.check_file_sizes(run, Mapping()).passed
    # accounting: a row counted twice, a record from no source row, a row that vanishes
    whole = run.reconciliation
    run.reconciliation = pl.concat([whole, whole.head(1)])
    twice = checks.check_accounting(run, i)
    assert not twice.passed and any("counted twice" in b for b in twice.sample)
    run.reconciliation = whole.filter(pl.col("source_id") != "work_order:WO-1")
    stray = checks.check_accounting(run, i)
    assert not stray.passed and "pd_deals:work_order:WO-1 has no source row" in stray.sample
    run.reconciliation = whole.slice(1)
    assert not checks.check_accounting(run, i).passed


def test_values_mapped(ctx):
    i = small()
    i = i.replace(work_orders=i.work_orders.with_columns(pl.lit("Awaiting Parts").alias("status"), pl.lit("Urgent!").alias("priority")))
    bad = checks.check_values_mapped(i, Mapping(value_maps={"work_orders.Priority": {"High": "High"}}))
    assert not bad.passed
    assert "work order status 'Awaiting Parts'" in bad.sample and "work_orders.Priority value 'Urgent!'" in bad.sample
    ok = Mapping(status_map={"Awaiting Parts": StatusTarget(stage="On Hold")}, value_maps={"work_orders.Priority": {"Urgent!": "Emergency"}})
    assert checks.check_values_mapped(i, ok).passed


def test_sample_is_stratified_and_closed(ctx, owners):
    i = small()
    s = select_sample(i, per_stratum=1)
    assert set(s.work_orders["status"].to_list()) == {"Open", "Completed"}
    assert s.assets.height == 5  # every depth, with ancestors
    assert s.pm_schedules.height == 1 and s.attachments.height == 1
    run = shape_all(s, Mapping(), owners, ctx)
    assert checks.check_references(run).passed and checks.check_accounting(run, s).passed
    assert set(s.contacts["contact_id"].to_list()) >= set(s.work_orders["requester_id"].drop_nulls().to_list())


def test_sample_brings_the_inventory_parts_its_parts_lines_name(ctx, owners):
    """Else the sample's parts activities lack the part's description and unit, and the full run
    has to rewrite every one of them."""
    i = small()
    i = i.replace(inventory=pl.DataFrame({"part_number": ["P1", "P2", "P3"], "description": ["Filter", "Belt", "Unused"]}),
                  parts_used=pl.DataFrame({"line_id": ["X1"], "wo_number": ["WO-1"], "part_number": ["P2"],
                                           "quantity": [2.0], "unit_cost": [3.0]}))
    s = select_sample(i, per_stratum=1)
    assert sorted(s.inventory["part_number"].to_list()) == ["P1", "P2"]


def test_read_staged_from_duckdb():
    con = duckdb.connect()
    con.execute("create schema staging; create schema raw")
    con.execute("create table staging.stg_work_orders(_run_key varchar, _row_number bigint, wo_number varchar, title varchar, status varchar, "
                "date_requested timestamptz, \"udf_ward\" varchar)")
    con.execute("insert into staging.stg_work_orders values ('r1', 1, '00042', 't', 'Open', '2026-01-01 00:00:00+00', 'W1'), "
                "('r2', 1, 'X', 't', 'Open', null, null)")
    i = read_staged(con, "r1")
    assert i.work_orders["wo_number"].to_list() == ["00042"]
    assert i.work_orders["udf_ward"].to_list() == ["W1"]
    assert i.work_orders.schema["date_requested"] == pl.Datetime("us", "UTC")
    assert i.accounts.height == 0 and "account_name" in i.accounts.columns


@pytest.mark.slow
def test_bench_generator_shapes_cleanly(ctx, owners):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench", Path(__file__).resolve().parents[2] / "benchmarks" / "shaping_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    i = bench.synthetic_inputs(500)
    run = shape_all(i, Mapping(), owners, ctx)
    assert not checks.blocking_failures(checks.run_checks(run, i, Mapping()))
    assert "recurrence_unparsed" in run.set_aside["reason_code"].to_list()


def test_streamed_shaping_hands_over_the_same_records_and_checks(ctx, owners):
    """With a sink every output (in parts) goes to it and the run keeps only its tally: same records,
    same reconciliation and check results as holding every frame; staged frames are released."""
    held = shape_all(small(), Mapping(), owners, ctx)
    got: dict[str, list[pl.DataFrame]] = {}
    i = small()
    values = checks.check_values_mapped(i, Mapping())
    streamed = shape_all(i, Mapping(), owners, ctx, sink=lambda name, df: got.setdefault(name, []).append(df))
    for name in OUTPUTS:
        frame = pl.concat(got[name])
        assert frame.sort("source_id").equals(held.outputs()[name].sort("source_id")), name
        assert streamed.outputs()[name].height == 0 and streamed.height(name) == frame.height
    assert streamed.reconciliation.sort("file", "row_number").equals(held.reconciliation.sort("file", "row_number"))
    assert i.labor.height == 0 and i.status_log.height == 0  # released once shaped
    summary = [(r.name, r.passed, r.count) for r in checks.run_checks(streamed, None, Mapping(), values_mapped=values)]
    assert summary == [(r.name, r.passed, r.count) for r in checks.run_checks(held, small(), Mapping())]


@pytest.mark.parametrize("ids, want", [
    ([], []),
    (["a", "b", "c"], []),
    (["a", "b", "a", "c", "b", "a"], ["a", "b"]),
    (["x"] * 3, ["x"]),
    ([None, "a", None], [None]),
])
def test_duplicated_ids_are_found_exactly(ids, want):
    from flitstack_dagster.shaping.tally import _duplicated

    got = _duplicated(pl.Series(ids, dtype=pl.String))
    assert got.dtype == pl.String
    assert sorted(got.to_list(), key=str) == sorted(want, key=str)
