"""Repair from the UI: the `repair` job rebuilds one migration run's id map from what the Pipedrive
account holds. The work is `loading.repair.repair_run`; this module only wires it to the resources."""

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
from flitstack_dagster.loading.repair import repair_run
from flitstack_dagster.loading.rollback import stopped_part_way
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.defs.run_tags import account_run_tags


class RepairConfig(dg.Config):
    delete_duplicates: bool = Field(
        default=False,
        description="Delete the extra records the account holds for one source record (keeps the one the id "
        "map holds, else the lowest id). Without it, duplicates are only listed.",
    )


@dg.op(
    description="Read every organization, person and deal (by Novo Source ID) and every activity, note and file "
    "(by its source marker) from the account; adopt what the account holds, drop id-map rows the account "
    "does not back (the next load creates them again) and list duplicates.",
    pool="pipedrive",
)
def repair_id_map(context: dg.OpExecutionContext, config: RepairConfig, duckdb: DuckDBResource,
                  pipedrive: PipedriveResource, project: ProjectPaths):
    run_key = context.partition_key
    try:
        with duckdb.get_connection() as con, pipedrive.client() as client, \
                metered(Ledger.in_folder(project.paths.root), client, run_key, "repair"):
            result = repair_run(con, client, run_key, delete_duplicates=config.delete_duplicates,
                                progress=context.log.info)
    except UserError as e:
        raise user_failure(e) from None
    except PipedriveError as e:
        raise dg.Failure(description=stopped_part_way(e, "repaired", "launch the repair")) from None
    context.log.info(result.summary())
    yield dg.Output(
        result.summary(),
        metadata={
            "adopted": result.count("adopted"), "missing": result.count("missing"),
            "kept_unmarked": result.count("kept"),
            "duplicated": result.count("duplicated"), "duplicates_deleted": result.deleted,
            "duplicates_already_gone": result.already_gone,
            "by_entity": table(result.rows()), "tokens_spent": result.tokens, "seconds": round(result.seconds, 1),
        },
    )


@dg.job(
    partitions_def=migration_runs,
    description="Rebuild one migration run's id map from what the Pipedrive account holds: adopted, missing (created "
    "again by the next load) and duplicated records (deleted only with `delete_duplicates`).",
    tags={"kind": "repair", **account_run_tags()},
)
def repair():
    repair_id_map()
