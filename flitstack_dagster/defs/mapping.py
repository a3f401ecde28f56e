"""Mapping: profile the source, audit the account, propose the map, wait for the user's approval,
then provision Pipedrive (the first step that writes to it)."""

import json

import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs.approval import launchpad_example, launchpad_link
from flitstack_dagster.defs.loading import user_failure
from flitstack_dagster.defs.metadata import md_document, md_problems, site_url, table
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.defs.staging import QUARANTINE
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.loading.ledger import Ledger, metered
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.mapping.approval import check_approval, merge
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.audit import audit_account, count_pages
from flitstack_dagster.novo.runs import mode_of
from flitstack_dagster.mapping.owners import resolve_owners
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.provision import provision_schema
from flitstack_dagster.mapping.review import BLOCKING_COLUMNS, blocking_values, status_rows, value_tables
from flitstack_dagster.mapping.archive import run_archive_scope
from flitstack_dagster.mapping.scope import scope_document
from flitstack_dagster.mapping.yamlio import decisions_needed, mapping_markdown, write_proposal

GROUP = "mapping"


@dg.asset(
    group_name=GROUP, kinds={"duckdb"}, partitions_def=migration_runs, deps=[QUARANTINE],
    description="Source profile: for every staged column (UDFs included) the type seen, null rate, distinct "
    "count, top and example values; plus the inventory (counts, status/priority mix, hierarchy depth, cycles, "
    "PM recurrence styles, attachment sizes).",
)
def source_profile(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        profile = profile_source(con, context.partition_key)
    path = mapping_store.save_profile(project.paths, context.partition_key, profile)
    return dg.MaterializeResult(metadata={
        "profile_hash": profile.profile_hash,
        "entities": table([{"entity": e.entity, "rows": e.rows, "columns": len(e.columns)}
                           for e in profile.entities.values()]),
        "report": dg.MetadataValue.path(str(path)),
    })


@dg.asset(
    group_name=GROUP, kinds={"pipedrive"}, partitions_def=migration_runs,
    description="Pipedrive account audit: users with emails, pipelines and stages, existing custom fields and "
    "their keys, custom-field headroom against the plan's cap, record counts and the token budget.",
)
def pipedrive_account_audit(context: dg.AssetExecutionContext, pipedrive: PipedriveResource,
                            project: ProjectPaths) -> dg.MaterializeResult:
    with pipedrive.client() as client, metered(Ledger.in_folder(project.paths.root), client, context.partition_key,
                                               "pipedrive_account_audit"):
        audit = audit_account(client, plan=client.plan, seats=client.seats,
                              max_pages=count_pages(mode_of(context.partition_key)))
        spent = client.tokens_spent
        account = site_url(client.base_url)
    path = mapping_store.save_audit(project.paths, context.partition_key, audit)
    return dg.MaterializeResult(metadata={
        "account": account,
        "users": len(audit.users),
        "tokens_spent": spent,
        "report": dg.MetadataValue.path(str(path)),
        "summary": dg.MetadataValue.json(json.loads(audit.model_dump_json(include={"plan", "seats", "company", "tokens_left_today"}))),
    })


@dg.asset(
    group_name=GROUP, kinds={"pipedrive"}, partitions_def=migration_runs,
    deps=[source_profile, pipedrive_account_audit],
    description="Owner resolution: technicians and requesters matched to Pipedrive users by email; everyone "
    "else owned by the fallback owner — the table lists each unmatched contact.",
)
def owner_resolution(context: dg.AssetExecutionContext, duckdb: DuckDBResource, project: ProjectPaths) -> dg.MaterializeResult:
    audit = mapping_store.load_audit(project.paths, context.partition_key)
    approved = mapping_store.load_approved(project.paths)
    fallback = approved.options.fallback_owner_email if approved else None
    with duckdb.get_connection() as con:
        owners = resolve_owners(con, context.partition_key, audit.users, fallback)
    path = mapping_store.save_owners(project.paths, context.partition_key, owners)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(owners.rows),
        "matched": len(owners.matched()),
        "unmatched": len(owners.unmatched()),
        "owners": table([_owner_row(r) for r in owners.rows], columns=OWNER_COLUMNS, limit=200),
        "report": dg.MetadataValue.path(str(path)),
    })


