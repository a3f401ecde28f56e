"""Propose the mapping from the source profile and the account audit — deterministic, no guessing.

The defaults are the standard Novo → Pipedrive mapping, column by column. Where the data goes beyond
the defaults the proposal decides from the data and the names:

* **Known Novo columns** (`novo/columns.py`) get the default target, transform and reason.
* **UDFs** get a typed custom field named after the UDF's label on the deal (Work Order), person
  (Contact) or organization (Asset, Account): Pick List → enum (declared choices + values seen),
  Multi Pick List → set, Currency → monetary, Number → double, Date → date, Yes/No → enum Yes/No,
  Text → varchar (text when the profile saw values over 255 characters), Long Text → text. An
  undeclared UDF column gets its type from the staged column type (confidence 0.6).
* **Existing Pipedrive fields**: a custom field the account already has under the same name
  (case- and space-insensitive) with a compatible type is reused; an incompatible one makes the
  proposal use `<name> (Novo)` instead.
* **Value maps** list every documented value and every value seen in the data, and every value seen
  gets a proposal with its confidence and one-line reason (`value_proposals`, see
  `value_proposals.py`): statuses from their name (abbreviations, synonyms, other languages), their
  work orders' completion dates and the status log, and a stage of the same name in the account's
  pipeline; priorities, roles and request types from their name; activity-log entry types to the
  account's activity types (or kept as notes); list values outside the declared choices map to
  the option they mean or spell, else become a new option of their own name; a department id no
  department has is set aside (left empty). Below `CONFIDENT` a proposal needs the lead's decision.
  A target of `""` means "leave the field empty" (an explicit, confirmed choice, e.g. an Internal
  department on an account). Unknown staged columns still use the strong-similarity rule
  (`similar`): after lower-casing and dropping everything but letters and digits, the name equals a
  field's, or difflib's ratio to exactly one is ≥ 0.9 and beats every other by ≥ 0.05.

Transform names (read by shaping): `copy`, `text`, `name_join`, `email_list`, `phone_list:<label>`,
`address_join`, `datetime`, `date`, `money`, `number`, `yesno`, `multi`, `value_map:<key>`,
`status_map`, `lookup:<kind>`, `owner`, `source_id:<kind>`, `wo_title`, `description_or_note`,
`lineage`, `hierarchy_parent`, `account_parent`, `labor_cost`, `parts_cost`, `total_cost`,
`hours_to_duration`, `activity_note`, `activity_type`, `note_content`, `entry_type`, `recurrence`, `pm_subject`,
`active_only`, `parts_table`, `file_body`, `file_parent`, `size_check`, `hash_check`,
`deletion_policy`, `id_map`, `none`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from flitstack_dagster.mapping.activity_rows import ENTRY_TYPES, record_row
from flitstack_dagster.mapping.audit import AccountAudit
from flitstack_dagster.mapping.model import (
    FieldMapping,
    Mapping,
    MappingOptions,
    ObjectMapping,
    StatusTarget,
    ValueProposal,
)
from flitstack_dagster.mapping.profile import SourceProfile, UdfDef
from flitstack_dagster.pipedrive.limits import file_limit_text
from flitstack_dagster.mapping.standard import STAGES, STANDARD_STATUS
from flitstack_dagster.mapping.value_proposals import (
    CONFIDENT,
    PRIORITY_WORDS,
    REQUEST_WORDS,
    ROLE_WORDS,
    propose_activity_type,
    propose_option,
    propose_status,
    set_aside,
)
from flitstack_dagster.novo.columns import (
    BY_ENTITY,
    CONTACT_ROLES,
    FILES,
    REQUEST_TYPES,
    WO_PRIORITIES,
    snake,
)

ENTRY_TYPE_CHOICES = BY_ENTITY["notes"].column("Entry Type").choices
SIMILARITY_MIN = 0.9
SIMILARITY_MARGIN = 0.05

UDF_TARGET = {"Work Order": "deal", "Asset": "organization", "Contact": "person", "Account": "organization"}
UDF_FIELD_TYPE = {
    "Pick List": "enum", "Multi Pick List": "set", "Currency": "monetary", "Number": "double", "Date": "date",
    "Yes/No": "enum", "Text": "varchar", "Long Text": "text",
}
UDF_TRANSFORM = {
    "Pick List": "value_map", "Multi Pick List": "value_map", "Currency": "money", "Number": "number",
    "Date": "date", "Yes/No": "yesno", "Text": "text", "Long Text": "text",
}
# Existing Pipedrive field types a proposed type can reuse.
COMPATIBLE = {
    "varchar": {"varchar", "varchar_auto", "text"}, "text": {"text"}, "double": {"double", "int"},
    "monetary": {"monetary"}, "date": {"date"}, "enum": {"enum"}, "set": {"set"}, "org": {"org"},
    "person": {"people", "person"}, "user": {"user"},
}
VARCHAR_MAX = 255

OBJECTS: list[tuple[str, str, str, str]] = [
    ("Work Order", "Deal", "1:1", ("title `WO-004211 · Title`, pipeline `Novo Work Orders`, stage from status, "
     "org = account else asset's org, person = requester, owner = technician's user else fallback")),
    ("Work Order", "Activity", "1:many", ("labor entries → `Work Order Labor`, parts used → `Work Order Parts` "
     "activities; status changes → notes on the deal (add_time = Changed At)")),
    ("Asset / Equipment", "Organization + Custom Fields", "1:1", ("name, address; Asset_Serial__c, Asset_Type__c, "
     "Last_Service_Date__c, Asset_Hierarchy__c, Novo Asset ID, UDFs")),
    ("Asset Hierarchy (parent/child)", "Organization relationship (parent)", "1:1", ("top of each tree first; "
     "nodes deeper than level 2 linked to their level-2 ancestor, full lineage in Asset_Hierarchy__c; roots under "
     "their account's org or the placeholder org; cycles broken at a reported node")),
    ("Preventive Maintenance (PM) Task", "Activity / Task", "1:many", ("type task, one per occurrence in the "
     "migration window, subject `PM: name`, procedure in the note; meter PMs one activity for the next due")),
    ("Technician / Requester", "Person", "1:1", ("name, emails, phones, org = account; Novo_Role__c, "
     "Novo_Department__c, Novo Contact ID; owner matched by email")),
    ("Department", "Organization Label / Person custom enum", "1:1", ("contact's department → Novo_Department__c "
     "value by value; Customer department of an account → organization label")),
    ("Work Order Cost (labor + parts)", "Custom Fields on Deal", "1:1", ("Labor_Cost__c = Σ hours × rate, "
     "Parts_Cost__c = Σ quantity × unit cost, Total_WO_Cost__c = labor + parts; deal value = total (option)")),
    ("Attachment / File", "Pipedrive Files", "1:1", ("POST /v1/files on the deal or organization; "
     f"> {file_limit_text()} flagged (or split); source attachment ID → file ID in the audit log")),
    ("Inventory / Parts", "Custom Field on Organization + Note", "1:1", ("a parts table note on each equipment "
     "organization using the parts + text field `Parts`; inventory management not migrated")),
    ("Work Order Status / Priority", "Deal Stage + Custom Priority Field", "1:1", ("status → stage + deal status "
     "value by value; priority → Novo_Priority__c enum value by value; unmapped values block the load")),
    # objects beyond the headline table that every export carries
    ("Account", "Organization", "1:1", "name, address, Novo Account ID, Account Type; Customer department → label"),
    ("Activity-log entry", "Activity (call/email/meeting) / Note", "1:1", ("done, due = Logged At; Note entries "
     "become notes with add_time = Logged At; internal entries say so")),
    ("PM history", "Note on the asset's organization", "1:1", "add_time = Completed Date"),
    ("UDF", "Custom field of the matching type", "1:1", ("Pick List → enum, Multi Pick List → set, Currency → "
     "monetary, Number → double, Date → date, Yes/No → enum Yes/No, Text → varchar, Long Text → text")),
]


def _F(entity: str, column: str, target_entity: str, target_field: str | None, transform: str = "copy",
       confidence: float = 1.0, reason: str = "", custom: bool = False, field_type: str | None = None,
       options: list[str] | None = None) -> FieldMapping:
    return FieldMapping(
        source_entity=entity, source_column=column, target_entity=target_entity, target_field=target_field,
        custom=custom, field_type=field_type, options=list(options or []), transform=transform,
        confidence=round(confidence, 2), reason=reason,
    )


def _C(entity: str, column: str, target_entity: str, name: str, field_type: str, transform: str = "copy",
       reason: str = "", options: list[str] | None = None, confidence: float = 1.0) -> FieldMapping:
    return _F(entity, column, target_entity, name, transform, confidence, reason, True, field_type, options)


def _N(entity: str, column: str, reason: str, transform: str = "none", confidence: float = 0.9) -> FieldMapping:
    return _F(entity, column, "none", None, transform, confidence, reason)


def _standard_fields(opts: MappingOptions, dept_opts: list[str], label_opts: list[str]) -> list[FieldMapping]:
    src = "Novo Source ID"
    sid = "custom field `Novo Source ID` finds the record again after a crash and on delta runs"
    idmap = "kept in the id map and audit log (activities/notes/files cannot carry custom fields by API)"
    return [
        # departments
        _N("departments", "Department ID", "resolved through contacts/accounts Department ID value maps",
           "id_map"),
        _C("departments", "Department Name", "person", "Novo_Department__c", "enum", "options_source",
           "one enum option per department name (spec: Department → Novo_Department__c)", dept_opts),
        _N("departments", "Department Type", "decides person enum (Internal) vs organization label (Customer)"),
        _N("departments", "Active", "inactive departments still keep their option (old records use them)"),
        # accounts
        _C("accounts", "Account ID", "organization", "Novo Account ID", "varchar", "copy",
           "spec: custom field `Novo Account ID`"),
        _C("accounts", "Account ID", "organization", src, "varchar", "source_id:account", sid),
        _F("accounts", "Account Name", "organization", "name", "text", 1.0, "organization name (not unique in Novo)"),
        _C("accounts", "Account Type", "organization", "Account Type", "varchar", "copy", "spec: `Account Type` kept"),
        _F("accounts", "Department ID", "organization", "label_ids", "value_map:accounts.Department ID", 0.9,
           "Customer department → organization label (value by value); Internal → no label", options=label_opts),
        _F("accounts", "Address", "organization", "address", "address_join", 0.95, "joined with City, State, Zip"),
        _F("accounts", "City", "organization", "address", "address_join", 0.95, "part of the address"),
        _F("accounts", "State", "organization", "address", "address_join", 0.95, "part of the address"),
        _F("accounts", "Zip", "organization", "address", "address_join", 0.95, "part of the address"),
        _N("accounts", "Phone", "organizations have no phone field; not in the default mapping", confidence=0.7),
        _N("accounts", "Email", "organizations have no email field; not in the default mapping", confidence=0.7),
        _F("accounts", "Date Added", "organization", "add_time", "datetime", 0.95,
           "v2 organizations accept add_time on create (admin token)"),
        _N("accounts", "Date Modified", "Pipedrive sets update_time; used only to pick duplicate winners"),
        # contacts
        _C("contacts", "Contact ID", "person", "Novo Contact ID", "varchar", "copy", "spec: `Novo Contact ID`"),
        _C("contacts", "Contact ID", "person", src, "varchar", "source_id:contact", sid),
        _F("contacts", "First Name", "person", "name", "name_join", 0.95, "person name = first + last, trimmed"),
        _F("contacts", "Last Name", "person", "name", "name_join", 0.95, "person name = first + last, trimmed"),
        _F("contacts", "Email", "person", "emails", "email_list", 1.0, "primary work email; also the owner match key"),
        _F("contacts", "Phone", "person", "phones", "phone_list:work", 1.0, "phone labelled work"),
        _F("contacts", "Mobile", "person", "phones", "phone_list:mobile", 1.0, "phone labelled mobile"),
        _C("contacts", "Role", "person", "Novo_Role__c", "enum", "value_map:contacts.Role",
           "spec: enum Technician / Requester / Technician/Requester", list(CONTACT_ROLES)),
        _C("contacts", "Department ID", "person", "Novo_Department__c", "enum", "value_map:contacts.Department ID",
           "department id → department name option, value by value", dept_opts),
        _F("contacts", "Account ID", "person", "org_id", "lookup:account", 1.0, "person's organization = account"),
        _C("contacts", "Job Title", "person", "Job Title", "varchar", reason="job_title is read-only in API v2 (contact sync); kept in a custom field"),
        _N("contacts", "Hourly Rate", "labor entries carry the rate charged; kept in each labor activity note",
           confidence=0.8),
        _N("contacts", "Active", "inactive contacts migrate as people all the same", confidence=0.8),
        _F("contacts", "Date Added", "person", "add_time", "datetime", 0.95, "v2 persons accept add_time on create"),
        _N("contacts", "Date Modified", "Pipedrive sets update_time"),
        # assets
        _C("assets", "Asset ID", "organization", "Novo Asset ID", "varchar", "copy", "spec: `Novo Asset ID`"),
        _C("assets", "Asset ID", "organization", src, "varchar", "source_id:asset", sid),
        _F("assets", "Asset Name", "organization", "name", "text", 1.0, "organization name (not unique in Novo)"),
        _C("assets", "Asset Class", "organization", "Asset_Type__c", "varchar", "copy",
           "seed: equipment type → Asset_Type__c"),
        _F("assets", "Parent Asset ID", "organization", "relationship:parent", "hierarchy_parent", 0.9,
           "organization relationship `parent`; deeper than level 2 → level-2 ancestor; cycles broken"),
        _C("assets", "Parent Asset ID", "organization", "Asset_Hierarchy__c", "text", "lineage",
           "full lineage `Root > Child > Grandchild`", confidence=0.9),
        _F("assets", "Account ID", "organization", "relationship:parent", "account_parent", 0.9,
           "a root asset of a customer account hangs under the account's organization"),
        _N("assets", "Department ID", "not in the default mapping", confidence=0.7),
        _C("assets", "Serial Number", "organization", "Asset_Serial__c", "varchar", "copy", "seed: Asset_Serial__c"),
        _N("assets", "Manufacturer", "not in the default mapping; add a custom field to keep it", confidence=0.6),
        _N("assets", "Model", "not in the default mapping; add a custom field to keep it", confidence=0.6),
        _N("assets", "Install Date", "not in the default mapping", confidence=0.7),
        _C("assets", "Last Service Date", "organization", "Last_Service_Date__c", "date", "date",
           "seed: Last_Service_Date__c"),
        _N("assets", "Status", "not in the default mapping (retired assets still migrate)", confidence=0.7),
        _F("assets", "Address", "organization", "address", "address_join", 0.95, "organization address"),
        _N("assets", "Latitude", "Pipedrive geocodes the address", confidence=0.8),
        _N("assets", "Longitude", "Pipedrive geocodes the address", confidence=0.8),
        _F("assets", "Date Added", "organization", "add_time", "datetime", 0.95, "v2 organizations accept add_time"),
        _N("assets", "Date Modified", "Pipedrive sets update_time"),
        # work orders
        _C("work_orders", "WO Number", "deal", "Novo WO Number", "varchar", "copy", "spec: `Novo WO Number`"),
        _C("work_orders", "WO Number", "deal", src, "varchar", "source_id:work_order", sid),
        _F("work_orders", "Title", "deal", "title", "wo_title", 1.0, "title `WO-004211 · Title`"),
        _C("work_orders", "Description", "deal", "Description", "varchar", "description_or_note",
           f"custom varchar; longer than {opts.description_field_max} characters → the deal's first note"),
        _F("work_orders", "Status", "deal", "stage_id", "status_map", 1.0, "stage + status value by value"),
        _C("work_orders", "Priority", "deal", "Novo_Priority__c", "enum", "value_map:work_orders.Priority",
           "spec: enum value by value; empty stays empty", list(WO_PRIORITIES)),
        _C("work_orders", "Request Type", "deal", "Request Type", "enum", "value_map:work_orders.Request Type",
           "spec: `Request Type`, value by value", list(REQUEST_TYPES)),
        _F("work_orders", "Requester ID", "deal", "person_id", "lookup:contact", 1.0, "person = requester"),
        _F("work_orders", "Assigned To ID", "deal", "owner_id", "owner", 0.95,
           "technician's Pipedrive user by email, else the fallback owner"),
        _C("work_orders", "Asset ID", "deal", "Asset", "org", "lookup:asset",
           "organization field pointing at the asset's organization"),
        _F("work_orders", "Account ID", "deal", "org_id", "lookup:account_or_asset", 0.95,
           "org = the work order's account, else its asset's organization"),
        _N("work_orders", "Department ID", "department is carried by the requester person", confidence=0.7),
        _C("work_orders", "Date Requested", "deal", "Date Requested", "date", "date", "spec: `Date Requested`"),
        _N("work_orders", "Date Scheduled", "not in the default mapping", confidence=0.7),
        _C("work_orders", "Due Date", "deal", "Due Date", "date", "date", "spec: `Due Date`"),
        _C("work_orders", "Date Completed", "deal", "Date Completed", "date", "date", "spec: `Date Completed`"),
        _F("work_orders", "Date Completed", "deal", "won_time", "datetime", 0.95, "won deals: won_time = Date Completed"),
        _N("work_orders", "Estimated Hours", "not in the default mapping", confidence=0.7),
        _N("work_orders", "PM Schedule ID", "the PM link is kept in the PM history note", confidence=0.8),
        _N("work_orders", "Source", "not in the default mapping", confidence=0.7),
        _N("work_orders", "Date Added", "add_time cannot be set on v2 deals"),
        _N("work_orders", "Date Modified", "Pipedrive sets update_time"),
        _C("work_orders", "WO Number", "deal", "Total_WO_Cost__c", "monetary", "total_cost",
           "Labor_Cost__c + Parts_Cost__c of the work order"),
        _F("work_orders", "WO Number", "deal", "value", "total_cost" if opts.deal_value_from_total else "none", 0.9,
           "deal value = Total_WO_Cost__c (mapping option deal_value_from_total)"),
        # labor -> activity `Work Order Labor`
        record_row("labor"),
        _F("labor", "WO Number", "activity", "deal_id", "lookup:work_order", 1.0, "linked to the deal"),
        _F("labor", "Technician ID", "activity", "owner_id", "owner", 0.95, "technician's user, else fallback"),
        _F("labor", "Work Date", "activity", "due_date", "date", 1.0, "due date = work date"),
        _F("labor", "Start Time", "activity", "due_time", "copy", 0.9, "due time = start time"),
        _F("labor", "Hours", "activity", "duration", "hours_to_duration", 1.0, "duration = hours"),
        _C("labor", "Hours", "deal", "Labor_Cost__c", "monetary", "labor_cost", "Σ hours × rate per work order"),
        _F("labor", "Rate", "activity", "note", "activity_note", 0.95, "rate in the activity note"),
        _C("labor", "Rate", "deal", "Labor_Cost__c", "monetary", "labor_cost", "Σ hours × rate per work order"),
        _F("labor", "Labor Type", "activity", "note", "activity_note", 0.9, "in the activity note"),
        _F("labor", "Notes", "activity", "note", "activity_note", 1.0, "in the activity note"),
        _N("labor", "Date Added", "add_time cannot be set on activities"),
        # parts used -> activity `Work Order Parts`
        record_row("parts_used"),
        _F("parts_used", "WO Number", "activity", "deal_id", "lookup:work_order", 1.0, "linked to the deal"),
        _F("parts_used", "Part Number", "activity", "note", "activity_note", 0.95, "part in the subject and note"),
        _F("parts_used", "Quantity", "activity", "note", "activity_note", 0.95, "quantity in the note"),
        _C("parts_used", "Quantity", "deal", "Parts_Cost__c", "monetary", "parts_cost",
           "Σ quantity × unit cost per work order"),
        _F("parts_used", "Unit Cost", "activity", "note", "activity_note", 0.95, "cost in the note"),
        _C("parts_used", "Unit Cost", "deal", "Parts_Cost__c", "monetary", "parts_cost",
           "Σ quantity × unit cost per work order"),
        _F("parts_used", "Date Added", "activity", "due_date", "date", 0.8, "due date = when the part was used"),
        # status log -> notes on the deal
        _N("status_log", "Log ID", idmap, "id_map"),
        _F("status_log", "WO Number", "note", "deal_id", "lookup:work_order", 1.0, "note on the deal"),
        _F("status_log", "From Status", "note", "content", "note_content", 1.0, "text names from/to status"),
        _F("status_log", "To Status", "note", "content", "note_content", 1.0, "text names from/to status"),
        _F("status_log", "Changed At", "note", "add_time", "datetime", 1.0, "add_time = Changed At"),
        _F("status_log", "Changed By ID", "note", "content", "note_content", 0.95, "who, by name"),
        _F("status_log", "Comment", "note", "content", "note_content", 1.0, "comment in the text"),
        # activity log
        _N("notes", "Note ID", idmap, "id_map"),
        _F("notes", "WO Number", "activity", "deal_id", "lookup:work_order", 1.0, "linked to the deal"),
        _F("notes", "Asset ID", "activity", "org_id", "lookup:asset", 1.0, "else linked to the asset's organization"),
        _F("notes", "Entry Type", "activity", "type", f"value_map:{ENTRY_TYPES}", 1.0,
           "entry type → activity type, value by value (value_maps); an empty target keeps the entry as a note"),
        _F("notes", "Subject", "activity", "subject", "text", 1.0, "subject"),
        _F("notes", "Body", "activity", "note", "text", 1.0, "activity note / note content"),
        _F("notes", "Internal", "activity", "note", "activity_note", 0.9, "internal entries say so in the text"),
        _F("notes", "Logged At", "activity", "due_date", "datetime", 1.0,
           "due date and time = Logged At; notes: add_time"),
        _F("notes", "Logged By ID", "activity", "owner_id", "owner", 0.9, "the logger's user, else fallback"),
        # PM schedules -> task activities
        record_row("pm_schedules"),
        _F("pm_schedules", "PM Name", "activity", "subject", "pm_subject", 1.0, "subject `PM: name`"),
        _F("pm_schedules", "Asset ID", "activity", "org_id", "lookup:asset", 1.0, "linked to the asset's org"),
        *[_F("pm_schedules", c, "activity", "due_date", "recurrence", 0.85,
             "due dates from the recurrence inside the migration window")
          for c in ("Trigger", "Frequency", "Every", "Recurrence Rule", "Start Date", "End Date", "Next Due")],
        *[_F("pm_schedules", c, "activity", "note", "activity_note", 0.85, "meter rule in the note")
          for c in ("Meter Name", "Meter Interval", "Last Meter Reading")],
        _F("pm_schedules", "Assigned To ID", "activity", "owner_id", "owner", 0.95, "assignee's user, else fallback"),
        _F("pm_schedules", "Estimated Hours", "activity", "duration", "hours_to_duration", 0.9,
           "the task's duration (activity.note: a line of its note instead; none: left out)"),
        _F("pm_schedules", "Procedure", "activity", "note", "activity_note", 1.0,
           "procedure steps in the note (activity custom fields cannot be made by API)"),
        _F("pm_schedules", "Active", "activity", None, "active_only", 0.9, "inactive schedules get no occurrences"),
        _N("pm_schedules", "Date Added", "add_time cannot be set on activities"),
        _N("pm_schedules", "Date Modified", "Pipedrive sets update_time"),
        # PM history -> notes on the asset's org
        _N("pm_history", "PM Event ID", idmap, "id_map"),
        _F("pm_history", "PM ID", "note", "org_id", "lookup:pm_asset", 1.0, "note on the schedule's asset org"),
        *[_F("pm_history", c, "note", "content", "note_content", 1.0, "in the note text")
          for c in ("WO Number", "Due Date", "Completed By ID", "Meter Reading", "Result", "Notes")],
        _F("pm_history", "Completed Date", "note", "add_time", "datetime", 1.0, "add_time = Completed Date"),
        # inventory -> parts note + `Parts` text field on the equipment's org
        _F("inventory", "Part Number", "note", "content", "parts_table", 0.9, "parts table note on equipment orgs"),
        _C("inventory", "Part Number", "organization", "Parts", "text", "parts_table",
           "spec: text field `Parts` on equipment organizations", confidence=0.9),
        *[_F("inventory", c, "note", "content", "parts_table", 0.9, "column of the parts table")
          for c in ("Description", "Unit Cost", "Qty On Hand", "Reorder Point")],
        *[_N("inventory", c, "inventory management is not migrated", confidence=0.8)
          for c in ("Category", "Unit", "Vendor Account ID", "Storeroom Asset ID", "Date Modified")],
        _F("asset_parts", "Asset ID", "note", "org_id", "lookup:asset", 0.9, "which equipment org gets the note"),
        _F("asset_parts", "Part Number", "note", "content", "parts_table", 0.9, "rows of the parts table"),
        _F("asset_parts", "Qty Required", "note", "content", "parts_table", 0.9, "column of the parts table"),
        # attachments -> files
        _N("attachments", "Attachment ID", "source attachment ID → file ID in the audit log", "id_map"),
        _F("attachments", "Parent Type", "file", "deal_id", "file_parent", 1.0, "Work Order → deal, Asset → org"),
        _F("attachments", "Parent ID", "file", "deal_id", "file_parent", 1.0, "the deal or organization"),
        _F("attachments", "File Name", "file", "file", "file_body", 1.0, "uploaded under its name"),
        _F("attachments", "Bundle Path", "file", "file", "file_body", 1.0, "body read inside the bundle only"),
        _F("attachments", "Size", "file", None, "size_check",
           0.9, f"> {opts.max_file_bytes // (1024 * 1024)} MB: {opts.large_file_policy}"),
        _F("attachments", "Content Type", "file", "file", "copy", 0.9, "multipart content type"),
        _F("attachments", "SHA-256", "file", None, "hash_check", 1.0, "mismatching bodies are reported, not loaded"),
        _N("attachments", "Uploaded At", "files take the upload time of the migration", confidence=0.7),
        _N("attachments", "Uploaded By ID", "kept in the audit log", confidence=0.7),
        _N("attachments", "Description", "not in the default mapping", confidence=0.7),
        # declarations and deletions
        *[_N("user_defined_fields", c.label, "UDF declarations drive the UDF field mappings", "none", 1.0)
          for c in BY_ENTITY["user_defined_fields"].columns],
        *[_N("deleted", c.label, f"delta deletions: policy `{opts.deletion_policy}`", "deletion_policy", 1.0)
          for c in BY_ENTITY["deleted"].columns],
    ]


# ----------------------------------------------------------------------------------------------


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", s.casefold())


def similar(value: str, known: list[str]) -> tuple[str | None, float]:
    """The strong-similarity rule (module doc): the one known value `value` is taken to mean, or None."""
    nv = _norm(value)
    if not nv:
        return None, 0.0
    for k in known:
        if _norm(k) == nv:
            return k, 1.0
    scored = sorted(((difflib.SequenceMatcher(None, nv, _norm(k)).ratio(), k) for k in known), reverse=True)
    if not scored:
        return None, 0.0
    best, k = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0.0
    if best >= SIMILARITY_MIN and best - second >= SIMILARITY_MARGIN:
        return k, best
    return None, best


def _existing(audit: AccountAudit | None, entity: str, name: str, field_type: str) -> tuple[str, str]:
    """(name to use, reason suffix) given what the account already has."""
    if audit is None:
        return name, "new custom field"
    f = audit.find_field(entity, name)
    if f is None:
        return name, "new custom field"
    if f.custom and f.field_type in COMPATIBLE.get(field_type, {field_type}):
        return f.name, f"existing Pipedrive field '{f.name}' ({f.field_type}) reused"
    alt = f"{name} (Novo)"
    return alt, f"'{name}' exists as {'standard' if not f.custom else f.field_type} field; new field '{alt}'"


def _udf_mapping(u: UdfDef, profile: SourceProfile, audit: AccountAudit | None, used: dict[tuple[str, str], tuple[str, str]]
                 ) -> tuple[FieldMapping, dict[str, str | None] | None, dict[str, ValueProposal]]:
    entity = u.source_entity
    target = UDF_TARGET.get(u.entity, "none")
    ftype = UDF_FIELD_TYPE.get(u.data_type, "varchar")
    conf = 0.95 if u.declared else 0.6
    why = f"UDF {u.data_type} → {ftype}" if u.declared else f"undeclared UDF column; type inferred from staged data → {ftype}"
    ep = profile.entity(entity)
    col = ep.column(snake(u.column)) if ep else None
    if ftype == "varchar" and col and col.max_length and col.max_length > VARCHAR_MAX:
        ftype = "text"
        why += f" (values up to {col.max_length} chars → text)"
    name = u.label.strip() or u.column
    # a name already taken on this target entity by a different kind of field gets a suffix
    taken = used.get((target, name.casefold()))
    if taken is not None and (taken[0] != "udf" or taken[1] != ftype):
        name = f"{name} (UDF)"
        why += "; name taken by another mapped field"
    name, ex = _existing(audit, target, name, ftype)
    used[(target, name.casefold())] = ("udf", ftype)
    options: list[str] = []
    vmap: dict[str, str | None] | None = None
    props: dict[str, ValueProposal] = {}
    transform = UDF_TRANSFORM.get(u.data_type, "text")
    if u.data_type in ("Pick List", "Multi Pick List"):
        seen = profile.value_sets.get(f"{entity}.{u.column}", {})
        vmap, props = _option_proposals(list(u.choices), seen)
        added = [v for v, p in props.items() if p.decision == "add option"]
        options = list(u.choices) + sorted(added)
        transform = f"value_map:{entity}.{u.column}"
        outside = [v for v in seen if v not in u.choices]
        if outside:
            why += (f"; {len(outside)} value(s) outside the declared choices: {len(added)} added as options, "
                    f"{len(outside) - len(added)} mapped to a declared choice")
    elif u.data_type == "Yes/No":
        options = ["Yes", "No"]
    if ex != "new custom field" and audit is not None:
        f = audit.find_field(target, name)
        if f is not None and options:
            options = options + sorted(o.label for o in f.options if o.label not in options)
    return _C(entity, u.column, target, name, ftype, transform, f"{why}; {ex}", options, conf), vmap, props


def propose_mapping(profile: SourceProfile, audit: AccountAudit | None = None,
                    options: MappingOptions | None = None) -> Mapping:
    """The proposed mapping for this data and account (deterministic: same inputs → same YAML)."""
    opts = options or MappingOptions()
    depts = sorted(profile.departments, key=lambda d: d.id)
    dept_names: list[str] = sorted({d.name for d in depts})
    customer = {d.id: d.name for d in depts if (d.type or "").casefold() == "customer"}
    label_opts = sorted(set(customer.values()))

    m = Mapping(options=opts)
    m.objects = [ObjectMapping(source=s, target=t, cardinality=c, how=h) for s, t, c, h in OBJECTS]  # type: ignore[arg-type]
    m.pipeline_stages = list(STAGES)

    # ---- value maps ----------------------------------------------------------------------------
    vs = profile.value_sets
    status_map, status_props = _status_proposals(profile, audit, opts)
    m.status_map = status_map
    prio, prio_props = _option_proposals(list(WO_PRIORITIES), vs.get("work_orders.Priority", {}), PRIORITY_WORDS,
                                         new_option_confidence=0.6)
    role, role_props = _option_proposals(list(CONTACT_ROLES), vs.get("contacts.Role", {}), ROLE_WORDS,
                                         new_option_confidence=0.6)
    request, request_props = _option_proposals(list(REQUEST_TYPES), vs.get("work_orders.Request Type", {}),
                                               REQUEST_WORDS, new_option_confidence=0.6)
    entry, entry_props = _entry_type_proposals(audit, vs.get(ENTRY_TYPES, {}))
    dept_map, dept_props = _department_proposals({d.id: d.name for d in depts}, vs.get("contacts.Department ID", {}))
    acct_dept, acct_props = _department_proposals({d.id: customer.get(d.id, "") for d in depts},
                                                  vs.get("accounts.Department ID", {}))
    value_maps: dict[str, dict[str, str | None]] = {
        "work_orders.Priority": prio,
        "work_orders.Request Type": request,
        ENTRY_TYPES: entry,
        "contacts.Role": role,
        "contacts.Department ID": dept_map,
        "accounts.Department ID": acct_dept,
    }
    proposals: dict[str, dict[str, ValueProposal]] = {
        "work_orders.Status": status_props, "work_orders.Priority": prio_props, "contacts.Role": role_props,
        "work_orders.Request Type": request_props, ENTRY_TYPES: entry_props,
        "contacts.Department ID": dept_props, "accounts.Department ID": acct_props,
    }

    # ---- fields --------------------------------------------------------------------------------
    fields = _standard_fields(opts, dept_names, label_opts)
    _labels_or_custom_field(fields, label_opts, audit)
    used: dict[tuple[str, str], tuple[str, str]] = {}
    for f in fields:
        if f.target_field:
            used.setdefault((f.target_entity, f.target_field.casefold()), ("std", f.field_type or "standard"))
    # standard custom fields against the account: reuse compatible, rename on conflict
    renamed: dict[tuple[str, str], tuple[str, str]] = {}
    for f in fields:
        if f.custom and f.target_field and f.field_type:
            key = (f.target_entity, f.target_field)
            if key not in renamed:
                renamed[key] = _existing(audit, f.target_entity, f.target_field, f.field_type)
            new, why = renamed[key]
            f.target_field = new
            f.reason = f"{f.reason}; {why}" if f.reason else why
    # reasons that depend on the data
    for key, (ent, col) in {"work_orders.Status": ("work_orders", "Status"), "work_orders.Priority":
                            ("work_orders", "Priority"), "work_orders.Request Type": ("work_orders", "Request Type"),
                            "contacts.Role": ("contacts", "Role"), ENTRY_TYPES: ("notes", "Entry Type")}.items():
        f = next(x for x in fields if x.source_entity == ent and x.source_column == col)
        _value_reason(f, proposals[key])
        f.options += sorted(v for v, p in proposals[key].items() if p.decision == "add option" and v not in f.options)
    # known columns missing from the registry table above (new registry columns) or extra staged columns
    covered = {(f.source_entity, f.source_column) for f in fields}
    for nf in FILES:
        for c in nf.columns:
            if (nf.entity, c.label) not in covered:
                fields.append(_N(nf.entity, c.label, "no default mapping for this column", confidence=0.5))
                covered.add((nf.entity, c.label))
    # UDFs
    udf_cols: set[tuple[str, str]] = set()
    for u in sorted(profile.udfs, key=lambda u: (u.source_entity, u.column)):
        if (u.source_entity, u.column) in udf_cols:
            continue
        udf_cols.add((u.source_entity, u.column))
        fm, vmap, props = _udf_mapping(u, profile, audit, used)
        fields.append(fm)
        if vmap is not None:
            value_maps[f"{u.source_entity}.{u.column}"] = vmap
            proposals[f"{u.source_entity}.{u.column}"] = props
    # staged columns that are neither registry columns nor UDFs
    for ent in sorted(profile.entities):
        ep = profile.entities[ent]
        for c in ep.columns:
            if (ent, c.label) in covered or (ent, c.label) in udf_cols or c.udf:
                continue
            fields.append(_extra_column(ent, c.label, audit))
    m.fields = fields
    m.value_maps = {k: value_maps[k] for k in sorted(value_maps)}
    m.value_proposals = {k: proposals[k] for k in sorted(proposals) if proposals[k]}
    m.profile_hash = profile.profile_hash  # what the proposal was made from (not part of content_hash)
    return m


def _status_proposals(profile: SourceProfile, audit: AccountAudit | None, opts: MappingOptions
                      ) -> tuple[dict[str, StatusTarget | None], dict[str, ValueProposal]]:
    """The standard statuses, then every status seen with its evidence-based target."""
    pipe = audit.pipeline(opts.pipeline_name) if audit is not None else None
    stages = [s.name for s in pipe.stages] if pipe is not None else []
    status_map: dict[str, StatusTarget | None] = {k: v.model_copy() for k, v in STANDARD_STATUS.items()}
    props: dict[str, ValueProposal] = {}
    for v in sorted(profile.value_sets.get("work_orders.Status", {})):
        target, props[v] = propose_status(v, profile.status_evidence.get(v), stages)
        status_map[v] = target
    return status_map, props


def _option_proposals(options: list[str], seen: dict[str, int], words: dict[str, tuple[str, ...]] | None = None,
                      new_option_confidence: float = 0.8) -> tuple[dict[str, str | None], dict[str, ValueProposal]]:
    """Declared options map to themselves; every value seen gets an option (existing or added) and its reason."""
    out: dict[str, str | None] = {o: o for o in options}
    props: dict[str, ValueProposal] = {}
    for v in sorted(seen):
        out[v], props[v] = propose_option(v, options, words, new_option_confidence)
    return out, props


def _entry_type_proposals(audit: AccountAudit | None, seen: dict[str, int]
                          ) -> tuple[dict[str, str | None], dict[str, ValueProposal]]:
    """The spec's entry types, then every type seen: an activity type of the account, or kept as a note."""
    types = [t.name for t in audit.activity_types if t.active] if audit is not None and audit.activity_types else None
    out: dict[str, str | None] = {}
    props: dict[str, ValueProposal] = {}
    for v in dict.fromkeys([*ENTRY_TYPE_CHOICES, *sorted(seen)]):
        out[v], p = propose_activity_type(v, types)
        if v in seen:
            props[v] = p
    return out, props


