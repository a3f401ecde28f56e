"""Work orders -> Pipedrive deals (pd_deals), one deal per work order. Read top to bottom:

1. source id `work_order:<WO Number>` (leading zeros kept); kind `work_order`.
2. title = `WO-004211 · <Title>` (just the number when the title is empty); pipeline = the
   mapping's `pipeline_name`.
3. stage / status from the approved status map (`Mapping.status_map`), value by value:
   `{"stage": ..., "status": "open"|"won"|"lost"}`; `won` sets `won_time` = Date Completed (UTC);
   `lost` sets `lost_reason` (default `Cancelled in Novo`). A status the mapping leaves unmapped
   (None) — or a tenant status absent from the map and from the spec defaults — gives a null stage,
   and `checks.check_values_mapped` blocks the load until it is mapped.
4. organization (`org_ref`) = the work order's account, else its asset's organization. When the
   work order names an account/asset but neither organization exists in this run nor was loaded
   before (it was quarantined or never exported), the deal is set aside (`org_unresolved`).
   A missing account repaired by the asset raises `reference_repaired`.
5. person (`person_ref`) = the requester; a requester that is not a shaped person is dropped with a
   `reference_dropped` warning.
6. owner = the assigned technician's Pipedrive user (owner resolution), else the fallback owner
   (warning `fallback_owner` when a technician was assigned but has no user).
7. costs: `Labor_Cost__c` = Σ hours × rate over the work order's labor entries (an entry without a
   rate uses the technician's Hourly Rate), `Parts_Cost__c` = Σ quantity × unit cost over its parts,
   `Total_WO_Cost__c` = labor + parts, all monetary `{value, currency}`; `value` = total when the
   mapping's `deal_value_from_total` is on (default), with `currency`.
8. description: up to `description_field_max` characters (default 255) goes into the `Description`
   text field verbatim (a text field shows text); longer, the field stays empty and the text
   becomes the deal's first note (see `description_notes`, HTML-escaped there).
9. original dates the API cannot backdate on deals are kept in custom date fields: `Date Requested`
   and `Date Completed` (calendar date in the tenant's zone), `Due Date`.
10. `Novo_Priority__c` (value map `work_orders.Priority`; empty stays empty), `Request Type`
    (value map `work_orders.Request Type`), `Novo WO Number`, `Asset` (organization field:
    `{"$ref": "asset:<id>"}`), `Novo Source ID`, plus every other mapped column and UDF.
"""

from __future__ import annotations

import polars as pl

from flitstack_dagster.mapping.model import Mapping, StatusTarget
from flitstack_dagster.mapping.standard import DEFAULT_LOST_REASON, STANDARD_STATUS
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    WARNING_SCHEMA,
    Owners,
    ShapeContext,
    Shaped,
    clean_name,
    concat,
    dropped_reference,
    finish,
    html_text,
    iso_date,
    map_values,
    mapped_extras,
    money,
    monetary,
    owner_lookup,
    record_columns,
    ref,
    select_rows,
    set_aside,
    target_name,
    utc_iso,
    warnings,
)
from flitstack_dagster.staging.frames import local_date
from flitstack_dagster.shaping.organizations import SOURCE_ID_FIELD

DEFAULT_STATUS_MAP = STANDARD_STATUS  # the standard stages, shared with the proposal
COST_FIELDS = {"labor": "Labor_Cost__c", "parts": "Parts_Cost__c", "total": "Total_WO_Cost__c"}
DESCRIPTION_FIELD = "Description"
FIELD_DEFAULTS = {
    "WO Number": "Novo WO Number",
    "Priority": "Novo_Priority__c",
    "Request Type": "Request Type",
    "Date Requested": "Date Requested",
    "Due Date": "Due Date",
    "Date Completed": "Date Completed",
    "Asset ID": "Asset",
}


def effective_status_map(mapping: Mapping, statuses: list[str]) -> dict[str, StatusTarget | None]:
    """Status -> target for every status seen: the mapping's entry, else the spec default, else None."""
    out: dict[str, StatusTarget | None] = {}
    for s in statuses:
        if s in mapping.status_map:
            out[s] = mapping.status_map[s]
        else:
            out[s] = DEFAULT_STATUS_MAP.get(s)
    return out


def status_frame(mapping: Mapping, statuses: list[str]) -> pl.DataFrame:
    m = effective_status_map(mapping, statuses)
    return pl.DataFrame(
        {
            "status": list(m),
            "_stage": [t.stage if t else None for t in m.values()],
            "_deal_status": [t.status if t else None for t in m.values()],
            "_lost_reason": [
                (t.lost_reason or DEFAULT_LOST_REASON) if t and t.status == "lost" else None for t in m.values()
            ],
        },
        schema={"status": pl.String, "_stage": pl.String, "_deal_status": pl.String, "_lost_reason": pl.String},
    )


