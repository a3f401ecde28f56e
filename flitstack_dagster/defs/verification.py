"""Verification: read the run back from Pipedrive and prove it, field by field; hand people the
audit log and the rebuild reference.

`verified_records` and `field_diff_report` are one step, so the HTML report is written even when
the blocking `reconciliation` check fails — that is when it is needed most.
"""

import json

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.metadata import md_document, md_problems, table, table_facts
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.entities import ENTITIES, Registry
from flitstack_dagster.loading.ledger import Ledger, metered
from flitstack_dagster.loading.reconcile import Reconciliation, reconcile_run
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.reports.summary import (
    LOAD_COLUMNS,
    SET_ASIDE_COLUMNS,
    loads_by_entity,
    set_aside_by_reason,
)
from flitstack_dagster.verification.audit_export import export_audit_log
from flitstack_dagster.verification.rebuild import build_rebuild_reference
from flitstack_dagster.verification.report_html import write_field_diff_report
from flitstack_dagster.verification.verify import AcceptedMismatch, verify_run

GROUP = "verification"
REBUILD_SOURCES = [dg.AssetKey(n) for n in ("stg_workflow_rules", "stg_form_configurations", "stg_pm_schedules",
                                            "stg_inventory", "stg_contacts", "stg_departments", "stg_assets")]


class AcceptedMismatchConfig(dg.Config):
    entity: str
    field: str
    reason: str
    source_id: str = ""


class VerificationConfig(dg.Config):
    accepted_mismatches: list[AcceptedMismatchConfig] = []  # noqa: RUF012 (pydantic copies defaults)
    scan_duplicates: bool = True
    # a delta scans only what it changed; True lists the whole account, as a full run does
    whole_account: bool = False


def _verify_asset(loaded: list[dg.AssetKey]) -> dg.AssetsDefinition:
    return dg.multi_asset(
        name="verify_migration_run",
        specs=[
            dg.AssetSpec(
                "verified_records", group_name=GROUP, kinds={"pipedrive", "duckdb"}, deps=loaded,
                partitions_def=migration_runs,
                description="Every record the run migrated, read back from Pipedrive (batched, token-aware) and "
                "compared field by field with what shaping intended, after Pipedrive's own normalisation: "
                "match / mismatch / missing per field in verification.field_diff; duplicate Novo Source IDs reported.",
            ),
            dg.AssetSpec(
                "field_diff_report", group_name=GROUP, kinds={"html"}, deps=["verified_records"],
                partitions_def=migration_runs,
                description="The field-level diff report (data/reports/<run>/field_diff.html): source vs destination "
                "value of every mapped field of every record, grouped by entity, differences first, with filters; "
                "opens offline.",
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "reconciliation", asset="verified_records", blocking=True,
                description="Per file, source rows = loaded + set aside + not migrated by design; per object, shaped "
                "= id map + set aside by the loader, and every id-map record is in Pipedrive as sent.",
            ),
            dg.AssetCheckSpec(
                "every_record_once", asset="verified_records", blocking=True,
                description="Read back by source identity (Novo Source ID; the source marker of activities, notes and "
                "files): every record of the run is in Pipedrive exactly once — no duplicate, none missing.",
            ),
            dg.AssetCheckSpec(
                "no_unexplained_mismatches", asset="verified_records",
                description="Zero field differences that are not accepted in config, and no duplicate Source IDs; "
                "a clean sample run unlocks the full run.",
            ),
        ],
        partitions_def=migration_runs, pool="pipedrive",
        description="Read the run back from Pipedrive, store the field-level diff and write the HTML report.",
    )(_verify_step)


