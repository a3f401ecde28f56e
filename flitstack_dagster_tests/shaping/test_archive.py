"""The archive cutoff on a small hand-made run: which work orders it archives, every archived row in the
CSV and the HTML of its organization (hostile text neutralised), every staged row still accounted for,
and the scope document's count, list and estimate."""

import csv
import io
import json
from dataclasses import replace
from datetime import date

import polars as pl
import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.approval import archive_cutoff
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.profile import SourceProfile
from flitstack_dagster.mapping.scope import ARCHIVE_DOWNLOAD_COST, COST, estimate_requests, scope_document
from flitstack_dagster.shaping import checks
from flitstack_dagster.mapping.archive import archive_scope, listed_work_orders
from flitstack_dagster.shaping.archive import archive_id
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.run import shape_all

from .conftest import utc
from .test_run_accounting_checks import small

FORMULA = "=HYPERLINK(\"http://x\",\"y\")"
SCRIPT = "<script>alert(1)</script>"


def closed(cutoff: str | None = "2026-01-01") -> tuple[StagedInputs, Mapping]:
    """WO-1 closed in 2025 with a hostile title and a row of each kind; WO-2 closed after the cutoff;
    WO-4 closed in 2025 but with no organization to attach an archive to."""
    i = small()
    wos = i.work_orders.drop("_row_number").with_columns(
        pl.Series("date_completed", [utc(2025, 6, 1), utc(2026, 2, 1), None]), pl.lit("Ward 8").alias("udf_ward"))
    extra = pl.DataFrame({"wo_number": ["WO-4"], "title": ["no org"], "status": ["Completed"],
                          "date_completed": [utc(2025, 3, 1)]})
    return i.replace(
        work_orders=pl.concat([wos.with_columns(pl.when(pl.col("wo_number") == "WO-1").then(pl.lit(FORMULA))
                                               .otherwise(pl.col("title")).alias("title")),
                               extra.with_columns(pl.lit(None, dtype=wos.schema[c]).alias(c)
                                                  for c in wos.columns if c not in extra.columns).select(wos.columns)]),
        status_log=pl.DataFrame({"log_id": ["S1", "S2"], "wo_number": ["WO-1", "WO-2"], "to_status": ["Completed"] * 2,
                                 "comment": [SCRIPT, "ok"], "changed_at": [utc(2025, 6, 1), utc(2026, 2, 1)]}),
        parts_used=pl.DataFrame({"line_id": ["P9"], "wo_number": ["WO-1"], "part_number": ["P1"], "quantity": [-2.0]}),
        notes=pl.DataFrame({"note_id": ["N1", "N3"], "wo_number": ["WO-1", None], "asset_id": [None, "005"],
                            "entry_type": ["Call", "Note"], "subject": ["s", "t"], "logged_at": [utc(2025, 5, 1)] * 2}),
        attachments=pl.DataFrame({"attachment_id": ["F1", "F2"], "parent_type": ["Asset", "Work Order"],
                                  "parent_id": ["005", "WO-1"], "bundle_path": ["files/x.pdf", "files/y.pdf"],
                                  "size": [3.0, 5.0]}),
        user_defined_fields=pl.DataFrame({"entity": ["Work Order"], "label": ["Ward"], "column": ["UDF: Ward"],
                                          "data_type": ["Text"]}),
    ), Mapping(archive_before=date.fromisoformat(cutoff) if cutoff else None)


def _files(run) -> dict[str, dict]:
    return {r["source_id"]: r for r in run.pd_files.filter(pl.col("kind") == "archive").to_dicts()}


def test_a_work_order_already_loaded_as_a_deal_stays_a_deal(ctx, owners, tmp_path):
    """A cutoff set after a load (or a delta under it) must not move a deal's facts into an archive too."""
    i, mapping = closed()
    loaded = replace(ctx, archive_dir=tmp_path, already_loaded=ctx.already_loaded | {"work_order:WO-1"})
    run = shape_all(i, mapping, owners, loaded)
    assert not _files(run)
    assert "work_order:WO-1" in set(run.pd_deals["source_id"])


