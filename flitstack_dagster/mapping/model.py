"""The mapping file: what the product proposes and the user approves before any record moves.

It is the single contract between mapping (which writes it), shaping (which reads field names and
value maps from it) and loading (which resolves field names to the account's keys via the field
registry). Field names here are Pipedrive *names* (`Novo_Priority__c`, `title`), never account keys.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from flitstack_dagster.pipedrive.limits import MAX_FILE_BYTES

TargetEntity = Literal["organization", "person", "deal", "activity", "note", "file", "none"]
# Pipedrive custom-field types the product creates (v2 field_type values).
FieldType = Literal["varchar", "text", "double", "monetary", "date", "enum", "set", "org", "person", "user"]
FilePolicy = Literal["flag", "split"]
DeletionPolicy = Literal["flag", "delete"]
# How a work order's facts become Pipedrive records, chosen at approval; a new plan is added here only.
RecordPlan = Literal["complete", "balanced", "compact"]
RECORD_PLANS: tuple[str, ...] = get_args(RecordPlan)
DEFAULT_RECORD_PLAN: RecordPlan = "complete"
# What each plan folds into lines of text instead of records of their own (shaping/folding.py): kind of
# fact -> the deal's long-text field it goes to (a key of mapping.provision.PLAN_FIELDS), None = the
# deal's timeline note. `complete` folds nothing.
FOLDS: dict[str, dict[str, str | None]] = {
    "complete": {},
    "balanced": {"status": None, "parts": None, "log_note": None},
    "compact": {"status": "timeline", "log_note": "timeline", "labor": "labor", "parts": "parts"},
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MappingOptions(_Model):
    """Knobs the default mapping leaves to the migration lead."""

    fallback_owner_email: str | None = None  # None: the account's admin user
    deal_value_from_total: bool = True
    description_field_max: int = 255  # longer descriptions become the deal's first note
    pm_window_days: int = 90  # PM occurrences generated inside [exported_at, +N days)
    large_file_policy: FilePolicy = "flag"
    max_file_bytes: int = MAX_FILE_BYTES
    deletion_policy: DeletionPolicy = "flag"
    currency: str = "USD"
    pipeline_name: str = "Novo Work Orders"
    placeholder_org_name: str = "Novo – Unassigned Assets"
    waive_sample_verification: bool = False


class ObjectMapping(_Model):
    """One row of the object-mapping table: a Novo object and the Pipedrive record it becomes."""

    source: str  # e.g. "Work Order"
    target: str  # e.g. "Deal"
    cardinality: Literal["1:1", "1:many"] = "1:1"
    how: str  # one line


class FieldMapping(_Model):
    """One source column and where it lands."""

    source_entity: str  # novo.columns entity, e.g. "work_orders"
    source_column: str  # header label, e.g. "Priority" or "UDF: Council District"
    target_entity: TargetEntity
    target_field: str | None = None  # standard field key or custom field name; None when not migrated
    custom: bool = False  # True: a custom field the product creates if missing
    field_type: FieldType | None = None  # for custom fields
    options: list[str] = Field(default_factory=list)  # enum/set option labels
    transform: str = "copy"  # short name of the rule applied (see shaping), e.g. "money", "value_map:priority"
    confidence: float = 1.0
    reason: str = ""


class StatusTarget(_Model):
    """Where one work-order status lands: a stage of the pipeline and a deal status."""

    stage: str
    status: Literal["open", "won", "lost"] = "open"
    lost_reason: str | None = None


class ValueProposal(_Model):
    """Why a source value got its target: confidence, a one-line reason, and the lead's confirmation."""

    proposed: str  # the target as proposed: a stage (`Completed (won)`), an option label, or "" (left empty)
    confidence: float
    reason: str
    decision: Literal["map", "add option", "set aside"] = "map"
    confirmed: bool = False  # set by the lead (or the demo) for a proposal below the confidence threshold


class Mapping(_Model):
    version: Literal[1] = 1
    options: MappingOptions = Field(default_factory=MappingOptions)
    objects: list[ObjectMapping] = Field(default_factory=list)
    fields: list[FieldMapping] = Field(default_factory=list)
    pipeline_stages: list[str] = Field(
        default_factory=lambda: ["New", "Open", "Scheduled", "In Progress", "On Hold", "Completed"]
    )
    # status label -> target; None means "seen in the data, not mapped yet" (blocks the load).
    status_map: dict[str, StatusTarget | None] = Field(default_factory=dict)
    # value maps for pick-list style columns, keyed by "<entity>.<column label>",
    # e.g. "work_orders.Priority", "contacts.Role", "contacts.Department ID", "work_orders.UDF: Ward".
    # source value -> option label in Pipedrive; None means unmapped (blocks the load).
    value_maps: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    # the evidence behind each observed value's target, keyed like value_maps ("work_orders.Status" for statuses)
    value_proposals: dict[str, dict[str, ValueProposal]] = Field(default_factory=dict)
    # set by approval
    approved_by: str | None = None
    approved_at: datetime | None = None
    record_plan: RecordPlan = DEFAULT_RECORD_PLAN
    # work orders closed before this date go into one archive file per organization instead of deals
    # (shaping/archive.py); None archives nothing
    archive_before: date | None = None
    proposal_hash: str | None = None
    profile_hash: str | None = None

    def field(self, entity: str, column: str) -> FieldMapping | None:
        for f in self.fields:
            if f.source_entity == entity and f.source_column == column:
                return f
        return None

    def fields_for(self, target_entity: str) -> list[FieldMapping]:
        return [f for f in self.fields if f.target_entity == target_entity]

    def custom_fields(self) -> list[FieldMapping]:
        """Custom fields to provision, one per (target entity, name)."""
        seen: dict[tuple[str, str], FieldMapping] = {}
        for f in self.fields:
            if f.custom and f.target_field and (f.target_entity, f.target_field) not in seen:
                seen[(f.target_entity, f.target_field)] = f
        return list(seen.values())

    def unmapped(self) -> list[str]:
        """Human-readable list of everything seen in the data that has no mapping yet."""
        out = [f"work order status '{s}'" for s, t in sorted(self.status_map.items()) if t is None]
        for key, vm in sorted(self.value_maps.items()):
            out += [f"{key} value '{v}'" for v, t in sorted(vm.items()) if t is None]
        return out

    def content_hash(self) -> str:
        """Hash of what the mapping decides (approval fields excluded), to detect edits."""
        body = self.model_dump(mode="json", exclude={"approved_by", "approved_at", "record_plan", "archive_before",
                                                     "proposal_hash", "profile_hash"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
