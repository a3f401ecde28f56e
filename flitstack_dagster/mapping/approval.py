"""Approval: the user confirms the mapping; the check blocks the load until it covers the data.

* `approve(proposed, approved, who, profile_hash, record_plan=, archive_before=, overrides=, proposal_hash=)` — the one
  way the CLI and the `approve_mapping` job approve — writes `mapping/approved.yaml`: the proposal on
  first approval; afterwards the user's approved file with anything new from the proposal added
  (new columns, statuses, values — unmapped ones stay `null`), stamped with who approved, when, the
  proposal's content hash and the profile hash it was approved against. Edits the user makes to
  `approved.yaml` (e.g. `Awaiting Parts: {stage: On Hold}`) are the mapping: the next check and
  run use them as written.
* `check_approval(approved, proposed, profile)` returns one readable line per problem; an empty list
  means the load may go. Kinds: missing approval; changed since approval (the profile or proposal
  hash differs *and* the data or proposal holds something the approval does not cover); unmapped
  values still present in the data; values in the data the approval does not cover; values proposed
  below the confidence threshold the lead has neither confirmed nor changed; invalid
  targets (unknown stage, option not offered by the field, unknown standard field, …); rows edited to
  a target the product can't honour (`activity_rows.py`: each refused in one sentence naming the
  targets the row can take — `approve` refuses them too).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.activity_rows import fixed_rows_changed, refused_rows
from flitstack_dagster.mapping.decisions import Override, apply_overrides
from flitstack_dagster.mapping.model import RECORD_PLANS, FieldMapping, Mapping
from flitstack_dagster.mapping.profile import SourceProfile
from flitstack_dagster.mapping.yamlio import decisions_needed, load_mapping, write_mapping
from flitstack_dagster.novo.columns import BY_ENTITY

APPROVED_WHAT = ("Approved mapping: edit it freely (your edits are the mapping); "
                 "re-run `flitstack mapping approve` to stamp it.")

# Standard (non-custom) Pipedrive targets the shaping knows, per target entity.
STANDARD_TARGETS: dict[str, set[str]] = {
    "deal": {"title", "value", "currency", "stage_id", "status", "owner_id", "person_id", "org_id", "won_time",
             "lost_time", "close_time", "expected_close_date", "label_ids", "lost_reason", "pipeline_id",
             "probability", "visible_to"},
    "person": {"name", "first_name", "last_name", "emails", "phones", "org_id", "owner_id", "add_time",
               "job_title", "label_ids", "visible_to", "notes", "birthday", "postal_address"},
    "organization": {"name", "address", "owner_id", "add_time", "label_ids", "visible_to", "relationship:parent"},
    "activity": {"subject", "type", "due_date", "due_time", "duration", "note", "deal_id", "org_id", "person_id",
                 "owner_id", "done", "public_description", "location", "busy", "priority"},
    "note": {"content", "deal_id", "org_id", "person_id", "add_time"},
    "file": {"file", "deal_id", "org_id", "person_id"},
    "none": set(),
}
CREATABLE = {"varchar", "text", "double", "monetary", "date", "enum", "set", "org", "person", "user"}
# UDF data type -> field types an approval may use for it
UDF_ACCEPTS = {
    "Pick List": {"enum", "varchar", "text"}, "Multi Pick List": {"set", "varchar", "text"},
    "Currency": {"monetary", "double", "varchar"}, "Number": {"double", "monetary", "varchar"},
    "Date": {"date", "varchar"}, "Yes/No": {"enum", "varchar"}, "Text": {"varchar", "text"},
    "Long Text": {"text", "varchar"},
}


def waive_sample_verification(approved_path: Path | str) -> None:
    """Let a full run load without a verified sample first (`options.waive_sample_verification` in
    the approved file, as a migration lead would set it by hand); the rest of the file is kept."""
    m = load_mapping(approved_path)
    if not m.options.waive_sample_verification:
        m.options.waive_sample_verification = True
        write_mapping(approved_path, m, APPROVED_WHAT)


def merge(base: Mapping, proposal: Mapping) -> Mapping:
    """`base` (the user's approved mapping) plus whatever the proposal has that base lacks."""
    out = base.model_copy(deep=True)
    have = {(f.source_entity, f.source_column) for f in out.fields}
    for f in proposal.fields:
        if (f.source_entity, f.source_column) not in have:
            out.fields.append(f.model_copy(deep=True))
    for s, t in proposal.status_map.items():
        if s not in out.status_map:
            out.status_map[s] = t.model_copy() if t else None
    for key, vm in proposal.value_maps.items():
        tgt = out.value_maps.setdefault(key, {})
        for v, t in vm.items():
            tgt.setdefault(v, t)
    for key, props in proposal.value_proposals.items():
        mine = out.value_proposals.setdefault(key, {})
        for v, p in props.items():
            if v not in mine:
                mine[v] = p.model_copy()
    if not out.objects:
        out.objects = [o.model_copy() for o in proposal.objects]
    return out


def objects_changed(approved: Mapping, proposed: Mapping) -> list[str]:
    """The objects table describes what the product does; an edit to it would change nothing, so it is refused."""
    if [o.model_dump() for o in approved.objects] == [o.model_dump() for o in proposed.objects]:
        return []
    mine = {(o.source, o.target): o for o in approved.objects}
    edited = [f"{o.source} → {o.target}" for o in proposed.objects if mine.get((o.source, o.target)) != o]
    extra = [f"{o.source} → {o.target}" for o in approved.objects
             if (o.source, o.target) not in {(p.source, p.target) for p in proposed.objects}]
    return [f"objects row '{w}' can't be changed: it describes what the product does; restore it from "
            "the proposal and change the fields rows instead" for w in edited + extra]


NO_ARCHIVE = ("", "none")  # what clears an archive cutoff chosen at an earlier approval


def archive_cutoff(value: str | date | None, current: date | None) -> date | None:
    """The archive cutoff an approval records: `value` as a date, the approved file's when None, no cutoff
    for "" or "none"."""
    if value is None:
        return current
    if isinstance(value, date):
        return value
    text = value.strip()
    if text.casefold() in NO_ARCHIVE:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"archive cutoff '{text}' is not a date: write it as YYYY-MM-DD (e.g. 2020-01-01), "
                        "or 'none' to archive nothing.") from None


