"""Reconciliation: every staged source row of the run, accounted for exactly once.

outcome:
- `loaded`: it became one or more records (targets lists the pd_* outputs, records counts them);
- `set_aside`: shaping set it aside (reason_code/message from the set-aside frame);
- `not_migrated`: by design (departments become option labels, inventory management, UDF
  definitions become custom fields, workflow rules, form configurations, deletions handled by the
  deletion policy, inactive PM schedules, schedules without an occurrence in the window);
- `unaccounted`: a bug — `checks.check_accounting` fails on any.
"""

from __future__ import annotations

import polars as pl

from flitstack_dagster.shaping.common import PREFIX, ShapeContext
from flitstack_dagster.shaping.inputs import StagedInputs

RECON_SCHEMA = {
    "run_key": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
    "source_id": pl.String(),
    "outcome": pl.String(),
    "targets": pl.String(),
    "records": pl.Int64(),
    "reason_code": pl.String(),
    "message": pl.String(),
}

ID_COLUMN = {
    "accounts": "account_id", "contacts": "contact_id", "assets": "asset_id", "work_orders": "wo_number",
    "labor": "labor_id", "parts_used": "line_id", "status_log": "log_id", "notes": "note_id",
    "pm_schedules": "pm_id", "pm_history": "pm_event_id", "attachments": "attachment_id",
    "inventory": "part_number", "departments": "department_id",
}
BY_DESIGN = {
    "departments": ("department_as_labels", "departments become Novo_Department__c options / organization labels"),
    "inventory": ("inventory_not_migrated", "inventory management is not migrated; parts appear in equipment notes"),
    "user_defined_fields": ("udf_definition", "UDF definitions become custom fields, their values travel on records"),
    "deleted": ("deletion_policy", "deletions are applied by the loader's deletion policy"),
    "workflow_rules": ("workflow_rules_not_migrated", "workflow rules are rebuilt in Pipedrive (rebuild reference)"),
    "form_configurations": ("forms_not_migrated", "custom form configurations are not migrated (rebuild reference)"),
}


def source_ids(entity: str, df: pl.DataFrame) -> pl.Expr:
    """The source id of each staged row of `entity` (same rule as the shaping modules)."""
    if entity in ID_COLUMN:
        return pl.lit(PREFIX[entity] + ":") + pl.col(ID_COLUMN[entity]).cast(pl.String)
    if entity == "asset_parts":
        return pl.format("asset_part:{}:{}", pl.col("asset_id"), pl.col("part_number"))
    if entity == "user_defined_fields":
        return pl.format("udf:{}:{}", pl.col("entity"), pl.col("column"))
    if entity == "deleted":
        return pl.format("deleted:{}:{}", pl.col("entity"), pl.col("id"))
    return pl.format("{}:{}", pl.lit(PREFIX.get(entity, entity)), pl.col("_row_number"))


