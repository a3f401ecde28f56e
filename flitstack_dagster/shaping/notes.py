"""Status changes, long descriptions, activity-log notes, PM history and inventory -> Pipedrive notes
(pd_notes). Every body is HTML: Novo text is escaped (`<script>` arrives as text), newlines become
`<br>`. `add_time` (settable on v1 notes) carries the original moment.

- status_change (`status_log:<Log ID>`): on the deal; add_time = Changed At; "Status changed from
  X to Y by <who>" + comment. Orphans (work order not migrated) are set aside.
- description (`work_order_description:<WO>`): a description longer than the deal's text field,
  as the deal's first note (built in deals.py, `description_notes`).
- log_note (`note:<Note ID>`, an entry type the approved entry-type map keeps as a note, `Note` by
  default): on the deal, else the asset's organization; add_time = Logged At; internal entries say so.
- pm_history (`pm_history:<PM Event ID>`): on the PM's asset organization; add_time = Completed
  Date; due date, result, meter reading, who, notes.
- inventory (`asset_parts:<Asset ID>`): one note per equipment organization using parts: a table
  of part number, description, unit cost, on hand, reorder point (inventory management itself is
  not migrated).
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from flitstack_dagster.mapping.model import FOLDS, Mapping
from flitstack_dagster.shaping.activities import entry_type, internal_line, log_activity_types, log_targets
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    ShapeContext,
    Shaped,
    clean_name,
    finished,
    html_line,
    html_text,
    iso_date,
    merge,
    record_columns,
    select_rows,
    set_aside,
    split_linked,
    utc_iso,
)

BODY_COLUMNS = ["source_entity", "source_id", "origin_id", "kind", "payload", "org_ref", "deal_ref", "person_ref", "owner_id"]


def _contact_names(contacts: pl.DataFrame) -> pl.DataFrame:
    return contacts.select(
        pl.col("contact_id").alias("_cid"),
        clean_name(pl.concat_str([pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True)).alias("_who"),
    ).unique("_cid", keep="last")


def shape_status_changes(status_log, contacts, deal_ids, ctx: ShapeContext) -> Shaped:
    df = status_log.with_columns(
        sid("status_log", "log_id").alias("source_id"), sid("work_order", "wo_number").alias("deal_ref")
    ).join(_contact_names(contacts), left_on="changed_by_id", right_on="_cid", how="left", maintain_order="left")
    df, orphan = split_linked(df, in_set(pl.col("deal_ref"), deal_ids))
    head = pl.concat_str(
        [
            pl.lit("Status changed "),
            pl.when(pl.col("from_status").is_not_null()).then(pl.lit("from <b>") + html_text(pl.col("from_status")) + pl.lit("</b> ")).otherwise(pl.lit("")),
            pl.lit("to <b>"), pl.coalesce(html_text(pl.col("to_status")), pl.lit("?")), pl.lit("</b>"),
            pl.when(pl.coalesce(pl.col("_who"), pl.col("changed_by_id")).is_not_null())
            .then(pl.lit(" by ") + html_text(pl.coalesce(pl.col("_who"), pl.col("changed_by_id"))))
            .otherwise(pl.lit("")),
            pl.lit("<br>"),
        ]
    )
    frame = select_rows(
        df,
        *record_columns("status_log", "status_change",
                        {"content": head + html_line("Comment", pl.col("comment")), "add_time": utc_iso(pl.col("changed_at"))}),
        "deal_ref",
    )
    sa = set_aside(orphan, ctx, "status_log", "status_log.csv", "orphan_reference", pl.format("work order {} is not migrated", pl.col("wo_number")))
    return Shaped(frame, sa)


def shape_log_notes(notes, deal_ids, org_ids, person_ids, ctx: ShapeContext, mapping: Mapping | None = None) -> Shaped:
    # every entry the mapping does not make an activity is a note; one of another type ("Text Message")
    # is kept as a note that names its type rather than dropped
    kind = entry_type()
    df = log_targets(notes.filter(~kind.is_in(list(log_activity_types(mapping)))), deal_ids, org_ids)
    orphan = df.filter(~pl.col("_linked"))
    df = df.filter("_linked")
    content = pl.concat_str(
        [
            internal_line(mapping),
            pl.when(kind != "Note").then(pl.lit("<i>Novo entry type: ") + html_text(kind) + pl.lit("</i><br>")).otherwise(pl.lit("")),
            pl.when(pl.col("subject").is_not_null()).then(pl.lit("<b>") + html_text(pl.col("subject")) + pl.lit("</b><br>")).otherwise(pl.lit("")),
            pl.coalesce(html_text(pl.col("body")), pl.lit("")),
        ]
    )
    who = sid("contact", "logged_by_id")
    frame = select_rows(
        df,
        *record_columns("note", "log_note", {"content": content, "add_time": utc_iso(pl.col("logged_at"))}),
        "org_ref",
        "deal_ref",
        pl.when(in_set(who, person_ids)).then(who).alias("person_ref"),
    )
    sa = set_aside(orphan, ctx, "note", "notes.csv", "orphan_reference",
                   pl.format("neither work order {} nor asset {} is migrated", pl.col("wo_number").fill_null("-"), pl.col("asset_id").fill_null("-")))
    return Shaped(frame, sa)


def shape_pm_history(pm_history, pm_schedules, contacts, org_ids, ctx: ShapeContext) -> Shaped:
    pm = pm_schedules.select("pm_id", pl.col("pm_name").alias("_pm_name"), pl.col("asset_id").alias("_asset_id")).unique("pm_id", keep="last")
    df = (
        pm_history.join(pm, on="pm_id", how="left", maintain_order="left")
        .join(_contact_names(contacts), left_on="completed_by_id", right_on="_cid", how="left", maintain_order="left")
        .with_columns(sid("pm_history", "pm_event_id").alias("source_id"), sid("asset", "_asset_id").alias("org_ref"))
    )
    df, orphan = split_linked(df, in_set(pl.col("org_ref"), org_ids))
    content = pl.concat_str(
        [
            pl.lit("<b>PM completed: </b>") + pl.coalesce(html_text(pl.col("_pm_name")), pl.col("pm_id")) + pl.lit("<br>"),
            html_line("Due date", iso_date(pl.col("due_date"))),
            html_line("Result", pl.col("result")),
            html_line("Meter reading", pl.col("meter_reading").cast(pl.String).str.replace(r"\.0$", "")),
            html_line("Completed by", pl.coalesce(pl.col("_who"), pl.col("completed_by_id"))),
            html_line("Work order", pl.col("wo_number")),
            html_line("Notes", pl.col("notes")),
        ]
    )
    frame = select_rows(
        df,
        *record_columns("pm_history", "pm_history", {"content": content, "add_time": utc_iso(pl.col("completed_date"))}),
        "org_ref",
    )
    sa = set_aside(orphan, ctx, "pm_history", "pm_history.csv", "orphan_reference",
                   pl.format("PM {} or its asset is not migrated", pl.col("pm_id")))
    return Shaped(frame, sa)


def shape_inventory_notes(asset_parts, inventory, org_ids, ctx: ShapeContext, currency: str) -> Shaped:
    """One note per equipment organization: the table of parts it uses. Rows of asset_parts whose
    asset is not migrated are set aside (`orphan_reference`)."""
    inv = inventory.unique("part_number", keep="last").select(
        "part_number", pl.col("description").alias("_desc"), "unit_cost", "qty_on_hand", "reorder_point"
    )
    df = asset_parts.with_columns(
        sid("asset", "asset_id").alias("org_ref"),
        pl.format("asset_part:{}:{}", pl.col("asset_id"), pl.col("part_number")).alias("source_id"),
    )
    df, orphan = split_linked(df, in_set(pl.col("org_ref"), org_ids))
    df = df.join(inv, on="part_number", how="left", maintain_order="left")

    def cell(e: pl.Expr) -> pl.Expr:
        return pl.lit("<td>") + pl.coalesce(html_text(e.cast(pl.String)), pl.lit("")) + pl.lit("</td>")

    row = pl.concat_str(
        [
            pl.lit("<tr>"),
            cell(pl.col("part_number")),
            cell(pl.col("_desc")),
            cell(pl.col("qty_required").cast(pl.String).str.replace(r"\.0$", "")),
            cell(pl.col("unit_cost").cast(pl.Float64).round(2)),
            cell(pl.col("qty_on_hand").cast(pl.String).str.replace(r"\.0$", "")),
            cell(pl.col("reorder_point").cast(pl.String).str.replace(r"\.0$", "")),
            pl.lit("</tr>"),
        ]
    )
    header = (
        "<b>Parts used by this equipment (Novo inventory, for reference)</b><br><table><tr><th>Part number</th>"
        f"<th>Description</th><th>Qty required</th><th>Unit cost ({currency})</th><th>On hand</th><th>Reorder point</th></tr>"
    )
    g = (
        df.sort("asset_id", "part_number")
        .with_columns(row.alias("_row"))
        .group_by("asset_id", maintain_order=True)
        .agg(pl.col("_row").str.join(""), pl.col("org_ref").first())
    )
    frame = g.select(
        *record_columns("asset_parts", "inventory", {"content": pl.lit(header) + pl.col("_row") + pl.lit("</table>")},
                        source_id=sid("asset_parts", "asset_id"), origin_id=pl.col("org_ref")),
        "org_ref",
    )
    sa = set_aside(orphan, ctx, "asset_part", "asset_parts.csv", "orphan_reference", pl.format("asset {} is not migrated", pl.col("asset_id")))
    return Shaped(frame, sa)


def note_parts(
    status_log, notes, pm_history, pm_schedules, asset_parts, inventory, contacts,
    description_notes: pl.DataFrame, org_ids, person_ids, deal_ids, currency: str, ctx: ShapeContext,
    mapping: Mapping | None = None,
) -> Iterator[Shaped]:
    """Each kind of note finished on its own (long descriptions, status changes, activity-log notes,
    PM history, inventory), so streamed shaping holds one kind at a time."""
    if description_notes.height:
        yield finished(Shaped(description_notes), ctx)
    folded = FOLDS.get(mapping.record_plan, {}) if mapping is not None else {}  # lines instead (folding.py)
    if "status" not in folded:
        yield finished(shape_status_changes(status_log, contacts, deal_ids, ctx), ctx)
    if "log_note" in folded:  # the entries on a work order are lines of its deal; those on an asset stay notes
        notes = notes.filter(pl.col("wo_number").is_null())
    yield finished(shape_log_notes(notes, deal_ids, org_ids, person_ids, ctx, mapping), ctx)
    yield finished(shape_pm_history(pm_history, pm_schedules, contacts, org_ids, ctx), ctx)
    yield finished(shape_inventory_notes(asset_parts, inventory, org_ids, ctx, currency), ctx)


def shape_notes(
    status_log, notes, pm_history, pm_schedules, asset_parts, inventory, contacts,
    description_notes: pl.DataFrame, org_ids, person_ids, deal_ids, currency: str, ctx: ShapeContext,
) -> Shaped:
    return merge(note_parts(status_log, notes, pm_history, pm_schedules, asset_parts, inventory, contacts,
                            description_notes, org_ids, person_ids, deal_ids, currency, ctx))