def _department_proposals(known: dict[str, str], seen: dict[str, int]
                          ) -> tuple[dict[str, str | None], dict[str, ValueProposal]]:
    """Department ids map to their department's option; an id no department has is left empty."""
    out: dict[str, str | None] = dict(known)
    props: dict[str, ValueProposal] = {}
    for v in sorted(seen):
        if v in known:
            props[v] = ValueProposal(proposed=known[v], confidence=1.0, reason=(
                f"department {v} is '{known[v]}'" if known[v] else f"department {v} is internal: no label"))
        else:
            out[v] = ""
            props[v] = set_aside(v, f"department id {v} is in no row of departments.csv: the field stays empty")
    return out, props


def _value_reason(f: FieldMapping, props: dict[str, ValueProposal]) -> None:
    """The column's reason sums up its values' proposals; its confidence is the least sure of them."""
    unsure = [v for v, p in props.items() if p.confidence < CONFIDENT and not p.confirmed]
    guessed = [f"'{v}' → {p.proposed or '(empty)'} ({p.confidence:.2f})" for v, p in props.items() if p.confidence < 1.0]
    f.reason += "; " + ("; ".join(guessed) if guessed else "all values seen are standard")
    if unsure:
        f.reason += f"; {len(unsure)} value(s) need your decision: {', '.join(unsure)}"
        f.confidence = min(f.confidence, min(props[v].confidence for v in unsure))


