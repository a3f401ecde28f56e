"""Rollback from the UI: the `rollback` job undoes what one migration run (partition) did in Pipedrive.

An op job, not assets: a rollback materializes nothing, it reverses the load assets' audit rows.
The work is `loading.rollback.rollback_run`; this module only wires it to the resources.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.errors import UserError
from flitstack_dagster.loading.rollback import rollback_run
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.run_tags import account_run_tags


class RollbackConfig(dg.Config):
    cascade: bool = Field(
        default=False,
        description="Also roll back the later runs that built on this one (newest first). Without it, "
        "such a rollback is refused and the later runs are named.",
    )


@dg.op(
    description="Reverse the partition's audit rows in reverse FK order: delete what the run created, "
    "restore what it updated; resumable, idempotent and itself audited (run key `rollback:<run>`).",
    pool="pipedrive",
)
def rollback_migration_run(
    context: dg.OpExecutionContext, config: RollbackConfig, duckdb: DuckDBResource, pipedrive: PipedriveResource
):
    run_key = context.partition_key
    try:
        with duckdb.get_connection() as con, pipedrive.client() as client:
            result = rollback_run(con, client, run_key, cascade=config.cascade, progress=context.log.info)
    except UserError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from None
    except PipedriveError as e:
        raise dg.Failure(
            description=f"{e}. What was rolled back so far is recorded: launch the rollback again to finish."
        ) from None
    for warning in result.warnings:
        context.log.warning(warning)
    context.log.info(result.summary())
    yield dg.Output(
        result.summary(),
        metadata={
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
