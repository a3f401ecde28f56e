"""`shape_all`: every staged entity of one run -> every pd_* frame, set-aside rows, warnings and the
reconciliation, in foreign-key order (organizations, relationships, persons, deals, activities,
notes, files). Each step only references records shaped before it or already loaded
(`ctx.already_loaded`), so the checks can prove every reference resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.shaping import accounting
from flitstack_dagster.shaping.activities import shape_activities
from flitstack_dagster.shaping.common import (
    SET_ASIDE_SCHEMA,
    WARNING_SCHEMA,
    Owners,
    ShapeContext,
    concat,
    empty_output,
)
from flitstack_dagster.shaping.deals import description_notes, shape_deals
from flitstack_dagster.shaping.files import shape_files
from flitstack_dagster.shaping.inputs import StagedInputs
from flitstack_dagster.shaping.notes import shape_notes
from flitstack_dagster.shaping.org_relationships import asset_hierarchy, shape_org_relationships
from flitstack_dagster.shaping.organizations import shape_organizations
from flitstack_dagster.shaping.persons import shape_persons

OUTPUTS = ("pd_organizations", "pd_org_relationships", "pd_persons", "pd_deals", "pd_activities", "pd_notes", "pd_files")


@dataclass
class ShapedRun:
    run_key: str
    pd_organizations: pl.DataFrame = field(default_factory=empty_output)
    pd_org_relationships: pl.DataFrame = field(default_factory=empty_output)
    pd_persons: pl.DataFrame = field(default_factory=empty_output)
    pd_deals: pl.DataFrame = field(default_factory=empty_output)
    pd_activities: pl.DataFrame = field(default_factory=empty_output)
    pd_notes: pl.DataFrame = field(default_factory=empty_output)
    pd_files: pl.DataFrame = field(default_factory=lambda: empty_output(files=True))
    set_aside: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SET_ASIDE_SCHEMA))
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WARNING_SCHEMA))
    reconciliation: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=accounting.RECON_SCHEMA))
    hierarchy: pl.DataFrame | None = None

    def outputs(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in OUTPUTS}


def _ids(df: pl.DataFrame) -> set[str]:
    return set(df["source_id"].to_list())


def shape_all(inputs: StagedInputs, mapping: Mapping, owners: Owners, ctx: ShapeContext) -> ShapedRun:
    loaded = set(ctx.already_loaded)
    hierarchy = asset_hierarchy(inputs.assets)

    orgs = shape_organizations(
        inputs.accounts, inputs.assets, inputs.departments, inputs.asset_parts, inputs.inventory, hierarchy,
        mapping, owners, ctx,
    )
    org_ids = _ids(orgs.frame) | loaded
    rels = shape_org_relationships(inputs.assets, hierarchy, org_ids, ctx)

    persons = shape_persons(inputs.contacts, inputs.departments, inputs.quarantine, org_ids, mapping, owners, ctx)
    person_ids = _ids(persons.frame) | loaded

    deals = shape_deals(
        inputs.work_orders, inputs.labor, inputs.parts_used, inputs.contacts, org_ids, person_ids, mapping, owners, ctx
    )
    deal_ids = _ids(deals.frame) | loaded

    acts = shape_activities(
        inputs.labor, inputs.parts_used, inputs.notes, inputs.pm_schedules, inputs.contacts, inputs.inventory,
        org_ids, person_ids, deal_ids, mapping, owners, ctx,
    )
    notes = shape_notes(
        inputs.status_log, inputs.notes, inputs.pm_history, inputs.pm_schedules, inputs.asset_parts, inputs.inventory,
        inputs.contacts, description_notes(inputs.work_orders, _ids(deals.frame), mapping, ctx),
        org_ids, person_ids, deal_ids, mapping.options.currency, ctx,
    )
    files = shape_files(inputs.attachments, org_ids, deal_ids, mapping, ctx)

    parts = [orgs, rels, persons, deals, acts, notes, files]
    run = ShapedRun(
        run_key=ctx.run_key,
        pd_organizations=orgs.frame,
        pd_org_relationships=rels.frame,
        pd_persons=persons.frame,
        pd_deals=deals.frame,
        pd_activities=acts.frame,
        pd_notes=notes.frame,
        pd_files=files.frame,
        set_aside=concat([p.set_aside for p in parts], SET_ASIDE_SCHEMA),
        warnings=concat([p.warnings for p in parts], WARNING_SCHEMA),
        hierarchy=hierarchy,
    )
    run.reconciliation = accounting.reconcile(inputs, run.outputs(), run.set_aside, ctx)
    return run