_RECORD_TARGET = {"accounts": "organization", "assets": "organization", "contacts": "person", "work_orders": "deal"}


def _labels_or_custom_field(fields: list[FieldMapping], label_opts: list[str], audit: AccountAudit | None) -> None:
    """Customer departments become organization labels only where the account already has them:
    Pipedrive's API adds options to custom fields only, so otherwise they go to a custom enum."""
    f = next(f for f in fields if f.source_entity == "accounts" and f.source_column == "Department ID")
    label = audit.find_field("organization", "label_ids") if audit is not None else None
    have = {o.label for o in label.options} if label is not None else set()
    missing = [o for o in label_opts if o not in have]
    if audit is None or not missing:
        return
    f.target_field, f.custom, f.field_type = "Novo_Department__c", True, "enum"
    f.reason = (f"Customer department → custom enum (the account has no organization label(s) {', '.join(missing)}, "
                "and labels cannot be created through the API); Internal → empty")


def _extra_column(entity: str, label: str, audit: AccountAudit | None) -> FieldMapping:
    """An unknown column: map by name similarity to an existing field of the record's entity, else skip."""
    target = _RECORD_TARGET.get(entity)
    if target and audit is not None:
        names = [f.name for f in audit.fields.get(target, [])]
        hit, score = similar(label, names)
        if hit is not None:
            f = audit.find_field(target, hit)
            assert f is not None
            return _F(entity, label, target, f.key if not f.custom else f.name, "copy", round(score * 0.8, 2),
                      f"unknown column; name matches existing field '{f.name}' ({score:.2f})",
                      custom=f.custom, field_type=f.field_type if f.custom and f.field_type in COMPATIBLE else None)
    return _N(entity, label, "unknown column, not a declared UDF: not migrated unless mapped", confidence=0.3)


def proposal_summary(m: Mapping) -> dict[str, Any]:
    return {
        "fields": len(m.fields),
        "custom_fields": len(m.custom_fields()),
        "unmapped": m.unmapped(),
    }


__all__ = ["STAGES", "STANDARD_STATUS", "proposal_summary", "propose_mapping", "similar"]