def test_a_cutoff_archives_the_work_orders_closed_before_it_with_their_rows(ctx, owners, tmp_path):
    i, mapping = closed()
    run = shape_all(i, mapping, owners, replace(ctx, archive_dir=tmp_path))
    assert set(run.pd_deals["source_id"]) == {"work_order:WO-2", "work_order:WO-4"}  # WO-3: org_unresolved
    files = _files(run)
    csv_id, html_id = (archive_id(ctx.run_key, "account:A1", f) for f in ("csv", "html"))
    assert set(files) == {csv_id, html_id}
    assert {f["org_ref"] for f in files.values()} == {"account:A1"}
    assert json.loads(files[csv_id]["payload"])["work_orders"] == ["WO-1"]
    rec = {r["source_id"]: r for r in run.reconciliation.to_dicts()}
    for s in ("work_order:WO-1", "labor:L1", "status_log:S1", "part_used:P9", "note:N1", "attachment:F2"):
        assert rec[s]["outcome"] == "loaded" and rec[s]["targets"] == "pd_files", s
    assert rec["status_log:S2"]["targets"] == "pd_notes" and rec["note:N3"]["targets"] == "pd_notes"
    # the archived work order's attachment: a file of its own, on the archive's organization
    att = run.pd_files.filter(pl.col("source_id") == "attachment:F2").to_dicts()
    assert [(f["org_ref"], f["deal_ref"], f["kind"], f["decision"]) for f in att] == [
        ("account:A1", None, "work_order", "upload")]
    assert "unaccounted" not in run.reconciliation["outcome"].to_list()
    assert not run.pd_activities.filter(pl.col("deal_ref") == "work_order:WO-1").height
    assert not checks.blocking_failures(checks.run_checks(run, i, mapping, ctx.already_loaded))

    text = (tmp_path / files[csv_id]["file_name"]).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["Source ID"] for r in rows] == ["work_order:WO-1", "status_log:S1", "labor:L1", "part_used:P9",
                                             "note:N1", "attachment:F2"]
    assert rows[0]["UDF: Ward"] == "Ward 8"  # a UDF under its header in the export
    assert rows[0]["Title"] == "'" + FORMULA and rows[0]["Date Completed"] == "2025-06-01 00:00:00 UTC"
    assert rows[1]["Comment"] == SCRIPT  # a CSV cell is text; only a formula start is neutralised
    assert rows[3]["Quantity"] == "'-2.0"
    assert listed_work_orders("csv", text) == {"work_order:WO-1"}
    page = (tmp_path / files[html_id]["file_name"]).read_text(encoding="utf-8")
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)" in page
    assert listed_work_orders("html", page) == {"work_order:WO-1"}


def test_an_archive_over_the_file_size_limit_is_split_by_work_order(ctx, owners, tmp_path):
    i, mapping = closed("2027-01-01")
    i = i.replace(work_orders=i.work_orders.with_columns(pl.lit("A1").alias("account_id")))  # WO-1, 2, 4 on A1
    whole = _files(shape_all(i, mapping, owners, replace(ctx, archive_dir=tmp_path / "whole")))
    assert len(whole) == 2 and json.loads(next(iter(whole.values()))["payload"])["work_orders"] == ["WO-1", "WO-2", "WO-4"]
    mapping.options.max_file_bytes = max(f["size"] for f in whole.values()) - 1
    run = shape_all(i, mapping, owners, replace(ctx, archive_dir=tmp_path / "parts"))
    parts = _files(run)
    assert len(parts) > 2 and all(f["size"] <= mapping.options.max_file_bytes for f in parts.values())
    per_format = {fmt: sorted(wo for f in parts.values() if f["content_type"] == f"text/{fmt}"
                              for wo in json.loads(f["payload"])["work_orders"]) for fmt in ("csv", "html")}
    assert per_format == {"csv": ["WO-1", "WO-2", "WO-4"], "html": ["WO-1", "WO-2", "WO-4"]}  # each once
    assert archive_id(ctx.run_key, "account:A1", "csv", 1) in parts and all("-part-" in f["file_name"] for f in parts.values())
    assert "unaccounted" not in run.reconciliation["outcome"].to_list()
    assert archive_scope(i, mapping, "UTC").files == len(parts)


