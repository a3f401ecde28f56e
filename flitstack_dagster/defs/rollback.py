"""Rollback from the UI: the `rollback` job undoes what one migration run (partition) did in Pipedrive.

An op job, not assets: a rollback materializes nothing, it reverses the load assets' audit rows.
The work is `loading.rollback.rollback_run`; this module only wires it to the resources.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from flitstack_dagster.defs.loading import user_failure
from flitstack_dagster.defs.metadata import table
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.loading.ledger import Ledger, metered
from flitstack_dagster.loading.rollback import ROLLBACK_PREFIX, plan_rollback, rollback_run, stopped_part_way
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.defs.run_tags import account_run_tags


class RollbackConfig(dg.Config):
    cascade: bool = Field(
        default=False,
        description="Also roll back the later runs that built on this one (newest first). Without it, "
        "such a rollback is refused and the later runs are named.",
    )
    dry_run: bool = Field(
        default=False,
        description="Only show what the rollback would delete and restore, and in which Pipedrive account; "
        "change nothing.",
    )


@dg.op(
    description="Reverse the partition's audit rows in reverse FK order: delete what the run created, "
    "restore what it updated, each proven by reading it back; resumable, idempotent and itself audited "
    "(run key `rollback:<run>`). Shows the preview (per entity, and the account) first; `dry_run` stops there.",
    pool="pipedrive",
)
def rollback_migration_run(
    context: dg.OpExecutionContext, config: RollbackConfig, duckdb: DuckDBResource, pipedrive: PipedriveResource,
    project: ProjectPaths,
):
    run_key = context.partition_key
    try:
        with duckdb.get_connection() as con, pipedrive.client() as client, \
                metered(Ledger.in_folder(project.paths.root), client, ROLLBACK_PREFIX + run_key, "rollback"):
            plan = plan_rollback(con, client, run_key, cascade=config.cascade)
            context.log.info(plan.text())
            preview = {"account": plan.where(), "preview": table(plan.rows(), limit=100)}
            if config.dry_run:
                yield dg.Output(plan.text(), metadata={"dry_run": True, **preview})
                return
            result = rollback_run(con, client, run_key, cascade=config.cascade, progress=context.log.info)
    except UserError as e:
        raise user_failure(e) from None
    except PipedriveError as e:
        raise dg.Failure(description=stopped_part_way(e, "rolled back", "launch the rollback")) from None
    for warning in result.warnings:
        context.log.warning(warning)
    context.log.info(result.summary())
    yield dg.Output(
        result.summary(),
        metadata={
            **preview,
            "runs_rolled_back": ", ".join(r.run_key for r in result.runs if not r.already_rolled_back) or "none",
            "deleted": result.deleted,
            "restored": result.restored,
            "handed_back": result.handed_back,
            "already_gone": result.already_gone,
            "warnings": len(result.warnings),
            "tokens_spent": result.tokens,
            "seconds": round(result.seconds, 1),
        },
    )


@dg.job(
    partitions_def=migration_runs,
    description="Roll back one migration run: delete what it created in Pipedrive and restore what it "
    "updated. Refuses when a later run built on it unless `cascade` is set.",
    tags={"kind": "rollback", **account_run_tags()},
)
def rollback():
    rollback_migration_run()
