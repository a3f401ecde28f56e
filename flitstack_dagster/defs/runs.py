"""Registering a migration run from the UI: verify the bundle, record it, add the partition."""


import dagster as dg
from pydantic import Field
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.novo.runs import MODES, add_run


class RegisterRunConfig(dg.Config):
    bundle_path: str = Field(description="Folder or .zip of a Novo export bundle")
    mode: str = Field(default="full", description="sample, full or delta")


@dg.op(description="Verify a Novo export bundle and register a migration run (partition) for it.")
def register_run_op(context: dg.OpExecutionContext, config: RegisterRunConfig, duckdb: DuckDBResource,
                    project: ProjectPaths) -> str:
    if config.mode not in MODES:
        raise dg.Failure(f"mode must be one of {', '.join(MODES)}, not '{config.mode}'")
    with duckdb.get_connection() as con:
        run = add_run(con, config.bundle_path, config.mode, project.paths.work)
    context.instance.add_dynamic_partitions(migration_runs.name, [run.run_key])
    context.log.info(f"Registered migration run {run.run_key} for {run.bundle_path}")
    return run.run_key


@dg.job(description="Register a migration run for an export bundle, so its partition can be materialized.")
def register_migration_run():
    register_run_op()
