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

from flitstack_dagster.novo.ids import source_ids
from flitstack_dagster.shaping.common import ShapeContext
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.tally import OutputTally

# one row per staged row (10 M at a million work orders): the few-valued columns are categorical
RECON_SCHEMA = {
    "run_key": pl.Categorical(),
    "file": pl.Categorical(),
    "row_number": pl.Int64(),
    "source_id": pl.String(),
    "outcome": pl.Categorical(),
    "targets": pl.Categorical(),
    "records": pl.Int64(),
    "reason_code": pl.Categorical(),
    "message": pl.String(),
}

BY_DESIGN = {
    "departments": ("department_as_labels", "departments become Novo_Department__c options / organization labels"),
    "inventory": ("inventory_not_migrated", "inventory management is not migrated; parts appear in equipment notes"),
    "user_defined_fields": ("udf_definition", "UDF definitions become custom fields, their values travel on records"),
    "deleted": ("deletion_policy", "deletions are applied by the loader's deletion policy"),
    "workflow_rules": ("workflow_rules_not_migrated", "workflow rules are rebuilt in Pipedrive (rebuild reference)"),
    "form_configurations": ("forms_not_migrated", "custom form configurations are not migrated (rebuild reference)"),
}


KEYS_SCHEMA = {"file": pl.Categorical(), "row_number": pl.Int64(), "source_id": pl.String(), "_nm_code": pl.Categorical(),
               "_nm_msg": pl.Categorical(), "_asset": pl.String()}
PM_INACTIVE = ("pm_inactive", "inactive PM schedule: nothing to schedule")
PM_NO_OCCURRENCE = ("no_occurrence_in_window", "no occurrence inside the migration window")


def _file(entity: str) -> str:
    return f"{entity}.json" if entity in ("workflow_rules", "form_configurations") else f"{entity}.csv"


def entity_keys(entity: str, df: pl.DataFrame) -> pl.DataFrame:
    code, msg = (pl.lit(v, dtype=pl.String) for v in BY_DESIGN.get(entity, (None, None)))
    if entity == "pm_schedules":  # a schedule with no occurrence: inactive, or none inside the window
        inactive = ~pl.col("active").fill_null(True)
        code = pl.when(inactive).then(pl.lit(PM_INACTIVE[0])).otherwise(pl.lit(PM_NO_OCCURRENCE[0]))
        msg = pl.when(inactive).then(pl.lit(PM_INACTIVE[1])).otherwise(pl.lit(PM_NO_OCCURRENCE[1]))
    asset = pl.format("asset:{}", pl.col("asset_id")) if entity == "asset_parts" else pl.lit(None, dtype=pl.String)
    return df.select(
        pl.lit(_file(entity)).alias("file"), pl.col("_row_number").cast(pl.Int64).alias("row_number"),
        source_ids(entity, df).alias("source_id"), code.alias("_nm_code"), msg.alias("_nm_msg"), asset.alias("_asset"),
    ).cast(KEYS_SCHEMA)


class RowKeys:
    """What the reconciliation needs of every staged row (`entity_keys`: file, row number, source id,
    the reason it is not migrated when nothing is shaped from it by design, an asset part's asset),
    taken from each staged frame just before streamed shaping releases it, so the keys of ~10 M rows
    are not held beside the staged frames they come from."""

    def __init__(self) -> None:
        self._by_entity: dict[str, pl.DataFrame] = {}

    def take(self, inputs: StagedInputs, *entities: str) -> None:
        """The keys of these entities' staged rows, unless taken already."""
        for e in entities:
            if e not in self._by_entity:
                self._by_entity[e] = entity_keys(e, inputs.frame(e))

    def frame(self, inputs: StagedInputs) -> pl.DataFrame:
        """Every staged row's keys, in entity order; the entities not taken yet are taken from `inputs`."""
        self.take(inputs, *StagedInputs.entities())
        frames = [k for e in StagedInputs.entities() if (k := self._by_entity[e]).height]
        return pl.concat(frames) if frames else pl.DataFrame(schema=KEYS_SCHEMA)


def _category(value: str) -> pl.Expr:
    """A categorical literal: an outcome built from these is not 10 M strings hashed into categories."""
    return pl.lit(value, dtype=pl.Categorical())


def reconcile(keys: pl.DataFrame, tally: OutputTally, set_aside: pl.DataFrame, ctx: ShapeContext) -> pl.DataFrame:
    """Every staged row (`row_keys`) with its outcome; one join against what was produced, one against
    set-asides."""
    if not keys.height:
        return pl.DataFrame(schema=RECON_SCHEMA)
    sa = set_aside.select(
        pl.col("file").cast(pl.Categorical), "source_id", pl.col("reason_code").alias("_sa_code"), pl.col("message").alias("_sa_msg")
    ).unique(["file", "source_id"], keep="first")
    note_orgs = pl.Series(sorted(tally.inventory_orgs), dtype=pl.String)
    in_note = pl.when(pl.col("_asset").is_in(note_orgs.implode())).then(pl.lit("pd_notes"))
    r = (  # lazy: the joined columns are never materialised side by side with the result
        keys.lazy()
        .join(tally.produced_by_origin().lazy(), left_on="source_id", right_on="origin_id", how="left", maintain_order="left")
        .join(sa.lazy(), on=["file", "source_id"], how="left", maintain_order="left")
        .with_columns(  # asset_parts rows are rendered in their asset's inventory note, never an origin
            pl.when(pl.col("_asset").is_not_null()).then(in_note).otherwise(pl.col("targets")).alias("targets"),
            pl.when(pl.col("_asset").is_not_null()).then(pl.lit(1, dtype=pl.Int64)).otherwise(pl.col("records")).alias("records"),
        )
    )
    outcome = (
        pl.when(pl.col("_sa_code").is_not_null()).then(_category("set_aside"))
        .when(pl.col("targets").is_not_null()).then(_category("loaded"))
        .when(pl.col("_nm_code").is_not_null()).then(_category("not_migrated"))
        .otherwise(_category("unaccounted"))
    )
    return r.with_columns(outcome.alias("outcome")).select(
        pl.lit(ctx.run_key).alias("run_key"), "file", "row_number", "source_id", "outcome",
        pl.when(pl.col("outcome") == "loaded").then(pl.col("targets")).alias("targets"),
        pl.when(pl.col("outcome") == "loaded").then(pl.col("records")).otherwise(0).alias("records"),
        pl.when(pl.col("outcome") == "set_aside").then(pl.col("_sa_code"))
        .when(pl.col("outcome") == "not_migrated").then(pl.col("_nm_code").cast(pl.String)).alias("reason_code"),
        pl.when(pl.col("outcome") == "set_aside").then(pl.col("_sa_msg"))
        .when(pl.col("outcome") == "not_migrated").then(pl.col("_nm_msg").cast(pl.String))
        .when(pl.col("outcome") == "unaccounted").then(pl.lit("no output, set-aside or by-design rule covers this row"))
        .alias("message"),
    ).cast(RECON_SCHEMA).collect()


def summary(recon: pl.DataFrame) -> pl.DataFrame:
    """file x outcome counts, for reports."""
    return recon.group_by("file", "outcome").len("rows").sort("file", "outcome")
