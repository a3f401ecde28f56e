"""Labor, parts, calls/emails/meetings and PM occurrences -> Pipedrive activities (pd_activities).

Pipedrive stores an activity's due date/time in UTC and cannot backdate `add_time`, so the original
moment lives in due_date/due_time (UTC) and every activity from history is `done`.

The approved mapping's rows decide what each activity carries (`mapping/activity_rows.py`): the
record row (`Labor ID`, `Line ID`, `PM ID`) names the activity type, and each detail column goes to
its activity field, into the note as a `<b>label:</b> value` line, or nowhere. The defaults:

- labor (kind `labor`, `labor:<Labor ID>`): type `Work Order Labor` (an activity type provisioning
  creates); subject `Labor: <hours> h <Labor Type>`; due date/time = Work Date + Start Time in the
  tenant's zone converted to UTC (no start time: all-day on the Work Date); duration = hours as
  HH:MM; done; owner = the technician's user (else fallback); person = the technician; deal = the
  work order; rate, labor type and notes in the (HTML-escaped) note. A labor entry whose work
  order is not a deal (nor already loaded) is set aside (`orphan_reference`).
- parts (kind `parts`, `part_used:<Line ID>`): type `Work Order Parts`; subject `Parts: <part> ×
  <qty>`; due date = Date Added; done; deal = the work order; part, description, quantity, unit and
  line cost in the note.
- calls/emails/meetings (`note:<Note ID>`, kind = the entry type lower-cased) from the activity log:
  the activity type the approved entry-type map gives (`notes.Entry Type`; without one Call/Email/
  Meeting → call/email/meeting); subject; due date/time = Logged At (UTC); done; linked to the work
  order's deal, else the asset's organization; body in the note, internal entries say so. (Entry
  types mapped to "" go to pd_notes.)
- PM occurrences (kind `pm_occurrence`, `pm_occurrence:<PM ID>:<YYYY-MM-DD>`): one `task` per
  occurrence of an active date-triggered schedule inside the migration window (recurrence.py);
  subject `PM: <PM Name>`; duration = Estimated Hours; linked to the asset's organization; owner =
  the assigned technician's user; procedure steps + the recurrence as RRULE text in the note.
  Unreadable recurrences are set aside with their text (`recurrence_unparsed`), so are schedules
  with no start (`recurrence_no_start`).
- meter-triggered PMs (kind `pm_meter`, `pm_next:<PM ID>`): one task for the Next Due date, the
  meter rule (`every N <meter>`, last reading) in the note.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl

from flitstack_dagster.mapping.activity_rows import ENTRY_TYPES, activity_type, detail_target, in_note
from flitstack_dagster.mapping.model import FOLDS, Mapping
from flitstack_dagster.shaping import recurrence as rec
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    SET_ASIDE_SCHEMA,
    Owners,
    ShapeContext,
    Shaped,
    concat,
    finished,
    html_line,
    html_text,
    iso_date,
    merge,
    owner_lookup,
    record_columns,
    select_rows,
    set_aside,
    split_linked,
    warnings,
)

# activity-log entry types that become activities (and their type) when the mapping has no entry-type map
LOG_ACTIVITY_TYPES = {"Call": "call", "Email": "email", "Meeting": "meeting"}
BODY_COLUMNS = ["source_entity", "source_id", "origin_id", "kind", "payload", "org_ref", "person_ref", "deal_ref", "owner_id"]


def _num_text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).round(4).cast(pl.String).str.replace(r"\.0$", "")


def _duration(hours: pl.Expr) -> pl.Expr:
    minutes = (hours.cast(pl.Float64) * 60).round(0).cast(pl.Int64)
    return pl.when(minutes >= 0).then(
        pl.format("{}:{}", (minutes // 60).cast(pl.String).str.zfill(2), (minutes % 60).cast(pl.String).str.zfill(2))
    )


def parse_start_time(expr: pl.Expr) -> pl.Expr:
    """`7:30 AM`, `07:30`, `14:15:09` -> Time (null when unreadable)."""
    s = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
    return pl.coalesce(
        s.str.to_time("%I:%M %p", strict=False),
        s.str.to_time("%I:%M%p", strict=False),
        s.str.to_time("%H:%M:%S", strict=False),
        s.str.to_time("%H:%M", strict=False),
    )


def _utc_due(local_day: pl.Expr, local_time: pl.Expr, tz: str) -> tuple[pl.Expr, pl.Expr]:
    """(due_date, due_time) strings in UTC for a local wall date + time; all-day when time is null."""
    ts = local_day.dt.combine(local_time).dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    utc = ts.dt.convert_time_zone("UTC")
    due_date = pl.when(local_time.is_not_null() & utc.is_not_null()).then(utc.dt.strftime("%Y-%m-%d")).otherwise(
        iso_date(local_day)
    )
    due_time = pl.when(local_time.is_not_null()).then(utc.dt.strftime("%H:%M"))
    return due_date, due_time


def with_local_due(df: pl.DataFrame, tz: str, timed: bool) -> pl.DataFrame:
    """`df` with `_due_date`/`_due_time`: `_utc_due` of Work Date + Start Time (all-day when not
    `timed`), without converting millions of rows one by one: start times are parsed once per
    distinct text, the zone's offset is looked up once per distinct work date, and only the rows of
    a day on which the offset changes go through the zone's rules (`_utc_due`)."""
    if not timed:
        return df.with_columns(iso_date(pl.col("work_date")).alias("_due_date"),
                               pl.lit(None, dtype=pl.String).alias("_due_time"))
    times = df.select("start_time").unique().with_columns(parse_start_time(pl.col("start_time")).alias("_t"))
    df = df.join(times, on="start_time", how="left", maintain_order="left", nulls_equal=True)
    days = df.select("work_date").unique().with_columns(_utc_offset(pl.col("work_date"), tz).alias("_off"))
    days = days.with_columns(  # the same offset at the next midnight: no change of the clocks that day
        (_utc_offset(pl.col("work_date") + pl.duration(days=1), tz) == pl.col("_off")).fill_null(False).alias("_steady"))
    df = df.join(days, on="work_date", how="left", maintain_order="left", nulls_equal=True)
    changing = df.filter(~pl.col("_steady")).select("work_date", "_t").unique()
    exact_date, exact_time = _utc_due(pl.col("work_date"), pl.col("_t"), tz)
    changing = changing.with_columns(exact_date.alias("_x_date"), exact_time.alias("_x_time"))
    df = df.join(changing, on=["work_date", "_t"], how="left", maintain_order="left", nulls_equal=True)
    utc = pl.col("work_date").dt.combine(pl.col("_t")) - pl.col("_off")
    steady = pl.col("_steady") & pl.col("_t").is_not_null()
    return df.with_columns(
        pl.when(steady).then(utc.dt.strftime("%Y-%m-%d")).otherwise(pl.coalesce("_x_date", iso_date(pl.col("work_date"))))
        .alias("_due_date"),
        pl.when(steady).then(utc.dt.strftime("%H:%M")).otherwise(pl.col("_x_time")).alias("_due_time"),
    ).drop("_t", "_off", "_steady", "_x_date", "_x_time")