def _verify_step(context: dg.AssetExecutionContext, config: VerificationConfig, duckdb: DuckDBResource,
                 pipedrive: PipedriveResource, project: ProjectPaths):
    run_key = context.partition_key
    accepted = [AcceptedMismatch(a.entity, a.field, a.reason, a.source_id or None) for a in config.accepted_mismatches]
    approved = mapping_store.load_approved(project.paths)
    mapping_hash = approved.content_hash() if approved else None
    with duckdb.get_connection() as con, pipedrive.client() as client, \
            metered(Ledger.in_folder(project.paths.root), client, run_key, "verified_records") as meter:
        result = verify_run(con, client, run_key, accepted=accepted, scan_duplicates=config.scan_duplicates,
                            whole_account=config.whole_account,
                            mapping_hash=mapping_hash, progress=meter.report)
        meter.flush()
        recon = reconcile_run(con, run_key)
        facts = table_facts(con, "verification.records", result.records.height)
        summary = {"loaded_by_entity": table(loads_by_entity(con, run_key), columns=LOAD_COLUMNS),
                   "set_aside_by_reason": table(set_aside_by_reason(con, run_key), columns=SET_ASIDE_COLUMNS)}
    path = write_field_diff_report(result, project.paths.reports / run_key / "field_diff.html")
    s = result.summary()
    by_field = result.by_field()
    differing = by_field.filter((pl.col("mismatch") + pl.col("missing")) > 0)
    by_entity = (result.records.group_by("entity", "status").len("records").sort("entity", "status").to_dicts()
                 if result.records.height else [])
    yield dg.MaterializeResult(asset_key="verified_records", metadata={
        **facts,
        "records": s["records"], "fields_compared": s["fields"], "matches": s["matches"],
        "mismatches": s["mismatches"], "missing": s["missing"], "accepted": s["accepted"],
        "unexplained": s["unexplained"], "duplicates": s["duplicates"], "tokens_spent": s["tokens"],
        "duplicates_looked_for_in": result.scanned,
        "sample_verified": result.sample_verified, "mapping_hash": mapping_hash or "",
        "records_by_status": table(by_entity, columns=["entity", "status", "records"], limit=50),
        "differing_fields": table(differing.to_dicts(), columns=differing.columns, limit=25),
        "field_diff_table": "verification.field_diff",
        **_reconciliation_tables(recon),
        **summary,
        "reports": dg.MetadataValue.path(str(project.paths.reports / run_key)),
        **({"stopped": result.stopped} if result.stopped else {}),
    })
    yield dg.MaterializeResult(asset_key="field_diff_report", metadata={
        "path": dg.MetadataValue.path(str(path)),
        "result": "zero unexplained mismatches" if result.clean else f"{s['unexplained']} unexplained differences",
        "by_field": table(by_field.to_dicts(), columns=by_field.columns, limit=40),
    })
    yield dg.AssetCheckResult(
        asset_key="verified_records", check_name="reconciliation", passed=recon.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(recon.problems[:5]) if recon.problems else "every source row and record accounted for",
        metadata={**_reconciliation_tables(recon), "problems": md_problems(recon.problems)},
    )
    once = result.once_problems()
    yield dg.AssetCheckResult(
        asset_key="verified_records", check_name="every_record_once", passed=not once,
        severity=dg.AssetCheckSeverity.ERROR,
        description=("; ".join(once) + f". Run `flitstack repair {run_key}` (or the repair job) to rebuild the id map "
                     "from what the account holds, then load again." if once else
                     "every record of the run is in Pipedrive exactly once"
                     + ("" if config.scan_duplicates else " (duplicates not scanned: scan_duplicates is off)")),
        metadata={"duplicates": result.run_duplicates().height, "missing": result.missing().height,
                  "duplicated_records": _frame_table(result.run_duplicates(), limit=20),
                  "missing_records": _frame_table(result.missing(), limit=20)},
    )
    yield dg.AssetCheckResult(
        asset_key="verified_records", check_name="no_unexplained_mismatches", passed=result.clean,
        severity=dg.AssetCheckSeverity.ERROR,
        description=("zero unexplained mismatches" if result.clean else
                     f"{s['unexplained']} unexplained differences, {s['duplicates']} duplicate Source IDs"
                     + (f"; {result.stopped}" if result.stopped else "")),
        metadata={"unexplained": s["unexplained"], "duplicates": s["duplicates"],
                  "report": dg.MetadataValue.path(str(path))},
    )


def _reconciliation_tables(recon: Reconciliation) -> dict[str, dg.MetadataValue]:
    """Per source file (rows, loaded, set aside, not migrated, why) and per Pipedrive object."""
    return {"sources": table(recon.sources, limit=100), "destinations": table(recon.destinations, limit=100)}


def _frame_table(frame: pl.DataFrame, limit: int) -> dg.MetadataValue:
    return table(frame.to_dicts(), columns=frame.columns, limit=limit)


def _audit_asset(loaded: list[dg.AssetKey]) -> dg.AssetsDefinition:
    return dg.asset(
        name="audit_log_export", group_name=GROUP, kinds={"duckdb", "csv", "parquet"}, partitions_def=migration_runs, deps=loaded,
        description="The run's audit log (source ID, destination ID, timestamp, operation) as CSV and Parquet under "
        "data/reports/<run>/ — what an auditor gets.",
    )(_audit_step)


def _audit_step(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        out = export_audit_log(con, context.partition_key, project.paths.reports / context.partition_key)
        facts = table_facts(con, "meta.audit_log", out.rows)
    return dg.MaterializeResult(metadata={
        **facts, "csv": dg.MetadataValue.path(str(out.csv)),
        "parquet": dg.MetadataValue.path(str(out.parquet)),
        "by_operation": table([{"operation": k, "rows": v} for k, v in out.by_operation.items()],
                              columns=["operation", "rows"]),
    })


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "markdown"}, partitions_def=migration_runs, deps=REBUILD_SOURCES,
    description="The rebuild reference: every workflow rule, routing rule, PM recurrence (trigger, frequency, "
    "interval, RRULE) and request form that does not migrate, with its original definition and the Pipedrive "
    "automation (or Zapier/Make) pattern that replaces it; plus the inventory summary and what to rebuild it in.",
)
def rebuild_reference(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths) -> dg.MaterializeResult:
    run_key = context.partition_key
    with duckdb.get_connection() as con:
        ref = build_rebuild_reference(con, run_key)
    text = ref.to_markdown()
    folder = project.paths.reports / run_key
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "rebuild_reference.md", folder / "rebuild_reference.json"
    md.write_text(text, encoding="utf-8")
    js.write_text(json.dumps(ref.to_dict(), indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    return dg.MaterializeResult(metadata={
        "summary": table(ref.summary()), "items": len(ref.items),
        "document": md_document(text, md), "path": dg.MetadataValue.path(str(md)),
        "json": dg.MetadataValue.path(str(js)),
    })


def build_verification_assets(registry: Registry = ENTITIES) -> list[dg.AssetsDefinition]:
    """Verification and the audit export wait for every load asset of the registry."""
    loaded = [dg.AssetKey(e.load_asset) for e in registry]
    return [_verify_asset(loaded), _audit_asset(loaded), rebuild_reference]


verification_assets = build_verification_assets()
verify_migration_run = verification_assets[0]