def work_order_costs(labor: pl.DataFrame, parts_used: pl.DataFrame, contacts: pl.DataFrame) -> pl.DataFrame:
    """wo_number -> labor_cost, parts_cost (floats, rounded to cents; absent = 0)."""
    rates = contacts.select(pl.col("contact_id").alias("technician_id"), pl.col("hourly_rate").alias("_hr")).unique(
        "technician_id", keep="last"
    )
    lab = (
        labor.join(rates, on="technician_id", how="left")
        .with_columns(
            (pl.col("hours").cast(pl.Float64) * pl.coalesce(pl.col("rate"), pl.col("_hr")).cast(pl.Float64)).alias("_c")
        )
        .group_by("wo_number")
        .agg(pl.col("_c").sum().round(2).alias("labor_cost"))
    )
    par = (
        parts_used.with_columns((pl.col("quantity").cast(pl.Float64) * pl.col("unit_cost").cast(pl.Float64)).alias("_c"))
        .group_by("wo_number")
        .agg(pl.col("_c").sum().round(2).alias("parts_cost"))
    )
    return lab.join(par, on="wo_number", how="full", coalesce=True).with_columns(
        pl.col("labor_cost").fill_null(0.0), pl.col("parts_cost").fill_null(0.0)
    )


def _prepare(work_orders: pl.DataFrame, org_ids, person_ids) -> pl.DataFrame:
    acc = sid("account", "account_id")
    ast = sid("asset", "asset_id")
    return work_orders.with_columns(
        sid("work_order", "wo_number").alias("source_id"),
        pl.when(in_set(acc, org_ids)).then(acc).when(in_set(ast, org_ids)).then(ast).otherwise(None).alias("org_ref"),
        pl.when(in_set(ast, org_ids)).then(ast).otherwise(None).alias("_asset_ref"),
        pl.when(in_set(sid("contact", "requester_id"), person_ids))
        .then(sid("contact", "requester_id"))
        .otherwise(None)
        .alias("person_ref"),
    )


