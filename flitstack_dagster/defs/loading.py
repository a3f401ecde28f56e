"""Loading: one asset per Pipedrive object, in FK order; materializing them moves the records.

Asset dependencies are the foreign keys: deals wait for organizations and persons, so Dagster never
starts a deal before its organization exists.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.loading.run import SHAPED_TABLE, load_shaped
from flitstack_dagster.runs import get_run

GROUP = "pipedrive_load"

# load asset -> (entity, the load assets it references)
LOADS = {
    "loaded_organizations": ("organization", ["pipedrive_schema"]),
    "loaded_org_relationships": ("org_relationship", ["loaded_organizations"]),
    "loaded_persons": ("person", ["loaded_organizations"]),
    "loaded_deals": ("deal", ["loaded_organizations", "loaded_persons"]),
    "loaded_activities": ("activity", ["loaded_deals"]),
    "loaded_notes": ("note", ["loaded_deals"]),
    "loaded_files": ("file", ["loaded_deals"]),
}


def _load_asset(name: str, entity: str, refs: list[str]) -> dg.AssetsDefinition:
    table = SHAPED_TABLE[entity]

    @dg.asset(
        name=name, group_name=GROUP, kinds={"pipedrive", "duckdb"}, partitions_def=migration_runs,
        deps=[table, *refs], pool="pipedrive",
        description=f"`{table}` sent to Pipedrive: new records created, changed ones updated (only the changed "
        "fields), unchanged ones skipped; the id map and audit log are written as each record lands.",
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource, pipedrive: PipedriveResource):
        run_key = context.partition_key

        def progress(r):
            rate = r.done / r.seconds if r.seconds else 0
            eta = (r.total - r.done) / rate if rate else 0
            context.log.info(f"{name}: {r.done:,}/{r.total:,} records, {rate:.1f}/s, {r.tokens:,} tokens, ETA {eta:.0f} s")

        with duckdb.get_connection() as con, pipedrive.client() as client:
            run = get_run(con, run_key)
            result = load_shaped(con, client, run_key, entity, bundle_root=run.bundle_path, progress=progress)
        meta = {
            "total": result.total, "created": result.created, "updated": result.updated,
            "skipped": result.skipped, "adopted": result.adopted, "set_aside": len(result.set_aside),
            "tokens_spent": result.tokens, "seconds": round(result.seconds, 1),
        }
        if result.stopped:
            raise dg.Failure(
                description=f"{name} stopped after {result.done:,}/{result.total:,} records: {result.stopped}. "
                "Everything loaded so far is recorded; re-materialize the partition after the budget resets.",
                metadata=meta,
            )
        return dg.MaterializeResult(metadata=meta)

    return _asset


load_assets = [_load_asset(name, entity, refs) for name, (entity, refs) in LOADS.items()]
