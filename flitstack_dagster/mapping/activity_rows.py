"""The rows of the mapping file behind activities and notes: which targets each can take, what shaping
reads from them, and the sentence that refuses an edit the product cannot honour.

Every labor, parts, PM, activity-log, status-log, PM-history, inventory and attachment row is listed
here with the targets it can take, its default (the proposal's) first. A row with one target can't be
changed; the others drive shaping: the record row (`Labor ID`, `Line ID`, `PM ID` → `activity.type`)
names the activity type in its `options`, and a detail column goes to its activity field, into the
activity's note, or nowhere (`none`).

The rows of the record files (accounts, assets, contacts, work orders) are honoured or refused too: a
column copied into a custom field may be renamed or dropped, a column not migrated may become a custom
field of its file's records, and a standard field or a structural row (identity, links, stage, owner,
sums) keeps the proposal's target.
"""

from __future__ import annotations

from flitstack_dagster.mapping.model import FOLDS, FieldMapping, Mapping

NOTE, NONE = "activity.note", "none"
TYPE = "activity.type"
LABOR_TYPE, PARTS_TYPE, PM_TYPE = "Work Order Labor", "Work Order Parts", "task"
# the row naming each kind's activity type, and its default type
RECORD_ROWS: dict[str, tuple[str, str]] = {
    "labor": ("Labor ID", LABOR_TYPE), "parts_used": ("Line ID", PARTS_TYPE), "pm_schedules": ("PM ID", PM_TYPE),
}
FOLD_SLOTS = {"labor": "labor", "parts_used": "parts"}  # record row -> its kind of fact in model.FOLDS
LABOR_COST, PARTS_COST = "deal.Labor_Cost__c", "deal.Parts_Cost__c"
_RECURRENCE = ("Trigger", "Frequency", "Every", "Recurrence Rule", "Start Date", "End Date", "Next Due")

# (source entity, column) -> the targets its rows can take, the default first
TARGETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("labor", "Labor ID"): (TYPE,),
    ("labor", "WO Number"): ("activity.deal_id",),
    ("labor", "Technician ID"): ("activity.owner_id",),
    ("labor", "Work Date"): ("activity.due_date",),
    ("labor", "Start Time"): ("activity.due_time", NOTE, NONE),
    ("labor", "Hours"): ("activity.duration", NOTE, NONE, LABOR_COST),
    ("labor", "Rate"): (NOTE, NONE, LABOR_COST),
    ("labor", "Labor Type"): (NOTE, NONE),
    ("labor", "Notes"): (NOTE, NONE),
    ("labor", "Date Added"): (NONE,),
    ("parts_used", "Line ID"): (TYPE,),
    ("parts_used", "WO Number"): ("activity.deal_id",),
    ("parts_used", "Part Number"): (NOTE,),
    ("parts_used", "Quantity"): (NOTE, PARTS_COST),
    ("parts_used", "Unit Cost"): (NOTE, NONE, PARTS_COST),
    ("parts_used", "Date Added"): ("activity.due_date",),
    ("pm_schedules", "PM ID"): (TYPE,),
    ("pm_schedules", "PM Name"): ("activity.subject",),
    ("pm_schedules", "Asset ID"): ("activity.org_id",),
    **{("pm_schedules", c): ("activity.due_date",) for c in _RECURRENCE},
    **{("pm_schedules", c): (NOTE, NONE) for c in ("Meter Name", "Meter Interval", "Last Meter Reading")},
    ("pm_schedules", "Assigned To ID"): ("activity.owner_id",),
    ("pm_schedules", "Estimated Hours"): ("activity.duration", NOTE, NONE),
    ("pm_schedules", "Procedure"): (NOTE, NONE),
    ("pm_schedules", "Active"): ("activity",),
    ("pm_schedules", "Date Added"): (NONE,),
    ("pm_schedules", "Date Modified"): (NONE,),
    ("notes", "Note ID"): (NONE,),
    ("notes", "WO Number"): ("activity.deal_id",),
    ("notes", "Asset ID"): ("activity.org_id",),
    ("notes", "Entry Type"): (TYPE,),
    ("notes", "Subject"): ("activity.subject",),
    ("notes", "Body"): (NOTE,),
    ("notes", "Internal"): (NOTE, NONE),
    ("notes", "Logged At"): ("activity.due_date",),
    ("notes", "Logged By ID"): ("activity.owner_id",),
}
# whole files whose rows can't be changed: their targets are the proposal's
FIXED_FILES = ("status_log", "pm_history", "inventory", "asset_parts", "attachments")


