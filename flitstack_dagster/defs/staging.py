"""Staging: every SQL model in `dbt_like_sql/staging/` becomes one partitioned asset.

Dependencies come only from the `{{ ref() }}` and `{{ source() }}` calls in each file, so the SQL
folder is the single source of truth for the staging graph.
"""



import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.landing import raw_key
from flitstack_dagster.defs.metadata import records_table, table, table_facts
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.reports.quarantine import write_quarantine_report
from flitstack_dagster.staging.models import SqlModel, discover_models
from flitstack_dagster.staging.quarantine import (
    FileAccount,
    QuarantineCount,
    accounting,
    quarantine_entries,
    quarantine_summary,
)
from flitstack_dagster.staging.runner import run_model

GROUP = "novo_staging"
QUARANTINE = dg.AssetKey("novo_quarantine")


def _staging_asset(model: SqlModel) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(r) for r in model.refs] + [raw_key(table) for _schema, table in model.sources]

    @dg.asset(
        key=model.name,
        deps=deps,
        group_name=GROUP,
        kinds={"duckdb", "sql"},
        partitions_def=migration_runs,
        description=model.description or f"Typed, normalised `staging.{model.name}`.",
        metadata={"sql_file": dg.MetadataValue.path(str(model.path))},
        code_version=model.code_version,
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as con:
            result = run_model(con, model, context.partition_key)
            facts = table_facts(con, result.table, result.rows)
        columns = [c.name for c in facts["dagster/column_schema"].columns]
        return dg.MaterializeResult(
            metadata={
                **facts,
                "rows_quarantined": result.quarantined_rows,
                "values_quarantined": result.quarantined_values,
                "preview": table(result.preview, columns=columns, limit=5),
            }
        )

    return _asset


STAGING_MODELS = [m for m in discover_models() if m.layer == "staging"]
staging_assets = [_staging_asset(m) for m in STAGING_MODELS]


@dg.asset(
    key=QUARANTINE,
    deps=[dg.AssetKey(m.name) for m in STAGING_MODELS],
    group_name=GROUP,
    kinds={"duckdb", "csv"},
    partitions_def=migration_runs,
    description="Every value or row staging could not use, with file, row, column, raw value and reason; "
    "written as a CSV report too.",
    check_specs=[
        dg.AssetCheckSpec(
            "rows_accounted_for",
            asset=QUARANTINE,
            blocking=True,
            description="For every file: rows in file = rows staged + rows quarantined.",
        )
    ],
)
def novo_quarantine(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths):
    run_key = context.partition_key
    with duckdb.get_connection() as con:
        summary = quarantine_summary(con, run_key)
        accounts = accounting(con, run_key)
        report = write_quarantine_report(con, run_key, project.paths.reports / run_key)
        facts = table_facts(con, "staging.quarantine", quarantine_entries(con, run_key))
    broken = [a for a in accounts if not a.ok]
    yield dg.MaterializeResult(
        metadata={
            **facts,
            "rows_quarantined": sum(a.quarantined_rows for a in accounts),
            "values_quarantined": sum(q.count for q in summary if q.level == "value"),
            "by_reason": records_table(summary, QuarantineCount),
            "report": dg.MetadataValue.path(str(report)),
            "accounting": records_table(accounts, FileAccount),
        }
    )
    yield dg.AssetCheckResult(
        check_name="rows_accounted_for",
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "files_checked": len(accounts),
            "files_not_accounted": records_table(broken, FileAccount),
        },
    )
