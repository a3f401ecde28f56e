"""Landing: a verified Novo export bundle lands, every CSV as text, into DuckDB's `raw` schema.

One multi-asset so a bundle lands all-or-nothing: `novo_export` (the verified manifest) plus one
`raw_<entity>` asset per file. Blocking checks stop staging when the landed data does not match.
"""


import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.defs.metadata import counts_table, table, table_facts
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.novo import raw_checks
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.columns import FILES
from flitstack_dagster.novo.landing import LandedFile, land_bundle
from flitstack_dagster.novo.runs import get_run

GROUP = "novo_landing"
RAW_TABLES = [f.entity for f in FILES] + ["workflow_rules", "form_configurations"]


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{table}")


NOVO_EXPORT = dg.AssetKey("novo_export")

_specs = [
    dg.AssetSpec(
        NOVO_EXPORT,
        description="The Novo export bundle this migration run reads, verified against its manifest "
        "(presence, size, SHA-256 and row count of every file) before anything lands.",
        group_name=GROUP,
        kinds={"novo", "duckdb"},
        partitions_def=migration_runs,
    ),
    *[
        dg.AssetSpec(
            raw_key(t),
            description=f"`raw.{t}`: the bundle's {t} file, every value as text exactly as exported, "
            "tagged with its migration run.",
            group_name=GROUP,
            kinds={"duckdb"},
            deps=[NOVO_EXPORT],
            partitions_def=migration_runs,
        )
        for t in RAW_TABLES
    ],
]

_checks = [
    dg.AssetCheckSpec("manifest_matches", asset=NOVO_EXPORT, blocking=True,
                      description="Rows landed per file equal the manifest's row counts."),
    dg.AssetCheckSpec("required_headers_present", asset=NOVO_EXPORT, blocking=True,
                      description="Every standard column of the export format is present in its file."),
    dg.AssetCheckSpec("udf_columns_declared", asset=NOVO_EXPORT, blocking=True,
                      description="Every extra column is declared in user_defined_fields.csv."),
]


@dg.multi_asset(
    name="land_novo_export",
    specs=_specs,
    check_specs=_checks,
    partitions_def=migration_runs,
    description="Verify the run's export bundle and land every file into DuckDB as text.",
)
def land_novo_export(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths):
    run_key = context.partition_key
    with duckdb.get_connection() as con:
        run = get_run(con, run_key)
        work_dir = project.paths.work / run_key
        bundle = open_bundle(run.bundle_path, work_dir)
        m = bundle.manifest
        context.log.info(f"Bundle {m.export_id} ({m.kind}, {len(m.files)} files) verified; landing into raw.*")
        landed = land_bundle(con, bundle, run_key)
        problems = {
            "manifest_matches": raw_checks.manifest_mismatches(con, run_key, m),
            "required_headers_present": raw_checks.missing_headers(landed),
            "udf_columns_declared": raw_checks.undeclared_udfs(con, run_key, landed),
        }
        by_table = {lf.entity: lf for lf in landed}
        raw_meta = {t: _raw_metadata(con, t, by_table.get(t)) for t in RAW_TABLES}
    yield dg.MaterializeResult(
        asset_key=NOVO_EXPORT,
        metadata={
            "export_id": m.export_id,
            "tenant": m.tenant,
            "kind": m.kind,
            "exported_at": m.exported_at.isoformat(),
            "timezone": m.timezone,
            "date_order": m.date_order,
            "encoding": m.encoding,
            "bundle_path": dg.MetadataValue.path(str(run.bundle_path)),
            "files": counts_table(((f.name, f.rows) for f in m.files), "file"),
            "total_rows": sum(f.rows for f in m.files),
        },
    )
    for t in RAW_TABLES:
        yield dg.MaterializeResult(asset_key=raw_key(t), metadata=raw_meta[t])
    for name, found in problems.items():
        yield dg.AssetCheckResult(
            asset_key=NOVO_EXPORT,
            check_name=name,
            passed=not found,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problems": len(found),
                      "details": table([{"problem": p} for p in found], columns=["problem"], limit=50)},
        )


def _raw_metadata(con: duckdb.DuckDBPyConnection, table_name: str, landed: LandedFile | None) -> dict:
    """One raw table: this run's rows, its columns, and its extra (UDF) columns."""
    rows = landed.rows if landed else 0
    present = has_table(con, "raw", table_name)
    facts = table_facts(con, f"raw.{table_name}", rows) if present else {"dagster/row_count": 0}
    return {
        **facts,
        "udf_columns": ", ".join(landed.udf_columns) if landed and landed.udf_columns else "",
        "note": "" if landed else "not in this bundle",
    }