def _utc_offset(day: pl.Expr, tz: str) -> pl.Expr:
    """The zone's UTC offset at a day's local midnight (null when that midnight does not exist)."""
    midnight = day.cast(pl.Datetime("us"))
    utc = midnight.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    return midnight - utc.dt.replace_time_zone(None)


def _ts_due(ts: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    u = ts.dt.convert_time_zone("UTC")
    return u.dt.strftime("%Y-%m-%d"), u.dt.strftime("%H:%M")


def log_activity_types(mapping: Mapping | None) -> dict[str, str]:
    """Entry type -> activity type of the activity-log entries that become activities (the rest are
    notes): the approved entry-type map, where a value mapped to "" stays a note."""
    vm = mapping.value_maps.get(ENTRY_TYPES) if mapping is not None else None
    if vm is None:
        return dict(LOG_ACTIVITY_TYPES)
    return {v: t for v, t in vm.items() if t}


def entry_type() -> pl.Expr:
    """An activity-log row's entry type as the profile saw it (a blank one is a note)."""
    return pl.col("entry_type").str.strip_chars().fill_null("Note")


def note_lines(mapping: Mapping, entity: str, lines: dict[str, tuple[str, pl.Expr]]) -> pl.Expr:
    """The note's `<b>label:</b> value` lines of the columns the mapping sends to the note."""
    parts = [html_line(label, e) for col, (label, e) in lines.items() if in_note(mapping, entity, col)]
    return pl.concat_str(parts) if parts else pl.lit("")


def _if_field(mapping: Mapping, entity: str, column: str, field: str, expr: pl.Expr) -> dict[str, pl.Expr]:
    """`{field: expr}` when the column's row targets that activity field, else nothing."""
    return {field: expr} if detail_target(mapping, entity, column) == f"activity.{field}" else {}


def _activity_payload(subject: pl.Expr, type_: pl.Expr, due: tuple[pl.Expr, pl.Expr], note: pl.Expr,
                      done: bool = True, duration: dict[str, pl.Expr] | None = None) -> dict[str, pl.Expr]:
    """What every activity carries: subject, type, due date and time (UTC), done and note, plus the
    duration where the mapping sends one there."""
    due_date, due_time = due
    return {"subject": subject, "type": type_, "due_date": due_date, "due_time": due_time,
            **(duration or {}), "done": pl.lit(done), "note": note}


def shape_labor(labor, contacts, deal_ids, person_ids, owners: Owners, ctx: ShapeContext,
                mapping: Mapping | None = None) -> Shaped:
    mapping = mapping or Mapping()
    df = labor.with_columns(
        sid("labor", "labor_id").alias("source_id"),
        sid("work_order", "wo_number").alias("deal_ref"),
        sid("contact", "technician_id").alias("_tech"),
    )
    df, orphan = split_linked(df, in_set(pl.col("deal_ref"), deal_ids))
    df = owner_lookup(df, "technician_id", owners)
    timed = detail_target(mapping, "labor", "Start Time") == "activity.due_time"
    df = with_local_due(df, ctx.timezone, timed)
    due = (pl.col("_due_date"), pl.col("_due_time"))
    note = note_lines(mapping, "labor", {
        "Rate": ("Rate", pl.col("rate").cast(pl.Float64).round(2).cast(pl.String)),
        "Hours": ("Hours", _num_text(pl.col("hours"))),
        "Labor Type": ("Labor type", pl.col("labor_type")),
        "Start Time": ("Start time (local)", pl.col("start_time")),
        "Notes": ("Notes", pl.col("notes")),
    })
    typed = in_note(mapping, "labor", "Labor Type")
    subject = pl.concat_str(
        [pl.lit("Labor: "), pl.coalesce(_num_text(pl.col("hours")), pl.lit("?")), pl.lit(" h"),
         pl.when(pl.col("labor_type").is_not_null() & pl.lit(typed)).then(pl.lit(" ") + pl.col("labor_type"))
         .otherwise(pl.lit(""))]
    )
    fields = _activity_payload(subject, pl.lit(activity_type(mapping, "labor")), due, note,
                               duration=_if_field(mapping, "labor", "Hours", "duration", _duration(pl.col("hours"))))
    frame = select_rows(
        df,
        *record_columns("labor", "labor", fields),
        pl.lit(None, dtype=pl.String).alias("org_ref"),
        pl.when(in_set(pl.col("_tech"), person_ids)).then(pl.col("_tech")).alias("person_ref"),
        "deal_ref",
        "owner_id",
    )
    sa = set_aside(orphan, ctx, "labor", "labor.csv", "orphan_reference", pl.format("work order {} is not migrated", pl.col("wo_number")))
    warn = warnings(df.filter("_fallback_owner"), ctx, "fallback_owner", "labor", pl.format("technician {} has no Pipedrive user", pl.col("technician_id")))
    return Shaped(frame, sa, warn)


def shape_parts(parts_used, inventory, deal_ids, owners: Owners, ctx: ShapeContext, currency: str,
                mapping: Mapping | None = None) -> Shaped:
    mapping = mapping or Mapping()
    inv = inventory.select("part_number", pl.col("description").alias("_desc"), pl.col("unit").alias("_unit")).unique(
        "part_number", keep="last"
    )
    df = parts_used.join(inv, on="part_number", how="left", maintain_order="left").with_columns(
        sid("part_used", "line_id").alias("source_id"), sid("work_order", "wo_number").alias("deal_ref")
    )
    df, orphan = split_linked(df, in_set(pl.col("deal_ref"), deal_ids))
    line_cost = (pl.col("quantity").cast(pl.Float64) * pl.col("unit_cost").cast(pl.Float64)).round(2)
    note = pl.concat_str(
        [
            html_line("Part", pl.col("part_number")),
            html_line("Description", pl.col("_desc")),
            html_line("Quantity", pl.concat_str([_num_text(pl.col("quantity")), pl.lit(" "), pl.col("_unit").fill_null("")]).str.strip_chars()),
            note_lines(mapping, "parts_used", {"Unit Cost": (
                f"Unit cost ({currency})", pl.col("unit_cost").cast(pl.Float64).round(2).cast(pl.String))}),
            pl.lit("") if not in_note(mapping, "parts_used", "Unit Cost")
            else html_line(f"Line cost ({currency})", line_cost.cast(pl.String)),
        ]
    )
    subject = pl.format("Parts: {} × {}", pl.col("part_number").fill_null("unlisted part"), pl.coalesce(_num_text(pl.col("quantity")), pl.lit("?")))
    fields = _activity_payload(subject, pl.lit(activity_type(mapping, "parts_used")), _ts_due(pl.col("date_added")), note)
    frame = select_rows(
        df,
        *record_columns("part_used", "parts", fields),
        "deal_ref",
        pl.lit(owners.default_owner_id, dtype=pl.Int64).alias("owner_id"),
    )
    sa = set_aside(orphan, ctx, "part_used", "parts_used.csv", "orphan_reference", pl.format("work order {} is not migrated", pl.col("wo_number")))
    return Shaped(frame, sa)


def log_targets(notes: pl.DataFrame, deal_ids, org_ids) -> pl.DataFrame:
    """Activity-log rows with `source_id`, `deal_ref` / `org_ref` (the deal wins), `_linked`."""
    wo = sid("work_order", "wo_number")
    asset = sid("asset", "asset_id")
    return notes.with_columns(
        sid("note", "note_id").alias("source_id"),
        pl.when(in_set(wo, deal_ids)).then(wo).alias("deal_ref"),
        pl.when(~in_set(wo, deal_ids) & in_set(asset, org_ids)).then(asset).alias("org_ref"),
    ).with_columns((pl.col("deal_ref").is_not_null() | pl.col("org_ref").is_not_null()).alias("_linked"))


def internal_line(mapping: Mapping | None) -> pl.Expr:
    """The line saying an entry was staff-only in Novo (unless the mapping leaves `Internal` out)."""
    if mapping is not None and not in_note(mapping, "notes", "Internal"):
        return pl.lit("")
    internal = pl.col("internal").fill_null(False)
    return pl.when(internal).then(pl.lit("<b>Internal (staff-only in Novo)</b><br>")).otherwise(pl.lit(""))


def shape_log_activities(notes, deal_ids, org_ids, person_ids, owners: Owners, ctx: ShapeContext,
                         mapping: Mapping | None = None) -> Shaped:
    types = log_activity_types(mapping)
    df = log_targets(notes.filter(entry_type().is_in(list(types))), deal_ids, org_ids)
    df = df.with_columns(entry_type().replace_strict(types, return_dtype=pl.String).alias("_type"))
    orphan = df.filter(~pl.col("_linked"))
    df = owner_lookup(df.filter("_linked"), "logged_by_id", owners)
    note = pl.concat_str([internal_line(mapping), pl.coalesce(html_text(pl.col("body")), pl.lit(""))])
    fields = _activity_payload(pl.coalesce(pl.col("subject"), pl.col("entry_type")), pl.col("_type"),
                               _ts_due(pl.col("logged_at")), note)
    who = sid("contact", "logged_by_id")
    frame = select_rows(
        df,
        *record_columns("note", pl.col("entry_type").str.strip_chars().str.to_lowercase(), fields),
        "org_ref",
        pl.when(in_set(who, person_ids)).then(who).alias("person_ref"),
        "deal_ref",
        "owner_id",
    )
    sa = set_aside(orphan, ctx, "note", "notes.csv", "orphan_reference",
                   pl.format("neither work order {} nor asset {} is migrated", pl.col("wo_number").fill_null("-"), pl.col("asset_id").fill_null("-")))
    return Shaped(frame, sa)


def _procedure_html(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_not_null()).then(pl.lit("<b>Procedure:</b><br>") + html_text(expr) + pl.lit("<br>")).otherwise(pl.lit(""))


def expand_pm(pm: pl.DataFrame, ctx: ShapeContext, window_days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Date-triggered schedules -> (occurrences frame, failures frame).

    occurrences: pm_id, due_local (Date), due_date/due_time (UTC strings), rrule, style.
    failures: pm_id, reason_code, message. One Python loop per schedule: RRULE expansion is
    inherently per rule.
    """
    ws, we = rec.window(ctx.exported_at, ctx.timezone, window_days)
    occ: dict[str, list] = {k: [] for k in ("pm_id", "due_local", "due_date", "due_time", "rrule", "style")}
    fail: dict[str, list] = {"pm_id": [], "reason_code": [], "message": []}
    cache: dict[tuple, tuple] = {}
    for pm_id, rule, freq, every, start, end, nxt in pm.select(
        "pm_id", "recurrence_rule", "frequency", "every", "start_date", "end_date", "next_due"
    ).iter_rows():
        anchor: date | None = start or nxt
        try:
            key = (rule, freq, every, anchor, end)
            if key not in cache:
                r = rec.parse_recurrence(rule, freq, every)
                if anchor is None:
                    cache[key] = (r, None, "recurrence_no_start", "PM schedule has neither Start Date nor Next Due")
                else:
                    cache[key] = (r, rec.occurrences(r, anchor, ws, we, ctx.timezone, end), None, None)
            r, found, code, msg = cache[key]
        except rec.RecurrenceError as exc:
            fail["pm_id"].append(pm_id)
            fail["reason_code"].append("recurrence_unparsed")
            fail["message"].append(str(exc))
            continue
        if code:
            fail["pm_id"].append(pm_id)
            fail["reason_code"].append(code)
            fail["message"].append(msg)
            continue
        for o in found:
            occ["pm_id"].append(pm_id)
            occ["due_local"].append(o.local_date)
            occ["due_date"].append(o.utc_date.isoformat())
            occ["due_time"].append(o.utc.strftime("%H:%M") if o.utc else None)
            occ["rrule"].append(r.rrule)
            occ["style"].append(r.style)
    occ_df = pl.DataFrame(
        occ,
        schema={"pm_id": pl.String, "due_local": pl.Date, "due_date": pl.String, "due_time": pl.String, "rrule": pl.String, "style": pl.String},
    )
    return occ_df, pl.DataFrame(fail, schema={"pm_id": pl.String, "reason_code": pl.String, "message": pl.String})


def recurrence_style(pm: pl.DataFrame) -> pl.Expr:
    """`meter` / `rrule` / `phrase` / `frequency` / `none` per schedule (for sampling and reports)."""
    rule = pl.col("recurrence_rule").str.strip_chars()
    return (
        pl.when(pl.col("trigger") == "Meter").then(pl.lit("meter"))
        .when(rule.str.to_uppercase().str.contains("FREQ=")).then(pl.lit("rrule"))
        .when(rule.is_not_null() & (rule != "")).then(pl.lit("phrase"))
        .when(pl.col("frequency").is_not_null()).then(pl.lit("frequency"))
        .otherwise(pl.lit("none"))
    )


def shape_pm(pm_schedules, org_ids, mapping: Mapping, owners: Owners, ctx: ShapeContext) -> Shaped:
    """PM schedules -> one task per occurrence in the window; meter PMs -> one task for next due."""
    window_days = mapping.options.pm_window_days
    df = pm_schedules.with_columns(
        sid("pm_schedule", "pm_id").alias("origin_id"),
        sid("asset", "asset_id").alias("_asset"),
    )
    df, orphan = split_linked(df, in_set(pl.col("_asset"), org_ids))
    orphan = orphan.with_columns(pl.col("origin_id").alias("source_id"))
    df = owner_lookup(df, "assigned_to_id", owners)
    active = df.filter(pl.col("active").fill_null(True))
    meter = active.filter(pl.col("trigger") == "Meter")
    dated = active.filter(pl.col("trigger").fill_null("Date") != "Meter")

    occ, fail = expand_pm(dated, ctx, window_days)
    base_note = pl.concat_str(
        [
            _procedure_html(pl.col("procedure")) if in_note(mapping, "pm_schedules", "Procedure") else pl.lit(""),
            note_lines(mapping, "pm_schedules",
                       {"Estimated Hours": ("Estimated hours", _num_text(pl.col("estimated_hours")))}),
        ]
    )
    pm_type = pl.lit(activity_type(mapping, "pm_schedules"))
    duration = _if_field(mapping, "pm_schedules", "Estimated Hours", "duration", _duration(pl.col("estimated_hours")))
    o = dated.join(occ, on="pm_id", how="inner")
    subject = pl.lit("PM: ") + pl.col("pm_name")
    o_fields = _activity_payload(
        subject, pm_type, (pl.col("due_date"), pl.col("due_time")),
        base_note + html_line("Recurrence (RRULE)", pl.col("rrule")) + html_line("Recurrence in Novo", pl.coalesce(pl.col("recurrence_rule"), pl.format("{} every {}", pl.col("frequency"), _num_text(pl.col("every").fill_null(1))))),
        done=False, duration=duration,
    )
    occ_frame = o.select(
        *record_columns(
            "pm_schedule", "pm_occurrence", o_fields,
            source_id=pl.format("pm_occurrence:{}:{}", pl.col("pm_id"), pl.col("due_local").dt.strftime("%Y-%m-%d")),
            origin_id=pl.col("origin_id"),
        ),
        pl.col("_asset").alias("org_ref"),
        "owner_id",
    )
    named = in_note(mapping, "pm_schedules", "Meter Name")
    unit = pl.coalesce(pl.col("meter_name") if named else pl.lit(None, dtype=pl.String), pl.lit("units"))
    m_fields = _activity_payload(
        subject, pm_type, (iso_date(pl.col("next_due")), pl.lit(None, dtype=pl.String)),
        base_note
        + note_lines(mapping, "pm_schedules", {
            "Meter Interval": ("Meter rule", pl.format("every {} {}", _num_text(pl.col("meter_interval")), unit)),
            "Last Meter Reading": ("Last meter reading", _num_text(pl.col("last_meter_reading"))),
        })
        + pl.when(pl.col("next_due").is_null()).then(pl.lit("<b>Next due:</b> unknown (meter-based)<br>")).otherwise(pl.lit("")),
        done=False, duration=duration,
    )
    meter_frame = meter.select(
        *record_columns("pm_schedule", "pm_meter", m_fields, source_id=sid("pm_next", "pm_id"),
                        origin_id=pl.col("origin_id")),
        pl.col("_asset").alias("org_ref"),
        "owner_id",
    )
    failed = dated.join(fail, on="pm_id", how="inner").with_columns(pl.col("origin_id").alias("source_id"))
    sa = concat(
        [
            set_aside(orphan, ctx, "pm_schedule", "pm_schedules.csv", "orphan_reference", pl.format("asset {} is not migrated", pl.col("asset_id").fill_null("-"))),
            *[
                set_aside(g, ctx, "pm_schedule", "pm_schedules.csv", code, pl.col("message"))
                for (code,), g in failed.group_by("reason_code")
            ],
        ],
        SET_ASIDE_SCHEMA,
    )
    warn = warnings(
        pl.concat([occ_frame.select("origin_id"), meter_frame.select("origin_id")]).unique().join(
            df.filter("_fallback_owner").select("origin_id", "assigned_to_id"), on="origin_id"
        ).rename({"origin_id": "source_id"}),
        ctx, "fallback_owner", "pm_schedule", pl.format("technician {} has no Pipedrive user", pl.col("assigned_to_id")),
    )
    return Shaped(pl.concat([occ_frame, meter_frame], how="diagonal"), sa, warn)


def activity_parts(
    labor, parts_used, notes, pm_schedules, contacts, inventory,
    org_ids, person_ids, deal_ids, mapping: Mapping, owners: Owners, ctx: ShapeContext,
) -> Iterator[Shaped]:
    """Each kind of activity finished on its own (labor, parts, activity-log entries, PM tasks), so
    streamed shaping holds one kind at a time."""
    folded = FOLDS.get(mapping.record_plan, {})  # the record plan's lines on the deal instead (folding.py)
    if "labor" not in folded:
        yield finished(shape_labor(labor, contacts, deal_ids, person_ids, owners, ctx, mapping), ctx)
    if "parts" not in folded:
        yield finished(shape_parts(parts_used, inventory, deal_ids, owners, ctx, mapping.options.currency, mapping), ctx)
    yield finished(shape_log_activities(notes, deal_ids, org_ids, person_ids, owners, ctx, mapping), ctx)
    yield finished(shape_pm(pm_schedules, org_ids, mapping, owners, ctx), ctx)


def shape_activities(
    labor, parts_used, notes, pm_schedules, contacts, inventory,
    org_ids, person_ids, deal_ids, mapping: Mapping, owners: Owners, ctx: ShapeContext,
) -> Shaped:
    return merge(activity_parts(labor, parts_used, notes, pm_schedules, contacts, inventory,
                                org_ids, person_ids, deal_ids, mapping, owners, ctx))