STALE_PROPOSAL = ("the proposal changed since you read it: re-read the proposed mapping (its hash is on the "
                  "`proposed_mapping` asset and in mapping/proposed.yaml) and approve it with its new hash.")


def approve(proposed_path: Path | str, approved_path: Path | str, who: str, profile_hash: str | None,
            now: datetime | None = None, *, record_plan: str | None = None, archive_before: str | date | None = None,
            overrides: Iterable[Override] = (), proposal_hash: str | None = None) -> Mapping:
    """Approve the proposal (merged into an existing approved file) with the lead's value decisions and
    record plan and archive cutoff (None keeps the approved file's), and stamp who/when/hashes. `proposal_hash`, when given,
    must be the proposal's own: the lead approves what they read, never a proposal that changed since."""
    who = (who or "").strip()
    if not who:
        raise UserError("say who approves the mapping: `approved_by` in the approve_mapping job, or "
                        "`flitstack mapping approve --by NAME`.")
    if record_plan is not None and record_plan not in RECORD_PLANS:
        raise UserError(f"record plan '{record_plan}' does not exist: choose one of {', '.join(RECORD_PLANS)}.")
    archive_cutoff(archive_before, None)  # a cutoff that is not a date is refused before anything is read
    proposed = load_mapping(proposed_path)
    if proposal_hash is not None and proposal_hash.strip() != proposed.content_hash():
        raise UserError(STALE_PROPOSAL)
    ap = Path(approved_path)
    merged = merge(load_mapping(ap), proposed) if ap.exists() else proposed.model_copy(deep=True)
    apply_overrides(merged, overrides)
    refused = refused_rows(merged) + fixed_rows_changed(merged, proposed) + objects_changed(merged, proposed)
    if refused:
        raise UserError(f"{ap} was not approved:\n  - " + "\n  - ".join(refused))
    merged.approved_by = who
    merged.approved_at = (now or datetime.now(UTC)).replace(microsecond=0)
    merged.record_plan = record_plan or merged.record_plan
    merged.archive_before = archive_cutoff(archive_before, merged.archive_before)
    merged.proposal_hash = proposed.content_hash()
    merged.profile_hash = profile_hash
    write_mapping(ap, merged, APPROVED_WHAT)
    return merged


