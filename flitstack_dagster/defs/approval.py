"""Approval from the UI: the `approve_mapping` job writes the approved mapping from the launchpad.

An op job, not an asset: approving records the lead's decision; the `proposed_mapping` asset's
`mapping_approved` check judges it on the next materialization. The work is
`mapping.approval.approve_proposed`, the same function `flitstack mapping approve` calls.
"""

from typing import Optional
from urllib.parse import quote, urlencode

import dagster as dg
import yaml
from pydantic import Field

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.settings import dagster_ui_url
from flitstack_dagster.defs.loading import user_failure
from flitstack_dagster.defs.metadata import table
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.mapping.approval import Override, approve_proposed
from flitstack_dagster.mapping.model import DEFAULT_RECORD_PLAN, RECORD_PLANS
from flitstack_dagster.mapping.review import BLOCKING_COLUMNS, blocking_values
from flitstack_dagster.mapping.store import approved_path, proposed_path

OP = "approve_proposed_mapping"


class ValueOverride(dg.Config):
    field: str = Field(description="The value list as the proposal names it: work_orders.Status for statuses, "
                       "work_orders.Priority, contacts.Department ID, work_orders.UDF: Ward, ...")
    source_value: str = Field(description="The Novo value, as written in the proposal.")
    target: Optional[str] = Field(
        default=None,
        description="Leave out to confirm the proposal as proposed. A status: a stage, or 'Stage (won)' / "
        "'Stage (lost)'. Any other value: the Pipedrive option ('' leaves the field empty; a new option is added).",
    )


class ApproveMappingConfig(dg.Config):
    approved_by: str = Field(description="Who approves the mapping (recorded in the approved file).")
    proposal_hash: str = Field(description="The proposal_hash shown on the proposed_mapping asset: what you "
                               "reviewed. A proposal that changed since is refused.")
    record_plan: str = Field(default=DEFAULT_RECORD_PLAN,
                             description=f"How work orders become records: one of {', '.join(RECORD_PLANS)}.")
    archive_before: Optional[str] = Field(
        default=None, description="Optional archive cutoff (YYYY-MM-DD): work orders closed before it go into one "
        "archive file per organization instead of deals; 'none' removes an earlier cutoff.")
    overrides: list[ValueOverride] = Field(
        default_factory=list,
        description="Your decision for each value marked DECIDE or unmapped (the mapping_approved check lists them).",
    )


@dg.op(
    name=OP,
    description="Approve the proposed mapping with your value decisions and record plan; writes "
    "mapping/approved.yaml (your earlier edits kept), stamped with who, when and the proposal's hash.",
)
def approve_proposed_mapping(context: dg.OpExecutionContext, config: ApproveMappingConfig, project: ProjectPaths):
    paths = project.paths
    overrides = [Override(o.field, o.source_value, o.target) for o in config.overrides]
    try:
        m = approve_proposed(proposed_path(paths), approved_path(paths), config.approved_by,
                             record_plan=config.record_plan, archive_before=config.archive_before,
                             overrides=overrides, proposal_hash=config.proposal_hash)
    except UserError as e:
        raise user_failure(e) from None
    still = blocking_values(m)
    if still:
        context.log.warning(f"{len(still)} value(s) still need a decision: the load stays blocked until they have one.")
    return dg.Output(str(approved_path(paths)), metadata={
        "approved_by": m.approved_by or "",
        "record_plan": m.record_plan,
        "archive_before": str(m.archive_before or "none"),
        "proposal_hash": m.proposal_hash or "",
        "approved_file": dg.MetadataValue.path(str(approved_path(paths))),
        "still_blocking": table(still, columns=BLOCKING_COLUMNS),
    })


@dg.job(description="Approve the proposed mapping from the launchpad: who approves, the record plan, your value "
        "decisions and the proposal's hash. The `mapping_approved` check passes on the next materialization.")
def approve_mapping():
    approve_proposed_mapping()


def launchpad_example(proposal_hash: str, blocking: list[dict], record_plan: str = DEFAULT_RECORD_PLAN) -> str:
    """The `approve_mapping` launchpad config for this proposal: each blocking value as an override to fill in
    (no target confirms it as proposed)."""
    overrides = [{"field": b["field"], "source_value": b["source_value"], "target": b["proposed"]} for b in blocking]
    config = {"approved_by": "YOUR NAME", "record_plan": record_plan, "proposal_hash": proposal_hash,
              "overrides": overrides}
    return yaml.safe_dump({"ops": {OP: {"config": config}}}, sort_keys=False, allow_unicode=True)


# The code location's repository when it is built from one Definitions object: the UI leaves it out of paths.
SINGLE_REPOSITORY = "__repository__"
DEFAULT_LOCATION = "flitstack_dagster"
# A longer link would not fit the webserver's request line: the launchpad then opens without the example.
MAX_URL = 8000


def launchpad_link(run: dg.DagsterRun, config_yaml: str) -> dg.MetadataValue:
    """The `approve_mapping` launchpad in the Dagster UI, opened with this config, in the code location that
    ran `run` (the default one when run outside the UI)."""
    origin = run.remote_job_origin
    location = origin.location_name if origin else DEFAULT_LOCATION
    repository = origin.repository_origin.repository_name if origin else SINGLE_REPOSITORY
    repo_path = location if repository == SINGLE_REPOSITORY else f"{repository}@{location}"
    base = f"{dagster_ui_url()}/locations/{quote(repo_path)}/jobs/{approve_mapping.name}/playground"
    url = f"{base}/setup?{urlencode({'config': config_yaml})}"
    return dg.MetadataValue.url(url if len(url) <= MAX_URL else base)