def reconcile(inputs: StagedInputs, outputs: dict[str, pl.DataFrame], set_aside: pl.DataFrame, ctx: ShapeContext) -> pl.DataFrame:
    # origin id -> which outputs and how many records
    produced = pl.concat(
        [f.select("origin_id", pl.lit(name).alias("target")) for name, f in outputs.items() if f.height],
        how="vertical",
    ) if any(f.height for f in outputs.values()) else pl.DataFrame(schema={"origin_id": pl.String, "target": pl.String})
    # asset_parts rows are rendered in their asset's inventory note
    notes = outputs.get("pd_notes")
    inv_notes = set()
    if notes is not None and notes.height:
        inv_notes = set(notes.filter(pl.col("kind") == "inventory")["org_ref"].to_list())
    by_origin = (
        produced.filter(pl.col("origin_id").is_not_null())
        .group_by("origin_id", "target")
        .len("n")
        .sort("target")
        .group_by("origin_id")
        .agg(pl.col("target").str.join(","), pl.col("n").sum().cast(pl.Int64).alias("records"))
    )
    sa = set_aside.select(
        pl.col("file").alias("_file"), pl.col("source_id"), pl.col("reason_code").alias("_sa_code"), pl.col("message").alias("_sa_msg")
    ).unique(["_file", "source_id"], keep="first")
    out = []
    for entity in StagedInputs.entities():
        df = inputs.frame(entity)
        if df.height == 0:
            continue
        file = f"{entity}.json" if entity in BY_DESIGN and entity in ("workflow_rules", "form_configurations") else f"{entity}.csv"
        r = df.select(pl.col("_row_number").cast(pl.Int64).alias("row_number"), source_ids(entity, df).alias("source_id"))
        key = pl.col("source_id")
        if entity == "asset_parts":
            asset_org = pl.Series("_a", ("asset:" + df["asset_id"].cast(pl.String)).to_list(), dtype=pl.String)
            in_note = asset_org.is_in(pl.Series(list(inv_notes), dtype=pl.String).implode()).fill_null(False)
            r = r.with_columns(
                pl.when(in_note).then(pl.lit("pd_notes")).alias("targets"),
                pl.when(in_note).then(pl.lit(1, dtype=pl.Int64)).alias("records"),
            )
        else:
            r = r.join(by_origin.rename({"target": "targets"}), left_on="source_id", right_on="origin_id", how="left", maintain_order="left")
        r = r.join(sa.filter(pl.col("_file") == file).drop("_file"), on="source_id", how="left", maintain_order="left")
        design_code, design_msg = BY_DESIGN.get(entity, (None, None))
        extra_code = pl.lit(None, dtype=pl.String)
        extra_msg = pl.lit(None, dtype=pl.String)
        if entity == "pm_schedules":
            active = df["active"].fill_null(True)
            r = r.with_columns(pl.Series("_active", active))
            extra_code = pl.when(~pl.col("_active")).then(pl.lit("pm_inactive")).otherwise(pl.lit("no_occurrence_in_window"))
            extra_msg = pl.when(~pl.col("_active")).then(pl.lit("inactive PM schedule: nothing to schedule")).otherwise(
                pl.lit("no occurrence inside the migration window")
            )
        outcome = (
            pl.when(pl.col("_sa_code").is_not_null()).then(pl.lit("set_aside"))
            .when(pl.col("targets").is_not_null()).then(pl.lit("loaded"))
            .when(pl.lit(design_code is not None) | pl.lit(entity == "pm_schedules")).then(pl.lit("not_migrated"))
            .otherwise(pl.lit("unaccounted"))
        )
        r = r.with_columns(outcome.alias("outcome")).with_columns(
            pl.when(pl.col("outcome") == "set_aside").then(pl.col("_sa_code"))
            .when(pl.col("outcome") == "not_migrated").then(pl.lit(design_code, dtype=pl.String) if design_code else extra_code)
            .alias("reason_code"),
            pl.when(pl.col("outcome") == "set_aside").then(pl.col("_sa_msg"))
            .when(pl.col("outcome") == "not_migrated").then(pl.lit(design_msg, dtype=pl.String) if design_msg else extra_msg)
            .when(pl.col("outcome") == "unaccounted").then(pl.lit("no output, set-aside or by-design rule covers this row"))
            .alias("message"),
            pl.when(pl.col("outcome") == "loaded").then(pl.col("targets")).alias("targets"),
            pl.when(pl.col("outcome") == "loaded").then(pl.col("records")).otherwise(0).cast(pl.Int64).alias("records"),
        )
        out.append(
            r.with_columns(pl.lit(ctx.run_key).alias("run_key"), pl.lit(file).alias("file")).select(list(RECON_SCHEMA)).cast(RECON_SCHEMA)
        )
    if not out:
        return pl.DataFrame(schema=RECON_SCHEMA)
    return pl.concat(out)


def summary(recon: pl.DataFrame) -> pl.DataFrame:
    """file x outcome counts, for reports."""
    return recon.group_by("file", "outcome").len("rows").sort("file", "outcome")
