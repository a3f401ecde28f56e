"""Shaping: the approved mapping turns staged Novo data into the exact records the loader sends.

One step shapes every Pipedrive object of the entity registry (they reference each other by source
id); each is its own asset so the UI shows counts and previews per object, and blocking checks gate
the load.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.mapping import owner_resolution, pipedrive_schema, proposed_mapping
from flitstack_dagster.defs.metadata import md_table
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.entities import ENTITIES, Registry
from flitstack_dagster.loading.gate import load_gate
from flitstack_dagster.shaping.prepare import shape_run
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.pipedrive.limits import file_limit_text

GROUP = "pipedrive_shapes"
CHECKED = "pd_deals"  # shaping checks hang on the deals asset, which every load waits for
CHECKS = [
    ("references_resolve", True, "Every reference resolves within the run or to a record already loaded."),
    ("source_ids_unique", True, "Source IDs are unique in every shaped object."),
    ("required_fields", True, "Every record has the fields Pipedrive requires."),
    ("values_mapped", True, "Every status, priority and pick-list value is mapped."),
    ("file_sizes", True, f"Attachments over {file_limit_text()} are flagged per the mapping's policy."),
    ("accounting_identity", True, "Every source row is loaded as something, set aside, or not migrated by design."),
    ("ready_to_load", True, "A full run needs a verified sample of the same mapping (or a waiver in "
     "mapping/approved.yaml); no run loads on top of an earlier run that did not reconcile."),
    ("invalid_emails", False, "Persons whose email was invalid (warning)."),
    ("hierarchy_flattened", False, "Assets deeper than two levels linked to their level-2 ancestor (warning)."),
    ("fallback_owners", False, "Records owned by the fallback owner (warning)."),
]


def build_shape_asset(registry: Registry = ENTITIES) -> dg.AssetsDefinition:
    """One step, one `pd_*` asset per entity of the registry, the shaping checks on `pd_deals`."""
    objects = {e.shaped_table: e.description for e in registry}

    @dg.multi_asset(
        name="shape_pipedrive_records",
        specs=[dg.AssetSpec(name, description=desc, group_name=GROUP, kinds={"polars", "duckdb"},
                            deps=[proposed_mapping, owner_resolution, pipedrive_schema], partitions_def=migration_runs)
               for name, desc in objects.items()],
        check_specs=[dg.AssetCheckSpec(n, asset=CHECKED, blocking=blocking, description=d) for n, blocking, d in CHECKS],
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
    set_aside = shaped.set_aside
    for name in objects:
        meta = {
            "dagster/row_count": shaped.height(name),
            "table": f"shaped.{name}",
            "preview": md_table(shaped.preview(name).to_dicts(), limit=5),
        }
        if name == CHECKED:  # the run's set-aside records are shown once, beside its checks
            meta["set_aside"] = set_aside.height
            meta["set_aside_by_reason"] = md_table(set_aside.group_by("reason_code").len().sort("reason_code").to_dicts())
        yield dg.MaterializeResult(asset_key=name, metadata=meta)
    yield dg.AssetCheckResult(
        asset_key=CHECKED, check_name="ready_to_load", passed=not gate,
        description="; ".join(gate) or ("sample run: loads the stratified sample" if run_key.startswith("sample-")
                                        else "the gate is open"),
    )
    for r in results:
        yield dg.AssetCheckResult(
            asset_key=CHECKED, check_name=r.name, passed=r.passed,
            severity=dg.AssetCheckSeverity.ERROR if r.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
            description=r.message, metadata={"count": r.count, "sample": ", ".join(r.sample)},
        )


shape_pipedrive_records = build_shape_asset()