OWNER_COLUMNS = ("contact", "role", "email", "owner", "match", "reason")


def _owner_row(r) -> dict:
    """One contact and the Pipedrive user who will own its records, with the evidence for it."""
    return {"contact": r.name or r.contact_id, "role": r.role, "email": r.email, "owner": r.owner_name or r.owner_email,
            "match": r.match, "reason": r.reason}


@dg.asset(
    group_name=GROUP, kinds={"yaml"}, partitions_def=migration_runs,
    deps=[source_profile, pipedrive_account_audit],
    description="The proposed field map (YAML, diff-able): every source column and every value seen to its "
    "Pipedrive target, with confidence and reason from the value's name, the data and the account. Values "
    "proposed with low confidence wait for an explicit decision.",
    check_specs=[dg.AssetCheckSpec(
        "mapping_approved", asset="proposed_mapping", blocking=True,
        description="The approved mapping covers the data: nothing unmapped, no low-confidence proposal left "
        "undecided, nothing changed since approval.",
    )],
)
def proposed_mapping(context: dg.AssetExecutionContext, project: ProjectPaths):
    paths = project.paths
    profile = mapping_store.load_profile(paths, context.partition_key)
    audit = mapping_store.load_audit(paths, context.partition_key)
    approved = mapping_store.load_approved(paths)
    proposal = propose_mapping(profile, audit, approved.options if approved else None)
    path = write_proposal(mapping_store.proposed_path(paths), proposal)
    problems = check_approval(approved, proposal, profile)
    proposal_hash = proposal.content_hash()
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": len(proposal.fields),
        "proposal_hash": dg.MetadataValue.text(proposal_hash),
        "fields": len(proposal.fields),
        "unmapped": len(proposal.unmapped()),
        "needs_decision": len(decisions_needed(proposal)),
        "proposal": dg.MetadataValue.path(str(path)),
        "approved_file": dg.MetadataValue.path(str(mapping_store.approved_path(paths))),
        **_review_tables(proposal),
        "document": md_document(mapping_markdown(proposal), path.with_suffix(".md")),
    })
    reviewed = merge(approved, proposal) if approved else proposal  # what an approval now would decide on
    blocking = blocking_values(reviewed, profile.value_sets)
    metadata = _approval_metadata(reviewed, problems, blocking, proposal_hash)
    if problems:  # one click to the approve_mapping launchpad, opened with the example config
        metadata["approve_in_the_ui"] = launchpad_link(
            context.run, launchpad_example(proposal_hash, blocking, reviewed.record_plan))
    yield dg.AssetCheckResult(
        check_name="mapping_approved", passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems[:5]) if problems else "approved", metadata=metadata,
    )


def _review_tables(proposal: Mapping) -> dict[str, dg.MetadataValue]:
    """The proposal as the lead reviews it: status → stage and each value list, with confidence and reason."""
    tables = {"status_to_stage": table(status_rows(proposal))}
    tables.update({name: table(rows) for name, rows in sorted(value_tables(proposal).items())})
    return tables


def _approval_metadata(reviewed: Mapping, problems: list[str], blocking: list[dict],
                       proposal_hash: str) -> dict[str, object]:
    """What blocks the load (the values needing a decision as a table) and the two ways to approve."""
    if not problems:
        return {"approved_by": reviewed.approved_by or "", "record_plan": reviewed.record_plan}
    return {
        "problems": md_problems(problems),
        "values_needing_a_decision": table(blocking, columns=BLOCKING_COLUMNS),
        "how_to_approve": dg.MetadataValue.md(
            "Launch the `approve_mapping` job with the launchpad config below (fill in your name and a target "
            "for each value; no target confirms a proposal as proposed), or decide the values in "
            "mapping/approved.yaml and run the command below."),
        "launchpad_config": dg.MetadataValue.text(launchpad_example(proposal_hash, blocking, reviewed.record_plan)),
        "cli": dg.MetadataValue.text(f"flitstack mapping approve --by NAME --proposal-hash {proposal_hash}"),
        "proposal_hash": dg.MetadataValue.text(proposal_hash),
    }


