"""Loading: one asset per entity of the registry, in FK order; materializing them moves the records.

Asset dependencies are the foreign keys (`Entity.references`): deals wait for organizations and
persons, so Dagster never starts a deal before its organization exists.
"""

from collections import Counter
from datetime import datetime
from typing import Optional

import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.defs.metadata import table
from flitstack_dagster.entities import ENTITIES, Entity, Registry
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.loading.deletions import REPORT_COLUMNS, apply_deletions, write_report
from flitstack_dagster.loading.ledger import Ledger, metered
from flitstack_dagster.loading.loader import eta
from flitstack_dagster.loading.relaunch import RESETS_AT_KEY, STOPPED_BY_BUDGET, STOPPED_BY_KEY
from flitstack_dagster.loading.run import load_shaped
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent
from flitstack_dagster.novo.runs import bundle_root, get_run

GROUP = "pipedrive_load"
SCHEMA = "pipedrive_schema"  # what an entity that references nothing waits for: its custom fields


def load_deps(entity: Entity, registry: Registry = ENTITIES) -> list[str]:
    """The load assets of the entities it references, or the provisioned schema when it references none."""
    return [registry[p].load_asset for p in entity.parents] or [SCHEMA]


def budget_failure(name: str, stopped: str, resets_at: Optional[datetime], meta: dict) -> dg.Failure:
    """The daily budget stopped a load step: the failure budget_reset_sensor re-launches after the reset."""
    meta = {**meta, STOPPED_BY_KEY: STOPPED_BY_BUDGET}
    if resets_at is not None:
        meta[RESETS_AT_KEY] = resets_at.isoformat()
    return dg.Failure(
        description=f"{name} stopped {stopped}. "
        "Everything loaded so far is recorded; budget_reset_sensor re-launches the load after the budget resets.",
        metadata=meta,
    )


def user_failure(e: UserError) -> dg.Failure:
    """A step stopped by something the user fixes (wrong account, refused token, not a Pipedrive URL):
    its one-sentence message as the failure, no stack trace, no automatic retry."""
    return dg.Failure(description=str(e), allow_retries=False)


def _load_asset(ent: Entity, registry: Registry) -> dg.AssetsDefinition:
    name, entity, shaped = ent.load_asset, ent.name, ent.shaped_table

    @dg.asset(
        name=name, group_name=GROUP, kinds={"pipedrive", "duckdb"}, partitions_def=migration_runs,
        deps=[shaped, *load_deps(ent, registry)], pool="pipedrive",
        description=f"`{shaped}` sent to Pipedrive: new records created, changed ones updated (only the changed "
        "fields), unchanged ones skipped; the id map and audit log are written as each record lands.",
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource, pipedrive: PipedriveResource,
               project: ProjectPaths):
        run_key = context.partition_key

        with duckdb.get_connection() as con, pipedrive.client() as client:
            usable = client.limiter.usable_budget

            def progress(r):
                rate = r.done / r.seconds if r.seconds else 0
                context.log.info(f"{name}: {r.done:,}/{r.total:,} records, {rate:.1f}/s, {r.tokens:,} tokens, {eta(r, usable)}")

            run = get_run(con, run_key)
            try:
                result = load_shaped(con, client, run_key, entity, bundle_root=bundle_root(run, project.paths.work),
                                     progress=progress, ledger=Ledger.in_folder(project.paths.root))
            except DailyBudgetSpent as e:
                # refused before the first record (the account look-up): the same stop as mid-load
                raise budget_failure(name, f"before its first record: {e}", e.resets_at,
                                     {"tokens_spent": client.tokens_spent}) from None
            except UserError as e:  # e.g. an id the map already holds for another record: repair first
                raise user_failure(e) from None
        reasons = Counter(s["reason_code"] for s in result.set_aside)
        meta = {
            "dagster/row_count": result.total, "created": result.created, "updated": result.updated,
            "skipped": result.skipped, "adopted": result.adopted, "set_aside": len(result.set_aside),
            "set_aside_by_reason": table([{"reason": k, "records": v} for k, v in sorted(reasons.items())],
                                         columns=["reason", "records"]),
            "tokens_spent": result.tokens, "seconds": round(result.seconds, 1),
            "set_aside_table": "meta.load_set_aside",
        }
        if result.stopped:
            raise budget_failure(name, f"after {result.done:,}/{result.total:,} records: {result.stopped}",
                                 result.resets_at, meta)
        return dg.MaterializeResult(metadata=meta)

    return _asset


def build_load_assets(registry: Registry = ENTITIES) -> list[dg.AssetsDefinition]:
    """One load asset per entity, in load order, then the deletions step that waits for all of them."""
    return [*(_load_asset(e, registry) for e in registry), _deletions_asset([e.load_asset for e in registry])]


def _deletions_asset(loads: list[str]) -> dg.AssetsDefinition:
    return dg.asset(
        name="applied_deletions", group_name=GROUP, kinds={"pipedrive", "duckdb"}, partitions_def=migration_runs,
        deps=loads, pool="pipedrive",
        description="Records the export's deleted.csv lists (delta runs), handled by the mapping's deletion policy: "
        "`flag` (default) marks them deleted in the id map and leaves Pipedrive alone; `delete` removes them.",
    )(applied_deletions)


def applied_deletions(context: dg.AssetExecutionContext, duckdb: DuckDBResource, pipedrive: PipedriveResource,
                      project: ProjectPaths):
    policy = mapping_store.require_approved(project.paths).options.deletion_policy
    with duckdb.get_connection() as con, pipedrive.client() as client, \
            metered(Ledger.in_folder(project.paths.root), client, context.partition_key, "applied_deletions"):
        try:
            result = apply_deletions(con, client, context.partition_key, policy)
        except DailyBudgetSpent as e:
            raise budget_failure("applied_deletions", f"before every deletion was handled: {e}", e.resets_at,
                                 {"tokens_spent": client.tokens_spent}) from None
        except UserError as e:
            raise user_failure(e) from None
    report = write_report(result, project.paths.reports / context.partition_key / "deletions.csv")
    return dg.MaterializeResult(metadata={
        "policy": policy, "listed": result.listed, "flagged": result.flagged, "deleted": result.deleted,
        "already_handled": result.already_handled, "not_migrated": len(result.not_migrated),
        "report": dg.MetadataValue.path(str(report)),
        "preview": table(result.rows, columns=REPORT_COLUMNS, limit=10),
    })


load_assets = build_load_assets()