def test_a_work_order_whose_archive_alone_is_over_the_limit_is_set_aside_not_counted_loaded(ctx, owners, tmp_path):
    i, mapping = closed()
    mapping.options.max_file_bytes = 10  # no archive fits
    run = shape_all(i, mapping, owners, replace(ctx, archive_dir=tmp_path))
    assert {f["decision"] for f in _files(run).values()} == {"flag_too_large"}
    rec = {r["source_id"]: r for r in run.reconciliation.to_dicts()}
    for s in ("work_order:WO-1", "labor:L1", "status_log:S1", "part_used:P9", "note:N1"):
        assert rec[s]["outcome"] != "loaded", s
    aside = run.set_aside.filter(pl.col("reason_code") == "file_too_large")
    assert {"work_order:WO-1", "labor:L1", "status_log:S1"} <= set(aside["source_id"])
    assert "unaccounted" not in run.reconciliation["outcome"].to_list()


def test_without_a_cutoff_nothing_is_archived(ctx, owners):
    i, mapping = closed(None)
    run = shape_all(i, mapping, owners, ctx)
    assert not _files(run) and "work_order:WO-1" in set(run.pd_deals["source_id"])


@pytest.mark.parametrize("text, expected", [("2024-03-01", date(2024, 3, 1)), ("none", None), ("", None),
                                            (None, date(2020, 1, 1))])
def test_the_approval_reads_the_cutoff(text, expected):
    assert archive_cutoff(text, date(2020, 1, 1)) == expected


def test_a_cutoff_that_is_not_a_date_is_refused_in_one_sentence():
    with pytest.raises(UserError, match=r"archive cutoff '1\.3\.2024' is not a date: write it as YYYY-MM-DD"):
        archive_cutoff("1.3.2024", None)


def test_the_scope_document_counts_lists_and_costs_the_archive():
    i, mapping = closed()
    scope = archive_scope(i, mapping, "UTC")
    assert scope.by_org == {"account:A1": ["WO-1"]} and scope.work_orders == 1 and scope.files == 2
    assert scope.rows["labor"] == 1 and scope.rows["attachments"] == 1 and scope.note_entry_types == {"Call": 1}
    profile = SourceProfile(run_key="r")
    profile.inventory.counts = {e: i.frame(e).height for e in StagedInputs.entities()}
    profile.inventory.note_entry_types = {"Call": 1, "Note": 1}
    profile.inventory.note_entry_types_on_work_orders = {"Call": 1}
    profile.inventory.attachments_by_size = {"< 1 MB": 2}
    plain = estimate_requests(profile, mapping, reserve=0.0)
    archived = estimate_requests(profile, mapping, reserve=0.0, archive=scope)
    by_entity = archived.by_entity()
    assert by_entity["deal"]["records"] == plain.by_entity()["deal"]["records"] - 1
    assert by_entity["file"]["records"] == plain.by_entity()["file"]["records"] + 2  # F2 is still uploaded
    saved = COST["deal"] + COST["activity"] * 3 + COST["note"]  # WO-1, labor, part, call, S1
    # instead: two archive files, each downloaded by the read-back; the read-back reads one note fewer and
    # two files more, one by one (2 tokens each)
    assert plain.tokens - archived.tokens == saved - 2 * COST["file"] - 2 * ARCHIVE_DOWNLOAD_COST + 2 - 2 * 2
    doc = scope_document(profile, mapping, reserve=0.0, archive=scope)
    assert "## Archive" in doc and "**1 work orders** closed before **2026-01-01**" in doc
    assert "| account:A1 | 1 | WO-1 |" in doc
    assert "archives of the 1 work orders closed before 2026-01-01" in doc
    assert "their 1 attachments are listed in the archive and each one's file is uploaded" in doc