def approve_proposed(proposed_path: Path | str, approved_path: Path | str, who: str, **decisions) -> Mapping:
    """What `flitstack mapping approve` and the `approve_mapping` job both call: the proposal on disk,
    approved against the source profile it was proposed from (`decisions`: see `approve`)."""
    if not Path(proposed_path).exists():
        raise UserError(f"there is no proposed mapping at {proposed_path} yet: materialize the `proposed_mapping` "
                        "asset first.")
    return approve(proposed_path, approved_path, who, load_mapping(proposed_path).profile_hash, **decisions)


# ----------------------------------------------------------------------------------------------


def _n(count: int | None, what: str) -> str:
    if not count:
        return ""
    return f" ({count} {what}{'' if count == 1 else 's'})"


def _noun(entity: str) -> str:
    nf = BY_ENTITY.get(entity)
    return nf.label if nf and nf.label else "row"


def _value_map_field(m: Mapping, key: str) -> FieldMapping | None:
    for f in m.fields:
        if f.transform == f"value_map:{key}":
            return f
    ent, _, col = key.partition(".")
    return m.field(ent, col)


def _coverage(approved: Mapping, proposed: Mapping, profile: SourceProfile) -> tuple[list[str], list[str], list[str]]:
    """(unmapped in data, values in data not covered, columns/definitions not covered)."""
    unmapped: list[str] = []
    uncovered: list[str] = []
    columns: list[str] = []
    for s, n in sorted(profile.value_sets.get("work_orders.Status", {}).items()):
        if s not in approved.status_map:
            uncovered.append(f"work order status '{s}'{_n(n, 'work order')} is in the data but not in the "
                             f"approved mapping: add status_map['{s}'] with a stage")
        elif approved.status_map[s] is None:
            unmapped.append(f"work order status '{s}'{_n(n, 'work order')} is unmapped: set status_map['{s}'] "
                            f"to a stage of {approved.pipeline_stages}")
    keys = sorted(set(proposed.value_maps) | set(approved.value_maps))
    for key in keys:
        seen = profile.value_sets.get(key)
        if not seen:
            continue
        vm = approved.value_maps.get(key)
        if vm is None:
            uncovered.append(f"value map '{key}' is missing from the approved mapping "
                             f"({len(seen)} distinct value(s) in the data): add value_maps['{key}']")
            continue
        ent = key.partition(".")[0]
        for v, n in sorted(seen.items()):
            if v not in vm:
                uncovered.append(f"{key} value '{v}'{_n(n, _noun(ent))} is in the data but not in "
                                 f"the approved mapping: add value_maps['{key}']['{v}']")
            elif vm[v] is None:
                unmapped.append(f"{key} value '{v}'{_n(n, _noun(ent))} is unmapped: set "
                                f"value_maps['{key}']['{v}'] to an option (or \"\" to leave it empty)")
    have = {(f.source_entity, f.source_column) for f in approved.fields}
    for f in proposed.fields:
        if (f.source_entity, f.source_column) in have:
            continue
        ep = profile.entity(f.source_entity)
        if ep is not None and ep.staged and ep.column(f.source_column) is None and f.source_column.startswith("UDF"):
            continue
        have.add((f.source_entity, f.source_column))
        target = f"{f.target_entity}.{f.target_field}" if f.target_field else "not migrated"
        columns.append(f"column {f.source_entity}.'{f.source_column}' is not in the approved mapping "
                       f"(proposed: {target}): confirm it")
    for u in profile.udfs:
        af = approved.field(u.source_entity, u.column)
        if af is None or af.target_entity == "none" or not af.custom or af.field_type is None:
            continue
        ok = UDF_ACCEPTS.get(u.data_type)
        if ok and af.field_type not in ok:
            columns.append(f"UDF {u.source_entity}.'{u.column}' is declared as {u.data_type} but the approved "
                           f"field '{af.target_field}' is {af.field_type}: confirm its type")
    return unmapped, uncovered, columns