def target_of(f: FieldMapping) -> str:
    """`activity.note`, `deal.Labor_Cost__c`, `none` (an entity without a field reads as the entity)."""
    if f.target_entity == "none":
        return NONE
    return f"{f.target_entity}.{f.target_field}" if f.target_field else f.target_entity


def _rows(mapping: Mapping, entity: str, column: str) -> list[FieldMapping]:
    return [f for f in mapping.fields if f.source_entity == entity and f.source_column == column]


def detail_target(mapping: Mapping, entity: str, column: str) -> str:
    """Where a detail column of an activity goes: its activity field, `activity.note` or `none`
    (the default when the mapping has no row for it; deal cost rows are not the activity's)."""
    allowed = TARGETS[(entity, column)]
    for f in _rows(mapping, entity, column):
        t = target_of(f)
        if not t.startswith("deal.") and t in allowed:
            return t
    return allowed[0]


def in_note(mapping: Mapping, entity: str, column: str) -> bool:
    """Whether the column's value is written into the activity's note."""
    return detail_target(mapping, entity, column) == NOTE


def activity_type(mapping: Mapping, entity: str) -> str:
    """The activity type (name or key) the record row of `entity` names; the default without one."""
    column, default = RECORD_ROWS[entity]
    for f in _rows(mapping, entity, column):
        if target_of(f) == TYPE and len(f.options) == 1 and f.options[0].strip():
            return f.options[0].strip()
    return default


def record_row(entity: str) -> FieldMapping:
    """The proposal's record row of `entity`: which activity type its records become."""
    column, default = RECORD_ROWS[entity]
    what = {"labor": "labor entry", "parts_used": "part used", "pm_schedules": "PM occurrence"}[entity]
    return FieldMapping(source_entity=entity, source_column=column, target_entity="activity", target_field="type",
                        options=[default], transform="activity_type", reason=(
                            f"each {what} becomes an activity of this type (change the option to use another "
                            "activity type; a new one is created); its id is kept in the id map"))


def _say(targets: tuple[str, ...]) -> str:
    return targets[0] if len(targets) == 1 else ", ".join(targets[:-1]) + " or " + targets[-1]


def refused_rows(mapping: Mapping) -> list[str]:
    """One sentence per row edited to a target the product cannot honour (and per missing type name)."""
    out: list[str] = []
    for f in mapping.fields:
        where = f"fields {f.source_entity}.'{f.source_column}' → {target_of(f)}"
        allowed = TARGETS.get((f.source_entity, f.source_column))
        if allowed is None:
            continue
        if target_of(f) not in allowed:
            if len(allowed) == 1:
                out.append(f"{where} can't be changed: it can only take {allowed[0]}")
            else:
                out.append(f"{where} can't be honoured: it can take {_say(allowed)}")
        elif target_of(f) == TYPE and f.source_entity in RECORD_ROWS and (
                len(f.options) != 1 or not f.options[0].strip()):
            out.append(f"{where} needs exactly one option, the activity type its records become "
                       f"(e.g. [{RECORD_ROWS[f.source_entity][1]}])")
    return out