def test_a_delta_s_rows_of_a_work_order_archived_earlier_go_to_its_organization_s_archive(ctx, owners, tmp_path):
    """A delta carrying rows of WO-1, archived by an earlier run, without WO-1 itself: the rows are archived
    on WO-1's organization in the delta's own files (listed by both), loaded into pd_files, never orphans."""
    i, mapping = closed()
    i = i.replace(work_orders=i.work_orders.filter(pl.col("wo_number") != "WO-1"))
    earlier = pl.DataFrame({"wo_number": ["WO-1"], "archive_org": ["account:A1"]})
    delta = replace(ctx, run_key="delta-t2", mode="delta", archive_dir=tmp_path, archived_earlier=earlier)
    run = shape_all(i, mapping, owners, delta)
    files = _files(run)
    csv_id, html_id = (archive_id("delta-t2", "account:A1", f) for f in ("csv", "html"))
    assert set(files) == {csv_id, html_id} and json.loads(files[csv_id]["payload"])["work_orders"] == ["WO-1"]
    rec = {r["source_id"]: r for r in run.reconciliation.to_dicts()}
    for s in ("labor:L1", "status_log:S1", "part_used:P9", "note:N1"):
        assert (rec[s]["outcome"], rec[s]["targets"]) == ("loaded", "pd_files"), s
    orphans = set(run.set_aside.filter(pl.col("reason_code") == "orphan_reference")["source_id"])
    assert orphans == {"labor:L2"}  # WO-3's: its work order is not migrated
    att = run.pd_files.filter(pl.col("source_id") == "attachment:F2").to_dicts()
    assert [(f["org_ref"], f["deal_ref"]) for f in att] == [("account:A1", None)]
    assert not checks.blocking_failures(checks.run_checks(run, i, mapping, ctx.already_loaded))
    text = (tmp_path / files[csv_id]["file_name"]).read_text(encoding="utf-8")
    assert [r["Source ID"] for r in csv.DictReader(io.StringIO(text))] == [
        "status_log:S1", "labor:L1", "part_used:P9", "note:N1", "attachment:F2"]
    page = (tmp_path / files[html_id]["file_name"]).read_text(encoding="utf-8")
    assert listed_work_orders("csv", text) == listed_work_orders("html", page) == {"work_order:WO-1"}
    assert "archived by an earlier run" in page and "&lt;script&gt;" in page
    scope = archive_scope(i, mapping, "UTC", earlier)
    assert scope.by_org == {"account:A1": ["WO-1"]} and scope.rows_only == 1 and scope.rows["labor"] == 1
    # without the earlier archive the same rows are orphans, as before
    alone = shape_all(i, mapping, owners, replace(delta, archived_earlier=None, archive_dir=tmp_path / "alone"))
    assert "labor:L1" in set(alone.set_aside.filter(pl.col("reason_code") == "orphan_reference")["source_id"])


def test_the_work_orders_archived_earlier_are_those_of_another_run_s_archive_still_in_pipedrive():
    import duckdb

    from flitstack_dagster.loading.store import DDL
    from flitstack_dagster.mapping.archive import archived_earlier

    con = duckdb.connect()
    assert archived_earlier(con, "delta-2").height == 0  # nothing loaded yet
    for statement in DDL:
        con.execute(statement)
    con.execute("CREATE SCHEMA shaped")
    con.execute("CREATE TABLE shaped.pd_files (run_key VARCHAR, source_id VARCHAR, kind VARCHAR, org_ref VARCHAR, "
                "payload VARCHAR)")
    files = [("full-1", "archive:full-1:account:A1:csv", "account:A1", ["WO-1", "WO-2"], "active", 1),
             ("full-1", "archive:full-1:account:A9:csv", "account:A9", ["WO-9"], "deleted", 2),  # rolled back
             ("delta-1", "archive:delta-1:account:A2:csv", "account:A2", ["WO-2"], "active", 3),  # moved later
             ("delta-2", "archive:delta-2:account:A3:csv", "account:A3", ["WO-3"], "active", 4)]  # this run's own
    for run, sid_, org, wos, state, pid in files:
        con.execute("INSERT INTO shaped.pd_files VALUES (?, ?, 'archive', ?, ?)", [run, sid_, org,
                                                                                json.dumps({"work_orders": wos})])
        con.execute("INSERT INTO meta.id_map VALUES ('file', ?, ?, NULL, NULL, ?, ?, ?, "
                    "TIMESTAMPTZ '2026-12-01 00:00:00+00' + to_minutes(?))", [sid_, pid, run, run, state, pid])
    con.execute("INSERT INTO shaped.pd_files VALUES ('full-1', 'attachment:F1', 'work_order', 'account:A1', '{}')")
    con.execute("INSERT INTO meta.id_map VALUES ('file', 'attachment:F1', 9, NULL, NULL, 'full-1', 'full-1', "
                "'active', now())")  # a file, not an archive
    got = archived_earlier(con, "delta-2").sort("wo_number").rows()
    assert got == [("WO-1", "account:A1"), ("WO-2", "account:A2")]
