"""Shaping: the approved mapping turns staged Novo data into the exact records the loader sends.

One step shapes every Pipedrive object of the entity registry (they reference each other by source
id); each is its own asset so the UI shows counts and previews per object, and blocking checks gate
the load.
"""

from typing import NamedTuple

import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.mapping import owner_resolution, pipedrive_schema, proposed_mapping
from flitstack_dagster.defs.metadata import table, table_facts
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.entities import ENTITIES, Registry
from flitstack_dagster.loading.gate import load_gate
from flitstack_dagster.shaping.prepare import shape_run
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.pipedrive.limits import file_limit_text

GROUP = "pipedrive_shapes"
DEALS = "pd_deals"  # the run-wide checks hang on the deals asset: every load waits for it


class ShapingCheck(NamedTuple):
    name: str
    asset: str  # the asset the check judges: where the UI shows it and where a user looks
    blocking: bool
    description: str  # what a failure means, then what to do


CHECKS = [
    ShapingCheck("references_resolve", DEALS, True,
                 "Fails when a record points at a source id that is neither in this run nor already loaded (the "
                 "sample lists them). Fix the export or the mapping, or register a run that includes the parents."),
    ShapingCheck("source_ids_unique", DEALS, True,
                 "Fails when two shaped records of one object share a source id, which would load one record twice. "
                 "Check the export for duplicated ids the staging step did not catch."),
    ShapingCheck("required_fields", DEALS, True,
                 "Fails when a record lacks a field Pipedrive requires (a deal's title, a person's name, ...). "
                 "Map a column to the field in mapping/approved.yaml or fix the export."),
    ShapingCheck("values_mapped", DEALS, True,
                 "Fails when a status, priority or pick-list value has no target. Map the listed values in "
                 "mapping/approved.yaml and approve it again."),
    ShapingCheck("file_sizes", "pd_files", True,
                 f"Fails when an attachment over {file_limit_text()} has no handling. Set options.large_file_policy "
                 "in mapping/approved.yaml (flag sets it aside for manual handling)."),
    ShapingCheck("accounting_identity", DEALS, True,
                 "Fails when a source row is neither shaped, set aside with a reason, nor left out by the mapping: "
                 "a record would be lost silently. Report it as a bug with the sample."),
    ShapingCheck("ready_to_load", DEALS, True,
                 "Fails when a full run has no verified sample of the same mapping (or no waiver in "
                 "mapping/approved.yaml), or an earlier run did not reconcile. Verify a sample run first."),
    ShapingCheck("invalid_emails", "pd_persons", False,
                 "Warns about persons whose email was invalid: they load without it. Fix them in Novo for a delta."),
    ShapingCheck("hierarchy_flattened", "pd_org_relationships", False,
                 "Warns about assets deeper than two levels, linked to their level-2 ancestor. Nothing to do "
                 "unless the deeper levels matter; the asset paths stay in the organizations' fields."),
    ShapingCheck("fallback_owners", DEALS, False,
                 "Warns about records owned by the fallback owner because their Novo user has no Pipedrive user. "
                 "Add the users to Pipedrive, or map them in owners, and re-run to reassign."),
]
CHECK_ASSET = {c.name: c.asset for c in CHECKS}


def build_shape_asset(registry: Registry = ENTITIES) -> dg.AssetsDefinition:
    """One step, one `pd_*` asset per entity of the registry, each shaping check on the asset it judges."""
    objects = {e.shaped_table: e.description for e in registry}

    @dg.multi_asset(
        name="shape_pipedrive_records",
        specs=[dg.AssetSpec(name, description=desc, group_name=GROUP, kinds={"polars", "duckdb"},
                            deps=[proposed_mapping, owner_resolution, pipedrive_schema], partitions_def=migration_runs)
               for name, desc in objects.items()],
        check_specs=[dg.AssetCheckSpec(c.name, asset=c.asset, blocking=c.blocking, description=c.description)
                     for c in CHECKS],
        partitions_def=migration_runs,
        description="Shape the run's staged data into Pipedrive records with the approved mapping.",
    )
    def shape_pipedrive_records(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths):
        yield from _shape(context, duckdb, project, objects)

    return shape_pipedrive_records


def _shape(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths, objects: dict[str, str]):
    run_key = context.partition_key
    mapping = mapping_store.require_approved(project.paths)
    owners = mapping_store.load_owners(project.paths, run_key)
    with duckdb.get_connection() as con:
        shaped, results = shape_run(con, run_key, mapping, owners, project.paths.work)
        gate = load_gate(con, run_key, mapping)
        facts = {name: table_facts(con, f"shaped.{name}", shaped.height(name)) for name in objects}
    set_aside = shaped.set_aside
    for name in objects:
        preview = shaped.preview(name)
        meta = {
            **facts[name],
            "preview": table(preview.to_dicts(), columns=preview.columns, limit=5),
        }
        if name == DEALS:  # the run's set-aside records are shown once, beside its checks
            meta["set_aside"] = set_aside.height
            by_reason = set_aside.group_by("reason_code").len(name="records").sort("reason_code")
            meta["set_aside_by_reason"] = table(by_reason.to_dicts(), columns=by_reason.columns)
        yield dg.MaterializeResult(asset_key=name, metadata=meta)
    yield dg.AssetCheckResult(
        asset_key=CHECK_ASSET["ready_to_load"], check_name="ready_to_load", passed=not gate,
        description="; ".join(gate) or ("sample run: loads the stratified sample" if run_key.startswith("sample-")
                                        else "the gate is open"),
    )
    for r in results:
        yield dg.AssetCheckResult(
            asset_key=CHECK_ASSET[r.name], check_name=r.name, passed=r.passed,
            severity=dg.AssetCheckSeverity.ERROR if r.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
            description=r.message, metadata={"count": r.count, "sample": ", ".join(r.sample)},
        )


shape_pipedrive_records = build_shape_asset()