def _audit_if_any(paths, run_key: str):
    """The run's account audit, which spares provisioning its reads when it shows nothing missing."""
    try:
        return mapping_store.load_audit(paths, run_key)
    except UserError:
        return None


@dg.asset(
    group_name=GROUP, kinds={"pipedrive", "duckdb"}, partitions_def=migration_runs,
    deps=[proposed_mapping], pool="pipedrive",
    description="Schema provisioning: creates the custom fields, options, pipeline, stages, activity types and "
    "organization labels the approved mapping needs, and records this account's keys in the field registry. "
    "Idempotent; refuses the whole step when the plan's custom-field headroom is too small.",
)
def pipedrive_schema(context: dg.AssetExecutionContext, duckdb: DuckDBResource, pipedrive: PipedriveResource,
                     project: ProjectPaths) -> dg.MaterializeResult:
    approved = mapping_store.require_approved(project.paths)
    with duckdb.get_connection() as con, pipedrive.client() as client, \
            metered(Ledger.in_folder(project.paths.root), client, context.partition_key, "pipedrive_schema"):
        try:
            result = provision_schema(client, approved, con, run_key=context.partition_key,
                                      audit=_audit_if_any(project.paths, context.partition_key))
        except UserError as e:
            raise user_failure(e) from None
        spent = client.tokens_spent
    created = [*result.created_fields, *(f"{k}: {', '.join(v)}" for k, v in result.added_options.items()),
               *([f"pipeline {result.created_pipeline}"] if result.created_pipeline else []),
               *(f"stage {s}" for s in result.created_stages),
               *(f"activity type {t}" for t in result.created_activity_types)]
    return dg.MaterializeResult(metadata={
        "created": len(created),
        "created_items": table([{"item": c} for c in created], columns=["item"]),
        "reused_fields": len(result.reused_fields),
        "warnings": table([{"warning": w} for w in result.warnings], columns=["warning"]),
        "tokens_spent": spent,
    })


@dg.asset(
    group_name=GROUP, kinds={"markdown"}, partitions_def=migration_runs,
    deps=[proposed_mapping, owner_resolution],
    description="The migration scope document: inventory, what maps 1:1 and what needs a transform, "
    "hierarchies to flatten, fields to create vs headroom, unmatched owners, what will not migrate, requests "
    "and tokens per entity, days of token budget and hours of burst-limited time, complexity grade, the "
    "work orders the archive cutoff archives per organization, and the calendar: days per record plan and Pipedrive plan at the account's seats, and what more seats save.",
)
def scope_doc(context: dg.AssetExecutionContext, project: ProjectPaths, duckdb: DuckDBResource) -> dg.MaterializeResult:
    paths = project.paths
    run_key = context.partition_key
    profile = mapping_store.load_profile(paths, run_key)
    audit = mapping_store.load_audit(paths, run_key)
    mapping = mapping_store.current_mapping(paths, profile, audit)
    with duckdb.get_connection() as con:
        archive = run_archive_scope(paths, run_key, mapping, con)
    text = scope_document(profile, mapping, audit, mapping_store.load_owners(paths, run_key), archive=archive)
    path = paths.reports / run_key / "scope.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return dg.MaterializeResult(metadata={"document": md_document(text, path),
                                          "path": dg.MetadataValue.path(str(path))})


mapping_assets = [source_profile, pipedrive_account_audit, owner_resolution, proposed_mapping, pipedrive_schema, scope_doc]
