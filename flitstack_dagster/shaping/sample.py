"""Sample selection for sample runs: a stratified slice that loads on its own.

Strata (each up to `per_stratum` records, ids taken in sorted order so a sample is reproducible):
work orders of every status, assets of every hierarchy depth, PM schedules of every recurrence
style (rrule, phrase, frequency, meter), attachments of each parent type (the largest first, so an
over-the-limit file is in the sample when there is one). The primary selection is capped at
`max_records` (default 300).

Then the FK closure, so nothing in the sample points outside it: a work order's labor, parts,
status log, activity-log entries and attachments come with it, as do its account, asset (with all
its ancestors up to the root), requester, technician and PM schedule; an asset brings its
account, its ancestors, its activity-log entries, PM schedules, its asset_parts and their
inventory parts (as do a work order's parts lines); a PM schedule brings its asset and history; every contact referenced anywhere,
their accounts and departments come last. Departments, UDF definitions, workflow rules and forms
are kept whole (they are small configuration).
"""

from __future__ import annotations

import polars as pl

from flitstack_dagster.shaping.activities import recurrence_style
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.org_relationships import asset_hierarchy


def _ids(df: pl.DataFrame, col: str) -> pl.Series:
    return df[col].drop_nulls().cast(pl.String).unique()


def _pick(df: pl.DataFrame, by: pl.Expr, id_col: str, n: int) -> pl.Series:
    if df.height == 0:
        return pl.Series(id_col, [], dtype=pl.String)
    return (
        df.with_columns(by.alias("_stratum"))
        .sort("_stratum", id_col, nulls_last=True)
        .group_by("_stratum", maintain_order=True)
        .head(n)[id_col]
        .cast(pl.String)
    )


def _isin(col: str, ids: pl.Series) -> pl.Expr:
    return pl.col(col).cast(pl.String).is_in(ids.implode())


def select_sample(inputs: StagedInputs, per_stratum: int = 8, max_records: int = 300) -> StagedInputs:
    wo, assets, pm, att = inputs.work_orders, inputs.assets, inputs.pm_schedules, inputs.attachments
    h = asset_hierarchy(assets)

    wo_ids = _pick(wo, pl.col("status"), "wo_number", per_stratum)
    asset_ids = _pick(assets.join(h.select("asset_id", "depth"), on="asset_id", how="left"), pl.col("depth"), "asset_id", per_stratum)
    pm_ids = _pick(pm, recurrence_style(pm), "pm_id", per_stratum)
    att_ids = (
        att.sort("size", descending=True, nulls_last=True).group_by("parent_type", maintain_order=True).head(per_stratum)["attachment_id"]
        if att.height else pl.Series([], dtype=pl.String)
    )
    # cap the primary selection, keeping every stratum represented
    budget = max_records
    parts = []
    for s in (wo_ids, asset_ids, pm_ids, att_ids):
        s = s.head(max(budget, 0))
        budget -= s.len()
        parts.append(s)
    wo_ids, asset_ids, pm_ids, att_ids = parts

    sel_att = att.filter(_isin("attachment_id", att_ids))
    wo_ids = pl.concat([wo_ids, _ids(sel_att.filter(pl.col("parent_type") == "Work Order"), "parent_id")]).unique()
    asset_ids = pl.concat([asset_ids, _ids(sel_att.filter(pl.col("parent_type") == "Asset"), "parent_id")]).unique()
    # work orders -> their PM schedules; PM schedules -> their assets; work orders -> assets
    pm_ids = pl.concat([pm_ids, _ids(wo.filter(_isin("wo_number", wo_ids)), "pm_schedule_id")]).unique()
    sel_pm = pm.filter(_isin("pm_id", pm_ids))
    asset_ids = pl.concat([asset_ids, _ids(sel_pm, "asset_id"), _ids(wo.filter(_isin("wo_number", wo_ids)), "asset_id")]).unique()
    # ancestors of every selected asset (a root walk over the original parents)
    parent = assets.select(pl.col("asset_id").cast(pl.String), pl.col("parent_asset_id").cast(pl.String)).unique("asset_id", keep="last")
    frontier = asset_ids
    while frontier.len():
        up = _ids(parent.filter(_isin("asset_id", frontier)), "parent_asset_id")
        frontier = up.filter(~up.is_in(asset_ids.implode()) & up.is_in(parent["asset_id"].implode()))
        asset_ids = pl.concat([asset_ids, frontier]).unique()

    sel = {
        "work_orders": wo.filter(_isin("wo_number", wo_ids)),
        "assets": assets.filter(_isin("asset_id", asset_ids)),
        "pm_schedules": sel_pm,
    }
    sel["labor"] = inputs.labor.filter(_isin("wo_number", wo_ids))
    sel["parts_used"] = inputs.parts_used.filter(_isin("wo_number", wo_ids))
    sel["status_log"] = inputs.status_log.filter(_isin("wo_number", wo_ids))
    sel["notes"] = inputs.notes.filter(
        _isin("wo_number", wo_ids) | (pl.col("wo_number").is_null() & _isin("asset_id", asset_ids))
    )
    sel["pm_history"] = inputs.pm_history.filter(_isin("pm_id", pm_ids))
    sel["attachments"] = att.filter(
        _isin("attachment_id", att_ids)
        | ((pl.col("parent_type") == "Work Order") & _isin("parent_id", wo_ids))
        | ((pl.col("parent_type") == "Asset") & _isin("parent_id", asset_ids))
    )
    sel["asset_parts"] = inputs.asset_parts.filter(_isin("asset_id", asset_ids))
    # inventory parts named by the sampled equipment lists and by the sampled parts lines (their
    # description and unit travel in the parts activity, so the sample shapes them as the full run does)
    parts = pl.concat([_ids(sel["asset_parts"], "part_number"), _ids(sel["parts_used"], "part_number")]).unique()
    sel["inventory"] = inputs.inventory.filter(_isin("part_number", parts))

    contact_ids = pl.concat([
        _ids(sel["work_orders"], "requester_id"), _ids(sel["work_orders"], "assigned_to_id"),
        _ids(sel["labor"], "technician_id"), _ids(sel["status_log"], "changed_by_id"), _ids(sel["notes"], "logged_by_id"),
        _ids(sel["pm_schedules"], "assigned_to_id"), _ids(sel["pm_history"], "completed_by_id"),
        _ids(sel["attachments"], "uploaded_by_id"),
    ]).unique()
    sel["contacts"] = inputs.contacts.filter(_isin("contact_id", contact_ids))
    account_ids = pl.concat([
        _ids(sel["work_orders"], "account_id"), _ids(sel["assets"], "account_id"), _ids(sel["contacts"], "account_id"),
        _ids(sel["inventory"], "vendor_account_id"),
    ]).unique()
    sel["accounts"] = inputs.accounts.filter(_isin("account_id", account_ids))
    return inputs.replace(**sel)
