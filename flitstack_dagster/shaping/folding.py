"""Record plans `balanced` and `compact`: a work order's facts that are not records of their own in
Pipedrive's model travel as lines of one text on the deal (a long-text field, or one timeline note).

Every fact becomes exactly one line, `[<source id>] <YYYY-MM-DD HH:MM:SS UTC> · <what happened>`, so
each line says which Novo row it is, when it happened and every value the row holds; read-back and
the delta find a fact again by the source id at the start of its line. A value's own line breaks are
shown as ` ⏎ ` so one fact stays one line.

- `balanced`: status changes, parts lines and activity-log notes -> one timeline note per deal
  (`work_order_timeline:<WO>`, kind `timeline`, add_time = the earliest fact's moment); labor, calls,
  emails and meetings stay activities.
- `compact`: status changes and activity-log notes -> the deal's `Novo Timeline` field, labor -> `Novo
  Labor`, parts lines -> `Novo Parts` (long text); calls, emails and meetings stay activities.

A text longer than the long-text limit is never cut: a field that would overflow stays empty and its
lines go to the timeline note instead; a note that would overflow is split into numbered notes
(`work_order_timeline:<WO>:2`, …), whole lines each.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable

import polars as pl

from flitstack_dagster.mapping.activity_rows import in_note
from flitstack_dagster.mapping.model import FOLDS, Mapping
from flitstack_dagster.mapping.provision import PLAN_FIELDS
from flitstack_dagster.pipedrive.limits import LONG_TEXT_MAX_CHARS
from flitstack_dagster.shaping.activities import entry_type, log_activity_types, parse_start_time
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.common import (
    SET_ASIDE_SCHEMA,
    ShapeContext,
    clean_name,
    concat,
    finish,
    html_text,
    record_columns,
    set_aside,
    split_linked,
    utc_iso,
)

TIMELINE_KIND = "timeline"
TIMELINE_PREFIX = "work_order_timeline"
TIMELINE_TITLE = "<b>Work order timeline (from Novo)</b><br>"
SEP = " · "
# one folded fact: its deal, its source id, when (UTC text), its line, its kind, its row in the export
LINE_COLUMNS = {"deal_ref": pl.String, "fact_id": pl.String, "at": pl.String, "line": pl.String, "slot": pl.String,
                "row_number": pl.Int64}
_KEY = re.compile(r"^\[([^\]]+)\] ")


def folds(mapping: Mapping, slot: str) -> bool:
    """Whether the approved record plan folds this kind of fact."""
    return slot in FOLDS.get(mapping.record_plan, {})


def field_of(mapping: Mapping, slot: str) -> str | None:
    """The deal field a folded fact's line goes to (None: the timeline note)."""
    where = FOLDS.get(mapping.record_plan, {}).get(slot)
    return PLAN_FIELDS[where].name if where else None


def fold_fields(mapping: Mapping) -> list[str]:
    """The deal fields this plan writes lines to."""
    return sorted({PLAN_FIELDS[w].name for w in FOLDS.get(mapping.record_plan, {}).values() if w})


# -- one line per fact ------------------------------------------------------------------------------