def shape_deals(
    work_orders: pl.DataFrame,
    labor: pl.DataFrame,
    parts_used: pl.DataFrame,
    contacts: pl.DataFrame,
    org_ids: set[str] | frozenset[str],
    person_ids: set[str] | frozenset[str],
    mapping: Mapping,
    owners: Owners,
    ctx: ShapeContext,
    folded: pl.DataFrame | None = None,
) -> Shaped:
    """`folded`: the record plan's long-text fields per deal (`deal_ref` + one column per field name,
    folding.field_texts), or None when the plan folds nothing onto the deal."""
    e = "work_orders"
    opts = mapping.options
    tz = ctx.timezone
    # pick-list values are matched trimmed, as the source profile (and so the approval) saw them
    work_orders = work_orders.with_columns(pl.col("status").str.strip_chars())
    statuses = work_orders["status"].drop_nulls().unique().sort().to_list()
    df = (
        _prepare(work_orders, org_ids, person_ids)
        .join(status_frame(mapping, statuses), on="status", how="left", maintain_order="left")
        .join(work_order_costs(labor, parts_used, contacts), on="wo_number", how="left", maintain_order="left")
        .with_columns(pl.col("labor_cost").fill_null(0.0), pl.col("parts_cost").fill_null(0.0))
        .with_columns((pl.col("labor_cost") + pl.col("parts_cost")).round(2).alias("total_cost"))
    )
    df = owner_lookup(df, "assigned_to_id", owners)
    plan_fields = [c for c in folded.columns if c != "deal_ref"] if folded is not None else []
    if plan_fields:
        df = df.join(folded.rename({f: f"_plan:{f}" for f in plan_fields}), left_on="source_id", right_on="deal_ref",
                     how="left", maintain_order="left")
    unresolved = df.filter(
        pl.col("org_ref").is_null() & (pl.col("account_id").is_not_null() | pl.col("asset_id").is_not_null())
    )
    df = df.filter(~(pl.col("org_ref").is_null() & (pl.col("account_id").is_not_null() | pl.col("asset_id").is_not_null())))

    title = clean_name(pl.col("title"))
    desc = pl.col("description").cast(pl.String)
    desc_fits = desc.str.len_chars() <= opts.description_field_max
    won = pl.col("_deal_status") == "won"
    fields: dict[str, pl.Expr] = {
        "title": pl.when(title.is_not_null()).then(pl.col("wo_number") + pl.lit(" · ") + title).otherwise(pl.col("wo_number")),
        "pipeline": pl.lit(opts.pipeline_name),
        "stage": pl.col("_stage"),
        "status": pl.col("_deal_status"),
        "won_time": pl.when(won).then(utc_iso(pl.col("date_completed"))).otherwise(None),
        "lost_reason": pl.col("_lost_reason"),
        "value": money(pl.col("total_cost")) if opts.deal_value_from_total else pl.lit(None, dtype=pl.Float64),
        "currency": pl.lit(opts.currency),
        COST_FIELDS["labor"]: monetary(pl.col("labor_cost"), opts.currency),
        COST_FIELDS["parts"]: monetary(pl.col("parts_cost"), opts.currency),
        COST_FIELDS["total"]: monetary(pl.col("total_cost"), opts.currency),
        SOURCE_ID_FIELD: pl.col("source_id"),
    }
    if n := target_name(mapping, e, "Description", DESCRIPTION_FIELD):
        fields[n] = pl.when(desc_fits).then(desc).otherwise(None)
    simple = {
        "WO Number": pl.col("wo_number"),
        "Priority": map_values(pl.col("priority"), mapping, "work_orders.Priority"),
        "Request Type": map_values(pl.col("request_type"), mapping, "work_orders.Request Type"),
        "Date Requested": iso_date(local_date(pl.col("date_requested"), tz)),
        "Due Date": iso_date(pl.col("due_date")),
        "Date Completed": iso_date(local_date(pl.col("date_completed"), tz)),
        "Asset ID": ref(pl.col("_asset_ref")),
    }
    for col, expr in simple.items():
        if n := target_name(mapping, e, col, FIELD_DEFAULTS[col]):
            fields[n] = expr
    handled = [
        *simple, "Title", "Description", "Status", "Account ID", "Requester ID", "Assigned To ID",
    ]
    fields.update(mapped_extras(mapping, e, "deal", df, handled))
    fields.update({f: pl.col(f"_plan:{f}") for f in plan_fields})

    frame = select_rows(
        df,
        *record_columns("work_order", "work_order", fields),
        "org_ref",
        "person_ref",
        "owner_id",
    )
    warn = concat(
        [
            warnings(
                df.filter(pl.col("_fallback_owner")),
                ctx,
                "fallback_owner",
                "work_order",
                pl.format("assigned technician {} has no Pipedrive user: fallback owner", pl.col("assigned_to_id")),
            ),
            dropped_reference(df, ctx, "work_order", "requester_id", "person_ref",
                              "requester {} not found: deal loads without person"),
            warnings(
                df.filter(
                    pl.col("account_id").is_not_null() & (pl.col("org_ref") != sid("account", "account_id"))
                ),
                ctx,
                "reference_repaired",
                "work_order",
                pl.format("account {} not found: organization = its asset {}", pl.col("account_id"), pl.col("asset_id")),
            ),
            dropped_reference(df, ctx, "work_order", "asset_id", "_asset_ref", "asset {} not found: Asset field left empty"),
        ],
        WARNING_SCHEMA,
    )
    sa = set_aside(
        unresolved,
        ctx,
        "work_order",
        "work_orders.csv",
        "org_unresolved",
        pl.format(
            "organization not available (account {}, asset {}): quarantined or not exported",
            pl.col("account_id").fill_null("-"),
            pl.col("asset_id").fill_null("-"),
        ),
    )
    return Shaped(finish(frame, ctx), sa, warn)


def description_notes(work_orders: pl.DataFrame, deal_ids: set[str] | frozenset[str], mapping: Mapping, ctx: ShapeContext) -> pl.DataFrame:
    """The deal's first note for descriptions longer than the field allows (HTML-escaped).

    source id `work_order_description:<WO Number>`; add_time = Date Added (else Date Requested), so it
    is the deal's earliest note. Returns the body frame for notes (not finished).
    """
    max_len = mapping.options.description_field_max
    if target_name(mapping, "work_orders", "Description", DESCRIPTION_FIELD) is None:
        return pl.DataFrame()
    df = work_orders.with_columns(sid("work_order", "wo_number").alias("deal_ref")).filter(
        in_set(pl.col("deal_ref"), deal_ids) & (pl.col("description").str.len_chars() > max_len)
    )
    return df.select(
        *record_columns(
            "work_order",
            "description",
            {
                "content": pl.lit("<b>Description</b><br>") + html_text(pl.col("description")),
                "add_time": utc_iso(pl.coalesce(pl.col("date_added"), pl.col("date_requested"))),
            },
            source_id=sid("work_order_description", "wo_number"),
            origin_id=pl.col("deal_ref"),
        ),
        "deal_ref",
    )
