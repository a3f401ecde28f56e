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
from flitstack_dagster.shaping.tally import OutputTally

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


def _rows(entity: str, df: pl.DataFrame, inv_notes: set[str]) -> pl.DataFrame:
    """One entity's staged rows: file, row number, source id, and what applies when nothing was shaped
    from a row (its by-design reason) or, for asset_parts, the inventory note it went into."""
    file = f"{entity}.json" if entity in ("workflow_rules", "form_configurations") else f"{entity}.csv"
    code, msg = BY_DESIGN.get(entity, (None, None))
    nm_code, nm_msg = pl.lit(code, dtype=pl.String), pl.lit(msg, dtype=pl.String)
    if entity == "pm_schedules":
        inactive = ~pl.col("active").fill_null(True)
        nm_code = pl.when(inactive).then(pl.lit("pm_inactive")).otherwise(pl.lit("no_occurrence_in_window"))
        nm_msg = pl.when(inactive).then(pl.lit("inactive PM schedule: nothing to schedule")).otherwise(
            pl.lit("no occurrence inside the migration window"))
    note = pl.lit(None, dtype=pl.String)
    if entity == "asset_parts":
        in_note = pl.format("asset:{}", pl.col("asset_id")).is_in(pl.Series(list(inv_notes), dtype=pl.String).implode())
        note = pl.when(in_note.fill_null(False)).then(pl.lit("pd_notes"))
    return df.select(
        pl.lit(file).alias("file"), pl.col("_row_number").cast(pl.Int64).alias("row_number"),
        source_ids(entity, df).alias("source_id"), pl.lit(entity == "asset_parts").alias("_in_note_only"),
        note.alias("_note"), nm_code.cast(pl.String).alias("_nm_code"), nm_msg.cast(pl.String).alias("_nm_msg"),
        pl.lit(code is not None or entity == "pm_schedules").alias("_nm"),
    )


def reconcile(inputs: StagedInputs, tally: OutputTally, set_aside: pl.DataFrame, ctx: ShapeContext) -> pl.DataFrame:
    """Every staged row with its outcome; one join against what was produced, one against set-asides."""
    frames = [_rows(e, inputs.frame(e), tally.inventory_orgs) for e in StagedInputs.entities() if inputs.frame(e).height]
    if not frames:
        return pl.DataFrame(schema=RECON_SCHEMA)
    sa = set_aside.select(
        "file", "source_id", pl.col("reason_code").alias("_sa_code"), pl.col("message").alias("_sa_msg")
    ).unique(["file", "source_id"], keep="first")
    r = (
        pl.concat(frames)
        .join(tally.produced_by_origin(), left_on="source_id", right_on="origin_id", how="left", maintain_order="left")
        .join(sa, on=["file", "source_id"], how="left", maintain_order="left")
        .with_columns(  # asset_parts rows are rendered in their asset's inventory note, never an origin
            pl.when("_in_note_only").then(pl.col("_note")).otherwise(pl.col("targets")).alias("targets"),
            pl.when("_in_note_only").then(pl.when(pl.col("_note").is_not_null()).then(1)).otherwise(pl.col("records")).alias("records"),
        )
    )
    outcome = (
        pl.when(pl.col("_sa_code").is_not_null()).then(pl.lit("set_aside"))
        .when(pl.col("targets").is_not_null()).then(pl.lit("loaded"))
        .when(pl.col("_nm")).then(pl.lit("not_migrated"))
        .otherwise(pl.lit("unaccounted"))
    )
    return r.with_columns(outcome.alias("outcome")).select(
        pl.lit(ctx.run_key).alias("run_key"), "file", "row_number", "source_id", "outcome",
        pl.when(pl.col("outcome") == "loaded").then(pl.col("targets")).alias("targets"),
        pl.when(pl.col("outcome") == "loaded").then(pl.col("records")).otherwise(0).alias("records"),
        pl.when(pl.col("outcome") == "set_aside").then(pl.col("_sa_code"))
        .when(pl.col("outcome") == "not_migrated").then(pl.col("_nm_code")).alias("reason_code"),
        pl.when(pl.col("outcome") == "set_aside").then(pl.col("_sa_msg"))
        .when(pl.col("outcome") == "not_migrated").then(pl.col("_nm_msg"))
        .when(pl.col("outcome") == "unaccounted").then(pl.lit("no output, set-aside or by-design rule covers this row"))
        .alias("message"),
    ).cast(RECON_SCHEMA)


def summary(recon: pl.DataFrame) -> pl.DataFrame:
    """file x outcome counts, for reports."""
    return recon.group_by("file", "outcome").len("rows").sort("file", "outcome")