def _one_line(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.replace_all("\r\n", "\n", literal=True).str.replace_all("\n", " ⏎ ", literal=True)


def _part(label: str, expr: pl.Expr) -> pl.Expr:
    """`label: value` (or the empty string when there is no value), for joining with SEP."""
    v = _one_line(expr)
    return pl.when(v.is_not_null() & (v != "")).then(pl.lit(f"{label}: ") + v).otherwise(pl.lit(""))


def _num(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).round(4).cast(pl.String).str.replace(r"\.0$", "")


def _line(key: pl.Expr, at: pl.Expr, parts: list[pl.Expr]) -> pl.Expr:
    body = pl.concat_list(parts).list.eval(pl.element().filter(pl.element() != "")).list.join(SEP)
    return pl.format("[{}] {}", key, pl.coalesce(at, pl.lit("(no date)"))) + pl.lit(SEP) + body


def _stamp(ts: pl.Expr) -> pl.Expr:
    return ts.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%d %H:%M:%S UTC")


def _who(contacts: pl.DataFrame) -> pl.DataFrame:
    return contacts.select(
        pl.col("contact_id").alias("_cid"),
        clean_name(pl.concat_str([pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True)).alias("_who"),
    ).unique("_cid", keep="last")


def _person(id_col: str) -> pl.Expr:
    """`Jane Doe (contact 123)`: the name as Novo had it and the id it was recorded under."""
    name = pl.col("_who")
    cid = pl.col(id_col).cast(pl.String)
    return pl.when(cid.is_null()).then(None).when(name.is_null()).then(pl.lit("contact ") + cid) \
        .otherwise(name + pl.lit(" (contact ") + cid + pl.lit(")"))


def _lines(df: pl.DataFrame, slot: str, key: pl.Expr, at: pl.Expr, parts: list[pl.Expr]) -> pl.DataFrame:
    return df.select(
        pl.col("deal_ref"), key.alias("fact_id"), at.alias("at"), _line(key, at, parts).alias("line"),
        pl.lit(slot).alias("slot"), pl.col("_row_number").cast(pl.Int64).alias("row_number"),
    )


def status_lines(status_log: pl.DataFrame, contacts: pl.DataFrame) -> pl.DataFrame:
    df = status_log.join(_who(contacts), left_on="changed_by_id", right_on="_cid", how="left", maintain_order="left")
    return _lines(df, "status", sid("status_log", "log_id"), _stamp(pl.col("changed_at")), [
        pl.lit("Status changed"),
        _part("from", pl.col("from_status")), _part("to", pl.col("to_status")), _part("by", _person("changed_by_id")),
        _part("comment", pl.col("comment")),
    ])


def parts_lines(parts_used: pl.DataFrame, inventory: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    currency = mapping.options.currency
    inv = inventory.select("part_number", pl.col("description").alias("_desc"), pl.col("unit").alias("_unit")).unique(
        "part_number", keep="last")
    df = parts_used.join(inv, on="part_number", how="left", maintain_order="left")
    costed = in_note(mapping, "parts_used", "Unit Cost")
    unit_cost = pl.col("unit_cost").cast(pl.Float64).round(2).cast(pl.String)
    line_cost = (pl.col("quantity").cast(pl.Float64) * pl.col("unit_cost").cast(pl.Float64)).round(2).cast(pl.String)
    quantity = pl.concat_str([_num(pl.col("quantity")), pl.lit(" "), pl.col("_unit").fill_null("")]).str.strip_chars()
    return _lines(df, "parts", sid("part_used", "line_id"), _stamp(pl.col("date_added")), [
        pl.lit("Parts used"), _part("part", pl.col("part_number")), _part("description", pl.col("_desc")),
        _part("quantity", quantity),
        _part(f"unit cost ({currency})", unit_cost) if costed else pl.lit(""),
        _part(f"line cost ({currency})", line_cost) if costed else pl.lit(""),
    ])


def labor_lines(labor: pl.DataFrame, contacts: pl.DataFrame, ctx: ShapeContext) -> pl.DataFrame:
    df = labor.join(_who(contacts), left_on="technician_id", right_on="_cid", how="left", maintain_order="left")
    start = parse_start_time(pl.col("start_time"))
    local = pl.col("work_date").dt.combine(start).dt.replace_time_zone(ctx.timezone, ambiguous="earliest",
                                                                       non_existent="null")
    at = pl.when(local.is_not_null()).then(_stamp(local)).otherwise(pl.col("work_date").dt.to_string("%Y-%m-%d"))
    return _lines(df, "labor", sid("labor", "labor_id"), at, [
        pl.lit("Labor"), _part("technician", _person("technician_id")), _part("hours", _num(pl.col("hours"))),
        _part("labor type", pl.col("labor_type")),
        _part("work date", pl.col("work_date").dt.to_string("%Y-%m-%d")),
        _part("start time (local)", pl.col("start_time")),
        _part("rate", pl.col("rate").cast(pl.Float64).round(2).cast(pl.String)),
        _part("notes", pl.col("notes")),
    ])


def log_note_lines(notes: pl.DataFrame, contacts: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    """Activity-log entries the mapping keeps as notes (not calls, emails, meetings)."""
    kind = entry_type()
    df = notes.filter(~kind.is_in(list(log_activity_types(mapping)))).join(
        _who(contacts), left_on="logged_by_id", right_on="_cid", how="left", maintain_order="left")
    internal = pl.when(pl.col("internal").fill_null(False)).then(pl.lit("internal (staff-only in Novo)"))
    return _lines(df, "log_note", sid("note", "note_id"), _stamp(pl.col("logged_at")), [
        pl.lit("Activity log: ") + kind, _part("by", _person("logged_by_id")),
        internal.fill_null("") if in_note(mapping, "notes", "Internal") else pl.lit(""),
        _part("subject", pl.col("subject")), _part("body", pl.col("body")),
    ])


# -- which facts a plan folds -----------------------------------------------------------------------


_SOURCE = {  # kind of fact -> (source entity, its file, id column, source-id prefix)
    "status": ("status_log", "status_log.csv", "log_id", "status_log"),
    "parts": ("part_used", "parts_used.csv", "line_id", "part_used"),
    "labor": ("labor", "labor.csv", "labor_id", "labor"),
    "log_note": ("note", "notes.csv", "note_id", "note"),
}
_SLOT_OF = {prefix: slot for slot, (_, _, _, prefix) in _SOURCE.items()}


def folded_lines(inputs: StagedInputs, mapping: Mapping, ctx: ShapeContext) -> pl.DataFrame:
    """Every fact of a work order the plan folds, one line each (LINE_COLUMNS), whether or not its work
    order becomes a deal (`split_orphans` sets those aside once the deals are known). Reads only the
    staged tables the plan folds."""
    makers = {
        "status": ("status_log", lambda d: status_lines(d, inputs.contacts)),
        "parts": ("parts_used", lambda d: parts_lines(d, inputs.inventory, mapping)),
        "labor": ("labor", lambda d: labor_lines(d, inputs.contacts, ctx)),
        "log_note": ("notes", lambda d: log_note_lines(d, inputs.contacts, mapping)),
    }
    out = []
    for slot, (entity, make) in makers.items():
        if not folds(mapping, slot) or not (df := inputs.frame(entity)).height:
            continue
        # an activity-log entry on an asset alone stays a note of the asset's organization
        df = df.filter(pl.col("wo_number").is_not_null()).with_columns(sid("work_order", "wo_number").alias("deal_ref"))
        out.append(make(df))
    return pl.concat([f.select(list(LINE_COLUMNS)).cast(LINE_COLUMNS) for f in out]) if out \
        else pl.DataFrame(schema=LINE_COLUMNS)


def split_orphans(lines: pl.DataFrame, deal_ids, ctx: ShapeContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the lines whose work order is a deal, set-aside rows for the others), as the `complete` plan sets
    aside a fact of a work order that is not migrated."""
    kept, orphan = split_linked(lines, in_set(pl.col("deal_ref"), deal_ids))
    aside = [
        set_aside(g.rename({"fact_id": "source_id", "row_number": "_row_number"}), ctx, _SOURCE[slot][0],
                  _SOURCE[slot][1], "orphan_reference",
                  pl.format("work order {} is not migrated", pl.col("deal_ref").str.replace(r"^work_order:", "")))
        for (slot,), g in orphan.group_by("slot")
    ]
    return kept, concat(aside, SET_ASIDE_SCHEMA)


def with_prior(lines: pl.DataFrame, prior: pl.DataFrame | None, deals: pl.Series | None = None) -> pl.DataFrame:
    """A delta's lines merged into the lines already loaded for the same work orders (those with a fact
    in this run, and `deals`, the work orders of this run): a fact in this run replaces its earlier line
    (same source id), every other earlier line stays."""
    if prior is None or not prior.height:
        return lines
    touched = lines["deal_ref"].unique() if deals is None else pl.concat([lines["deal_ref"], deals.cast(pl.String)]).unique()
    keep = prior.filter(pl.col("deal_ref").is_in(touched.implode()) & ~pl.col("fact_id").is_in(lines["fact_id"].implode()))
    return pl.concat([lines, keep.select(list(LINE_COLUMNS)).cast(LINE_COLUMNS)])


# -- where the lines go -----------------------------------------------------------------------------


def in_notes(prior: pl.DataFrame | None) -> pl.Series | None:
    """The facts whose lines a timeline note already holds: they stay there, so a fact never sits both in
    a note and in a field a later run writes."""
    return None if prior is None or "in_note" not in prior.columns else prior.filter(pl.col("in_note"))["fact_id"]


def resent_deals(prior_deals: pl.DataFrame | None, lines: pl.DataFrame, run_deals: pl.Series) -> pl.DataFrame:
    """The deals a delta sends again only for their plan fields: those of work orders with a folded fact
    in this run (`lines`, before the earlier lines are merged in) that the run does not send itself, as
    they were last shaped, each with that fact as its origin. Re-sending one (one deal update) costs
    less than a note and keeps every line of the deal in its planned field."""
    if prior_deals is None or not prior_deals.height or not lines.height:
        return pl.DataFrame()
    own = lines.filter(pl.col("row_number").is_not_null()).group_by("deal_ref").agg(
        pl.col("fact_id").min().alias("_own"))
    return (prior_deals.filter(~pl.col("source_id").is_in(run_deals.cast(pl.String).implode()))
            .join(own, left_on="source_id", right_on="deal_ref", how="inner", maintain_order="left")
            .with_columns(pl.col("_own").alias("origin_id")).drop("_own"))


def with_texts(deals: pl.DataFrame, texts: pl.DataFrame, mapping: Mapping, ctx: ShapeContext) -> pl.DataFrame:
    """`deals` (as last shaped) with their plan fields set to `texts` (field_texts), finished for this run."""
    fields = fold_fields(mapping)
    by_deal = {r["deal_ref"]: r for r in texts.iter_rows(named=True)}
    payloads = []
    for sid_, payload in deals.select("source_id", "payload").iter_rows():
        body = json.loads(payload)
        body.update({f: by_deal.get(sid_, {}).get(f) for f in fields})
        payloads.append(json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    fresh = deals.drop("content_hash", "run_key", strict=False)  # hashed again for the new payload
    return finish(fresh.with_columns(pl.Series("payload", payloads, dtype=pl.String)), ctx)


def _ordered(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.sort("deal_ref", "slot", "at", "fact_id", nulls_last=True)


def field_texts(lines: pl.DataFrame, mapping: Mapping, deals: pl.Series,
                noted: pl.Series | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(deal_ref + one column per fold field with its text, the lines that go to the note instead: those
    of a field whose text would overflow it, those of a deal this run does not send, `deals` being the
    deals it sends, and those a note already holds, `noted`)."""
    fields = fold_fields(mapping)
    names = {slot: field_of(mapping, slot) for slot in FOLDS.get(mapping.record_plan, {})}
    sent = pl.col("deal_ref").is_in(deals.cast(pl.String).implode())
    if noted is not None:
        sent = sent & ~pl.col("fact_id").is_in(noted.implode())
    in_field = lines.with_columns(pl.when(sent).then(pl.col("slot").replace_strict(names, default=None,
                                                                                   return_dtype=pl.String)).alias("_field"))
    to_note = in_field.filter(pl.col("_field").is_null())
    texts = (
        _ordered(in_field.filter(pl.col("_field").is_not_null()))
        .group_by("deal_ref", "_field", maintain_order=True)
        .agg(pl.col("line").str.join("\n").alias("_text"))
    )
    over = texts.filter(pl.col("_text").str.len_chars() > LONG_TEXT_MAX_CHARS).select("deal_ref", "_field")
    moved = in_field.join(over, on=["deal_ref", "_field"], how="semi")
    texts = texts.join(over, on=["deal_ref", "_field"], how="anti")
    wide = (texts.pivot(on="_field", index="deal_ref", values="_text") if texts.height
            else pl.DataFrame(schema={"deal_ref": pl.String}))
    for f in fields:
        if f not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.String).alias(f))
    return wide.select("deal_ref", *fields), pl.concat([to_note, moved]).select(list(LINE_COLUMNS))


def _chunks(lines: pl.DataFrame) -> pl.DataFrame:
    """Each line's note number per deal: whole lines, each note's text within the long-text limit."""
    budget = LONG_TEXT_MAX_CHARS - len(TIMELINE_TITLE) - 32  # the title and the "(part n)" heading
    df = _ordered(lines).with_columns((html_text(pl.col("line")).str.len_chars() + 4).alias("_len"))
    total = df.group_by("deal_ref").agg(pl.col("_len").sum().alias("_total"))
    df = df.join(total, on="deal_ref", how="left", maintain_order="left")
    small = df.filter(pl.col("_total") <= budget).with_columns(pl.lit(1).alias("_n"))
    big = df.filter(pl.col("_total") > budget)
    numbers: list[int] = []
    for _, g in big.group_by("deal_ref", maintain_order=True):  # rare: greedy, whole lines per note
        n, used = 1, 0
        for ln in g["_len"].to_list():
            if used and used + ln > budget:
                n, used = n + 1, 0
            numbers.append(n)
            used += ln
    big = big.with_columns(pl.Series("_n", numbers, dtype=pl.Int32).cast(pl.Int32))
    return pl.concat([small.with_columns(pl.col("_n").cast(pl.Int32)), big])


def timeline_notes(lines: pl.DataFrame, ctx: ShapeContext, run_deals: pl.Series) -> pl.DataFrame:
    """One note per deal holding its lines (more, numbered, when they would overflow one), not finished.
    Its origin is the work order when this run sends it, else the first fact of this run it holds."""
    if not lines.height:
        return pl.DataFrame()
    df = _chunks(lines)
    g = df.group_by("deal_ref", "_n", maintain_order=True).agg(
        html_text(pl.col("line")).str.join("<br>").alias("_body"),
        pl.col("at").min().alias("_first"),
        pl.col("fact_id").filter(pl.col("row_number").is_not_null()).first().alias("_own"))
    count = g.group_by("deal_ref").agg(pl.col("_n").max().alias("_parts"))
    g = g.join(count, on="deal_ref", how="left", maintain_order="left")
    wo = pl.col("deal_ref").str.replace(r"^work_order:", "")
    head = pl.when(pl.col("_parts") > 1).then(pl.format("<b>Work order timeline (from Novo), part {} of {}</b><br>",
                                                          pl.col("_n"), pl.col("_parts"))).otherwise(pl.lit(TIMELINE_TITLE))
    first = pl.col("_first").str.replace(r" UTC$", "").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S",
                                                                      strict=False)
    return g.select(
        *record_columns("work_order", TIMELINE_KIND, {"content": head + pl.col("_body"), "add_time": utc_iso(first)},
                        source_id=pl.when(pl.col("_n") == 1).then(pl.lit(TIMELINE_PREFIX + ":") + wo)
                        .otherwise(pl.format("{}:{}:{}", pl.lit(TIMELINE_PREFIX), wo, pl.col("_n"))),
                        origin_id=pl.when(pl.col("deal_ref").is_in(run_deals.cast(pl.String).implode()))
                        .then(pl.col("deal_ref")).otherwise(pl.coalesce(pl.col("_own"), pl.col("deal_ref")))),
        "deal_ref",
    )


