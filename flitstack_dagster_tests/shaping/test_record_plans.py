"""Record plans `balanced` and `compact` on a small hand-made run: where each fact goes, every staged
row still accounted for, and a text that would overflow a field moved whole, never cut."""

import json

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.provision import PLAN_FIELDS, field_needs
from flitstack_dagster.pipedrive.limits import LONG_TEXT_MAX_CHARS
from flitstack_dagster.shaping import checks, folding
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.run import shape_all

from .conftest import payloads, utc
from .test_run_accounting_checks import small


def plan(name: str) -> Mapping:
    return Mapping(record_plan=name)


def with_facts(comment: str = "all good") -> StagedInputs:
    i = small()
    return i.replace(
        status_log=pl.DataFrame({"log_id": ["S1", "S2"], "wo_number": ["WO-1", "WO-1"], "from_status": [None, "Open"],
                                 "to_status": ["Open", "Completed"], "changed_by_id": ["T1", "T1"],
                                 "changed_at": [utc(2026, 1, 2, 8), utc(2026, 1, 3, 9, 30)], "comment": [None, comment]}),
        parts_used=pl.DataFrame({"line_id": ["P9"], "wo_number": ["WO-1"], "part_number": ["P1"], "quantity": [2.0],
                                 "unit_cost": [3.5], "date_added": [utc(2026, 1, 2, 10)]}),
        notes=pl.DataFrame({"note_id": ["N1", "N2", "N3"], "wo_number": ["WO-1", "WO-1", None], "asset_id": [None, None, "005"],
                            "entry_type": ["Note", "Call", "Note"], "subject": ["s1", "s2", "s3"], "body": ["b1", "b2", "b3"],
                            "logged_at": [utc(2026, 1, 2, 11)] * 3}),
    )


def _kinds(df: pl.DataFrame) -> dict[str, int]:
    return dict(df.group_by("kind").len().iter_rows())


def test_balanced_folds_status_and_parts_into_one_timeline_note(ctx, owners):
    i = with_facts()
    run = shape_all(i, plan("balanced"), owners, ctx)
    notes = run.pd_notes
    timeline = notes.filter(pl.col("kind") == "timeline")
    assert timeline["source_id"].to_list() == ["work_order_timeline:WO-1"]
    assert timeline["deal_ref"].to_list() == ["work_order:WO-1"]
    p = payloads(timeline)["work_order_timeline:WO-1"]
    lines = folding.lines_in(p["content"], html_body=True)
    assert set(lines) == {"status_log:S1", "status_log:S2", "part_used:P9", "note:N1"}
    assert lines["status_log:S2"].startswith("[status_log:S2] 2026-01-03 09:30:00 UTC · Status changed · from: Open · to: Completed")
    assert "by: Tim (contact T1)" in lines["status_log:S2"] and "comment: all good" in lines["status_log:S2"]
    assert "quantity: 2" in lines["part_used:P9"] and "description: Filter" in lines["part_used:P9"]
    assert p["add_time"] == "2026-01-02T08:00:00Z"  # the earliest fact
    assert "status_change" not in _kinds(notes)
    assert "parts" not in _kinds(run.pd_activities) and _kinds(run.pd_activities)["labor"] == 1
    assert _kinds(run.pd_activities)["call"] == 1  # calls, emails and meetings stay activities
    assert notes.filter(pl.col("kind") == "log_note")["source_id"].to_list() == ["note:N3"]  # the asset's entry
    rec = {r["source_id"]: r for r in run.reconciliation.to_dicts()}
    assert rec["status_log:S1"]["outcome"] == "loaded" and rec["status_log:S1"]["targets"] == "pd_notes"
    assert rec["part_used:P9"]["targets"] == "pd_notes"
    assert "unaccounted" not in run.reconciliation["outcome"].to_list()
    assert not checks.blocking_failures(checks.run_checks(run, i, plan("balanced"), ctx.already_loaded))


def test_compact_puts_the_work_orders_facts_on_the_deal(ctx, owners):
    i = with_facts()
    run = shape_all(i, plan("compact"), owners, ctx)
    deal = payloads(run.pd_deals)["work_order:WO-1"]
    timeline = folding.lines_in(deal["Novo Timeline"])
    assert list(timeline) == ["status_log:S1", "status_log:S2", "note:N1"] or set(timeline) == {
        "status_log:S1", "status_log:S2", "note:N1"}
    assert set(folding.lines_in(deal["Novo Labor"])) == {"labor:L1"}
    assert set(folding.lines_in(deal["Novo Parts"])) == {"part_used:P9"}
    assert "timeline" not in _kinds(run.pd_notes)
    assert set(_kinds(run.pd_activities)) == {"call", "pm_occurrence"}  # calls stay activities; no labor, no parts
    log_notes = run.pd_notes.filter(pl.col("kind") == "log_note")
    assert log_notes["source_id"].to_list() == ["note:N3"]  # the asset's entry stays a note of its organization
    rec = {r["source_id"]: r for r in run.reconciliation.to_dicts()}
    assert rec["labor:L1"]["targets"] == "pd_deals" and rec["note:N1"]["targets"] == "pd_deals"
    assert rec["labor:L2"]["reason_code"] == "orphan_reference"  # its work order was set aside, as before
    assert "unaccounted" not in run.reconciliation["outcome"].to_list()
    assert not checks.blocking_failures(checks.run_checks(run, i, plan("compact"), ctx.already_loaded))


def test_compact_needs_its_long_text_fields_and_complete_none():
    compact = {(n.entity, n.name, n.field_type) for n in field_needs(plan("compact"))}
    assert {("deal", f.name, "text") for f in PLAN_FIELDS.values()} <= compact
    assert not {n.name for n in field_needs(plan("complete"))} & {f.name for f in PLAN_FIELDS.values()}


def test_a_field_that_would_overflow_goes_whole_to_the_timeline_note(ctx, owners):
    long = "x" * (LONG_TEXT_MAX_CHARS // 2)
    i = with_facts(comment=long)
    i = i.replace(status_log=pl.concat([i.status_log, i.status_log.with_columns(
        pl.col("log_id") + "b", (pl.col("changed_at").dt.offset_by("1d")))]))
    run = shape_all(i, plan("compact"), owners, ctx)
    deal = payloads(run.pd_deals)["work_order:WO-1"]
    assert deal.get("Novo Timeline") is None and set(folding.lines_in(deal["Novo Labor"])) == {"labor:L1"}
    notes = run.pd_notes.filter(pl.col("kind") == "timeline")
    assert notes.height >= 2  # split, whole lines each
    found: dict[str, str] = {}
    for content in (json.loads(p)["content"] for p in notes["payload"]):
        assert len(content) <= LONG_TEXT_MAX_CHARS
        found |= folding.lines_in(content, html_body=True)
    assert {"status_log:S1", "status_log:S2", "status_log:S1b", "status_log:S2b", "note:N1"} == set(found)
    assert long in found["status_log:S2"]  # never cut
