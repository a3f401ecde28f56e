"""`shape_all`: every staged entity of one run -> every pd_* frame, set-aside rows, warnings and the
reconciliation, in foreign-key order (organizations, relationships, persons, deals, activities,
notes, files). Each step only references records shaped before it or already loaded
(`ctx.already_loaded`), so the checks can prove every reference resolves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.shaping import accounting, folding
from flitstack_dagster.shaping.archive import split_archive
from flitstack_dagster.shaping.activities import activity_parts
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    SET_ASIDE_SCHEMA,
    WARNING_SCHEMA,
    Owners,
    ShapeContext,
    Shaped,
    concat,
    empty_output,
    finished,
)
from flitstack_dagster.shaping.deals import description_notes, shape_deals
from flitstack_dagster.shaping.files import shape_files
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.notes import note_parts
from flitstack_dagster.shaping.org_relationships import asset_hierarchy, shape_org_relationships
from flitstack_dagster.shaping.organizations import shape_organizations
from flitstack_dagster.shaping.persons import shape_persons
from flitstack_dagster.shaping.tally import PREVIEW_ROWS, REFERENCE_TARGETS, OutputTally

OUTPUTS = tuple(e.shaped_table for e in ENTITIES)


def empty_outputs() -> dict[str, pl.DataFrame]:
    return {name: empty_output(files=name == "pd_files") for name in OUTPUTS}


@dataclass
class ShapedRun:
    """A shaped run. Streamed (`shape_all(..., sink=)`): the pd_* frames went to the sink and stay
    empty here, `tally` keeps what checks and metadata need. Otherwise every frame is held; each is
    also an attribute (`run.pd_deals`)."""

    run_key: str
    frames: dict[str, pl.DataFrame] = field(default_factory=empty_outputs)
    set_aside: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SET_ASIDE_SCHEMA))
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WARNING_SCHEMA))
    reconciliation: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=accounting.RECON_SCHEMA))
    hierarchy: pl.DataFrame | None = None
    tally: OutputTally | None = None
    staged_rows: dict[str, int] = field(default_factory=dict)  # per entity, before shaping

    def __getattr__(self, name: str) -> pl.DataFrame:
        frames = self.__dict__.get("frames", {})
        if name in frames:
            return frames[name]
        raise AttributeError(name)

    def __setattr__(self, name: str, value) -> None:
        if name in self.__dict__.get("frames", {}):
            self.frames[name] = value
        else:
            super().__setattr__(name, value)

    def outputs(self) -> dict[str, pl.DataFrame]:
        return dict(self.frames)

    def height(self, name: str) -> int:
        return self.tally.heights.get(name, 0) if self.tally is not None else getattr(self, name).height

    def preview(self, name: str) -> pl.DataFrame:
        """First rows (source_id, kind, payload) of an output, for asset metadata."""
        if self.tally is not None:
            return self.tally.previews.get(name, empty_output().select("source_id", "kind", "payload"))
        return getattr(self, name).head(PREVIEW_ROWS).select("source_id", "kind", "payload")


Sink = Callable[[str, pl.DataFrame], None]


def shape_all(inputs: StagedInputs, mapping: Mapping, owners: Owners, ctx: ShapeContext, sink: Sink | None = None) -> ShapedRun:
    """Shape every output in foreign-key order. With a `sink`, each output is handed to it as soon as
    it is shaped and only its tally is kept, and each staged frame is released (emptied) once no later
    step reads it, so at scale little more than one output is alive at a time."""
    loaded = pl.Series(sorted(ctx.already_loaded), dtype=pl.String)
    run = ShapedRun(run_key=ctx.run_key, staged_rows={e: inputs.height(e) for e in StagedInputs.entities()})
    keys = accounting.RowKeys()
    tally = OutputTally(already_loaded=ctx.already_loaded)
    kept: list[Shaped] = []  # set-aside rows and warnings of every output

    def release(*entities: str) -> None:
        keys.take(inputs, *entities)
        if sink is not None:
            inputs.release(*entities)

    def emit(name: str, shaped: Shaped, done_with: tuple[str, ...] = ()) -> pl.Series:
        """Hand an output (or one part of it) on; for a reference target, returns its source ids plus
        those already loaded."""
        ids = pl.concat([shaped.frame["source_id"], loaded]) if name in REFERENCE_TARGETS else loaded
        tally.add(name, shaped.frame)
        if sink is None:
            setattr(run, name, pl.concat([getattr(run, name), shaped.frame]) if tally.heights[name] > shaped.frame.height
                    else shaped.frame)
        else:
            sink(name, shaped.frame)
        release(*done_with)
        kept.append(Shaped(shaped.frame.clear(), shaped.set_aside, shaped.warnings))
        return ids

    hierarchy = asset_hierarchy(inputs.assets)
    org_ids = emit("pd_organizations", shape_organizations(
        inputs.accounts, inputs.assets, inputs.departments, inputs.asset_parts, inputs.inventory, hierarchy,
        mapping, owners, ctx,
    ), done_with=("accounts",))
    emit("pd_org_relationships", shape_org_relationships(inputs.assets, hierarchy, org_ids, ctx), done_with=("assets",))
    archive = split_archive(inputs, mapping, org_ids, ctx, ctx.archive_dir)  # closed before the cutoff: one file per org
    if archive.rest is not inputs:  # the archive took rows: every row is accounted for as staged
        keys.take(inputs, *StagedInputs.entities())
    inputs = archive.rest
    person_ids = emit("pd_persons", shape_persons(
        inputs.contacts, inputs.departments, inputs.quarantine, org_ids, mapping, owners, ctx), done_with=("departments",))
    lines = folding.folded_lines(inputs, mapping, ctx)
    run_deals = inputs.work_orders.select(sid("work_order", "wo_number"))[:, 0]
    resent = folding.resent_deals(ctx.prior_deals, lines, run_deals)
    if ctx.prior_lines is not None:  # a delta: the lines already loaded stay, this run's replace theirs
        lines = folding.with_prior(lines, ctx.prior_lines, run_deals)
    sending = pl.concat([run_deals, resent["source_id"]]) if resent.height else run_deals
    texts, to_note = folding.field_texts(lines, mapping, sending, folding.in_notes(ctx.prior_lines))
    deals = shape_deals(inputs.work_orders, inputs.labor, inputs.parts_used, inputs.contacts, org_ids, person_ids,
                        mapping, owners, ctx, folded=texts if folding.fold_fields(mapping) else None)
    if resent.height:  # work orders this delta has facts of but does not send: their deal's fields again
        deals = Shaped(pl.concat([deals.frame, folding.with_texts(resent, texts, mapping, ctx)]), deals.set_aside,
                       deals.warnings)
    long_descriptions = description_notes(inputs.work_orders, deals.frame["source_id"], mapping, ctx)
    deal_ids = emit("pd_deals", deals, done_with=("work_orders",))
    del deals, texts
    lines, orphans = folding.split_orphans(lines, deal_ids, ctx)
    tally.fold("pd_deals", folding.folded_ids(lines.join(to_note, on="fact_id", how="anti")))
    tally.fold("pd_notes", folding.folded_ids(lines.join(to_note, on="fact_id", how="semi")))
    timeline = folding.timeline_notes(to_note.filter(in_set(pl.col("deal_ref"), deal_ids)), ctx, run_deals)
    for part in activity_parts(
        inputs.labor, inputs.parts_used, inputs.notes, inputs.pm_schedules, inputs.contacts, inputs.inventory,
        org_ids, person_ids, deal_ids, mapping, owners, ctx,
    ):
        emit("pd_activities", part)
    release("labor", "parts_used")
    for part in note_parts(
        inputs.status_log, inputs.notes, inputs.pm_history, inputs.pm_schedules, inputs.asset_parts, inputs.inventory,
        inputs.contacts, long_descriptions, org_ids, person_ids, deal_ids, mapping.options.currency, ctx, mapping,
    ):
        emit("pd_notes", part)
    if timeline.height or orphans.height:
        emit("pd_notes", Shaped(finished(Shaped(timeline), ctx).frame if timeline.height else empty_output(), orphans))
    del lines, to_note, timeline
    release("status_log", "notes", "pm_history")
    emit("pd_files", shape_files(inputs.attachments, org_ids, deal_ids, mapping, ctx, archive.orgs()),
         done_with=("attachments",))
    if archive.files.frame.height:
        emit("pd_files", finished(archive.files, ctx, files=True))
        tally.fold("pd_files", archive.archived)

    run.set_aside = concat([p.set_aside for p in kept], SET_ASIDE_SCHEMA)
    run.warnings = concat([p.warnings for p in kept], WARNING_SCHEMA)
    run.hierarchy = hierarchy
    run.tally = tally if sink is not None else None
    run.reconciliation = accounting.reconcile(keys.frame(inputs), tally, run.set_aside, ctx)
    return run