# -- reading lines back ---------------------------------------------------------------------------


def lines_in(text: str | None, html_body: bool = False) -> dict[str, str]:
    """Fact source id -> its line, in a deal field's text or (`html_body`) a timeline note's HTML as the
    reader sees it."""
    if not text:
        return {}
    plain = text
    if html_body:
        plain = re.sub(r"<\s*br\s*/?>|<\s*/?\s*(?:p|div)\b[^>]*>", "\n", text, flags=re.IGNORECASE)
        plain = html.unescape(re.sub(r"<[^>]*>", "", plain))
    out: dict[str, str] = {}
    for line in plain.splitlines():
        line = " ".join(line.replace("\xa0", " ").split())
        m = _KEY.match(line)
        if m:
            out[m.group(1)] = line
    return out


def prior_lines(hosts: Iterable[tuple[str, str | None, bool]]) -> pl.DataFrame:
    """Lines already loaded, from (deal source id, text, whether the text is a note's HTML) of the records
    last sent."""
    rows = [{"deal_ref": d, "fact_id": k, "line": v, "in_note": is_html} for d, text, is_html in hosts
            for k, v in lines_in(text, is_html).items()]
    df = pl.DataFrame(rows, schema={"deal_ref": pl.String, "fact_id": pl.String, "line": pl.String, "in_note": pl.Boolean})
    slot = pl.col("fact_id").str.extract(r"^([a-z_]+):")
    at = pl.col("line").str.extract(r"^\[[^\]]+\] (\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}:\d{2} UTC)?)")
    return df.with_columns(at.alias("at"), slot.replace_strict(_SLOT_OF, default=None, return_dtype=pl.String).alias("slot"),
                           pl.lit(None, dtype=pl.Int64).alias("row_number")).select(*LINE_COLUMNS, "in_note")


def folded_ids(lines: pl.DataFrame) -> pl.Series:
    """The source rows of this run whose facts were folded (for the reconciliation): not the lines a
    delta keeps from earlier runs."""
    return lines.filter(pl.col("row_number").is_not_null())["fact_id"]


__all__ = ["split_orphans", "TIMELINE_KIND", "TIMELINE_PREFIX", "field_texts", "fold_fields", "folded_ids",
           "folded_lines", "folds", "in_notes", "lines_in", "prior_lines", "resent_deals", "timeline_notes",
           "with_prior", "with_texts"]