def _invalid(m: Mapping) -> list[str]:
    out: list[str] = []
    stages = list(m.pipeline_stages)
    if not stages:
        out.append("pipeline_stages is empty: the pipeline needs at least one stage")
    if len(set(stages)) != len(stages):
        out.append(f"pipeline_stages has duplicates: {stages}")
    for s, t in m.status_map.items():
        if t is None:
            continue
        if t.stage not in stages:
            out.append(f"status_map['{s}'].stage '{t.stage}' is not a stage of pipeline "
                       f"'{m.options.pipeline_name}' (stages: {', '.join(stages)})")
        if t.lost_reason and t.status != "lost":
            out.append(f"status_map['{s}'] has a lost_reason but status '{t.status}' (only lost deals have one)")
    types: dict[tuple[str, str], str] = {}
    for f in m.fields:
        where = f"fields {f.source_entity}.'{f.source_column}' → {f.target_entity}.{f.target_field}"
        if f.target_entity == "none":
            continue
        if f.custom:
            if not f.target_field:
                out.append(f"{where}: a custom field needs a target_field name")
                continue
            if f.target_entity in ("activity", "note", "file"):
                out.append(f"{where}: custom fields can only be created on deal, person or organization")
                continue
            if f.field_type not in CREATABLE:
                out.append(f"{where}: field_type {f.field_type!r} is not one of {', '.join(sorted(CREATABLE))}")
                continue
            if f.field_type in ("enum", "set") and not f.options:
                out.append(f"{where}: an {f.field_type} field needs options")
            k = (f.target_entity, f.target_field.casefold())
            if k in types and types[k] != f.field_type:
                out.append(f"{where}: '{f.target_field}' is also mapped as {types[k]} — one field, one type")
            types.setdefault(k, f.field_type)
        elif f.target_field is not None and f.target_field not in STANDARD_TARGETS.get(f.target_entity, set()):
            out.append(f"{where}: '{f.target_field}' is not a standard {f.target_entity} field; set custom: true and "
                       f"a field_type to create it")
    for key, vm in m.value_maps.items():
        f = _value_map_field(m, key)
        if f is None:
            out.append(f"value_maps['{key}'] belongs to no mapped column")
            continue
        if f.target_entity == "none" or not f.options:
            continue
        for v, t in vm.items():
            if t is None or t == "":
                continue
            if t not in f.options:
                out.append(f"value_maps['{key}']['{v}'] → '{t}' is not an option of '{f.target_field}' "
                           f"(options: {', '.join(f.options)}); add it to the field's options or pick one")
    return out


def check_approval(approved: Mapping | None, proposed: Mapping, profile: SourceProfile) -> list[str]:
    """Every reason the load must wait, one readable line each; [] when the approval covers the data."""
    if approved is None:
        return [("no approved mapping: review the proposal (the `proposed_mapping` asset or mapping/proposed.yaml), "
                 "then launch the `approve_mapping` job or run `flitstack mapping approve --by NAME`")]
    problems: list[str] = []
    if not approved.approved_by:
        problems.append("mapping/approved.yaml is not approved yet: launch the `approve_mapping` job or run "
                        "`flitstack mapping approve --by NAME`")
    unmapped, uncovered, columns = _coverage(approved, proposed, profile)
    changed = uncovered + columns
    if changed:
        if approved.profile_hash and approved.profile_hash != profile.profile_hash:
            problems.append(f"the source data changed since approval (profile {approved.profile_hash[:12]} → "
                            f"{profile.profile_hash[:12]}): {len(changed)} item(s) below are not covered; "
                            "confirm them and re-run `flitstack mapping approve`")
        if approved.proposal_hash and approved.proposal_hash != proposed.content_hash():
            problems.append(f"the proposal changed since approval (proposal {approved.proposal_hash[:12]} → "
                            f"{proposed.content_hash()[:12]}): confirm the items below")
    problems += unmapped + uncovered + columns + decisions_needed(approved, profile.value_sets) + _invalid(approved)
    problems += refused_rows(approved) + fixed_rows_changed(approved, proposed) + objects_changed(approved, proposed)
    return problems


def require_approval(approved: Mapping | None, proposed: Mapping, profile: SourceProfile) -> None:
    """Raise a UserError listing every problem (for the CLI and the Dagster check)."""
    problems = check_approval(approved, proposed, profile)
    if problems:
        raise UserError("the mapping is not approved for this data:\n  - " + "\n  - ".join(problems))


__all__ = ["STALE_PROPOSAL", "Override", "approve", "approve_proposed", "check_approval", "merge", "require_approval"]