# transforms by which shaping builds a record's structure (identity, links, stage, owner, sums): their
# rows can't be moved, as the value is not copied into the field but computed from it
STRUCTURAL_TRANSFORMS = ("source_id", "hierarchy_parent", "account_parent", "status_map", "owner", "lookup",
                         "total_cost", "labor_cost", "parts_cost", "options_source", "id_map")


def structural(f: FieldMapping) -> bool:
    """A row shaping implements itself (identity, links, stage, owner, sums, `relationship:*`), not a
    column's value copied into the field it names."""
    return f.transform.startswith(STRUCTURAL_TRANSFORMS) or ":" in (f.target_field or "")


def editable(f: FieldMapping) -> bool:
    """A proposal row of a record file the lead may point elsewhere: one not migrated, or one copying its
    value into a custom or value-mapped field (renamed, or `none`). Standard fields, structural rows and
    the rows of fixed files are fixed; activity rows take the targets TARGETS lists."""
    if f.source_entity in FIXED_FILES or (f.source_entity, f.source_column) in TARGETS:
        return False
    if f.target_entity == "none":
        return True
    # a value-mapped column (labels or a custom enum, by what the account has) is read by its target too
    into_field = f.custom or f.transform.startswith("value_map:")
    return into_field and bool(f.target_field) and not structural(f)


def _record_entities(proposed: Mapping) -> dict[str, str]:
    """Source file -> the Pipedrive entity its records become (from the proposal's source-id rows)."""
    return {f.source_entity: f.target_entity for f in proposed.fields if f.transform.startswith("source_id")}


def fixed_rows_changed(approved: Mapping, proposed: Mapping) -> list[str]:
    """Rows edited in a way shaping would not honour, one sentence each: a fixed row (every row of a
    fixed file, a standard field, a structural row) moved off the proposal's target, or an editable row
    pointed at another entity than its file's records."""
    records = _record_entities(proposed)
    want: dict[tuple[str, str, str], list[FieldMapping]] = {}
    for f in proposed.fields:
        if (f.source_entity, f.source_column) not in TARGETS or structural(f):
            want.setdefault((f.source_entity, f.source_column, f.transform), []).append(f)
    out = []
    for f in approved.fields:
        rows = want.get((f.source_entity, f.source_column, f.transform))
        if not rows or target_of(f) in {target_of(r) for r in rows}:
            continue
        where = f"fields {f.source_entity}.'{f.source_column}' → {target_of(f)}"
        entity = records.get(f.source_entity)
        if entity and all(editable(r) for r in rows):
            if f.target_entity not in ("none", entity):
                out.append(f"{where} can't be honoured: {f.source_entity} rows become {entity} records, so it can "
                           f"take a field of {entity} or none")
            continue
        allowed = _say(tuple(dict.fromkeys(target_of(r) for r in rows)))
        why = "" if f.source_entity in FIXED_FILES else " (the record is built from it: a standard field or a link)"
        out.append(f"{where} can't be changed{why}: it can only take {allowed}")
    return out


def activity_types_used(mapping: Mapping) -> list[str]:
    """Every activity type the mapping sends records to: the record rows' (but those of facts the record
    plan folds into lines) and the activity-log map's."""
    folded = FOLDS.get(mapping.record_plan, {})
    out = [activity_type(mapping, e) for e in RECORD_ROWS if FOLD_SLOTS.get(e) not in folded]
    out += [t for t in (mapping.value_maps.get(ENTRY_TYPES) or {}).values() if t]
    return list(dict.fromkeys(out))


ENTRY_TYPES = "notes.Entry Type"  # value map: activity-log entry type -> activity type ("" = a note)

__all__ = ["ENTRY_TYPES", "FIXED_FILES", "NONE", "NOTE", "RECORD_ROWS", "STRUCTURAL_TRANSFORMS", "TARGETS", "structural",
           "activity_type", "activity_types_used", "detail_target", "editable", "fixed_rows_changed", "in_note", "record_row", "refused_rows"]
