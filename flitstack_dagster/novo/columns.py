"""The Novo export's files and columns, typed, as the export format defines them.

One registry that the reader (required headers), the generator (what to write), staging (how to type
each column) and the mapping (known Novo columns) all read, so the format is written down once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ColType(StrEnum):
    ID = "id"
    TEXT = "text"
    LONG_TEXT = "long_text"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    MONEY = "money"
    NUMBER = "number"
    YESNO = "yesno"
    EMAIL = "email"
    MULTI = "multi"


@dataclass(frozen=True)
class Column:
    label: str
    type: ColType
    required: bool = False  # Novo always fills it; a blank is quarantined (see `required_level`)
    choices: tuple[str, ...] = ()  # documented values; data may hold others
    # what a blank required value costs: "row" = the row is unusable (ids, names, parents) and is set
    # aside; "value" = the record still loads without it (dates Novo requires) and the blank is reported
    required_level: str = "row"

    @property
    def name(self) -> str:
        return snake(self.label)


@dataclass(frozen=True)
class NovoFile:
    """One CSV file of the bundle: its entity, id column and standard columns."""

    entity: str  # staging name, e.g. "work_orders"
    file: str  # e.g. "work_orders.csv"
    id_column: str | None  # label of the identifying column; None for link tables
    columns: tuple[Column, ...]
    udf_entity: str | None = None  # the `Entity` value in user_defined_fields.csv
    delta_only: bool = False
    modified_column: str | None = "Date Modified"  # decides duplicate-ID winners
    label: str = ""  # the user's word for one record, e.g. "work order"

    @property
    def headers(self) -> list[str]:
        return [c.label for c in self.columns]

    def column(self, label: str) -> Column:
        for c in self.columns:
            if c.label == label:
                return c
        raise KeyError(label)


def snake(label: str) -> str:
    """`WO Number` -> `wo_number`, `UDF: Council District` -> `udf_council_district`."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", label.strip()).strip("_").lower()
    return s or "col"


T = ColType
WO_STATUSES = ("New", "Open", "Scheduled", "In Progress", "On Hold", "Reassigned", "Completed", "Closed", "Cancelled")
WO_PRIORITIES = ("Emergency", "High", "Medium", "Low")
REQUEST_TYPES = ("Corrective", "Preventive", "Service Request", "Inspection")
ASSET_CLASSES = ("Location", "Facility", "Equipment", "Vehicle", "Infrastructure")
CONTACT_ROLES = ("Technician", "Requester", "Technician/Requester")
ACCOUNT_TYPES = ("Customer", "Vendor", "Supplier", "Internal")
UDF_DATA_TYPES = ("Text", "Long Text", "Number", "Currency", "Date", "Yes/No", "Pick List", "Multi Pick List")
UDF_ENTITIES = ("Work Order", "Asset", "Contact", "Account")
NULL_MARKERS = ("", "N/A", "n/a", "NULL", "-")


def C(label: str, type_: ColType, required: bool = False, choices: tuple[str, ...] = (), level: str = "row") -> Column:
    return Column(label, type_, required, choices, level)


def R(label: str, type_: ColType) -> Column:
    """A value Novo requires but the record can load without (e.g. Date Requested): blank = reported."""
    return Column(label, type_, True, (), "value")


FILES: tuple[NovoFile, ...] = (
    NovoFile("departments", "departments.csv", "Department ID", (
        C("Department ID", T.ID, True), C("Department Name", T.TEXT, True),
        C("Department Type", T.TEXT, choices=("Internal", "Customer")), C("Active", T.YESNO),
    ), modified_column=None, label="department"),
    NovoFile("accounts", "accounts.csv", "Account ID", (
        C("Account ID", T.ID, True), C("Account Name", T.TEXT, True),
        C("Account Type", T.TEXT, choices=ACCOUNT_TYPES), C("Department ID", T.ID),
        C("Address", T.TEXT), C("City", T.TEXT), C("State", T.TEXT), C("Zip", T.TEXT),
        C("Phone", T.TEXT), C("Email", T.EMAIL),
        R("Date Added", T.DATETIME), C("Date Modified", T.DATETIME),
    ), udf_entity="Account", label="account"),
    NovoFile("contacts", "contacts.csv", "Contact ID", (
        C("Contact ID", T.ID, True), C("First Name", T.TEXT), C("Last Name", T.TEXT),
        C("Email", T.EMAIL), C("Phone", T.TEXT), C("Mobile", T.TEXT),
        C("Role", T.TEXT, choices=CONTACT_ROLES), C("Department ID", T.ID), C("Account ID", T.ID),
        C("Job Title", T.TEXT), C("Hourly Rate", T.MONEY), C("Active", T.YESNO),
        R("Date Added", T.DATETIME), C("Date Modified", T.DATETIME),
    ), udf_entity="Contact", label="contact"),
    NovoFile("assets", "assets.csv", "Asset ID", (
        C("Asset ID", T.ID, True), C("Asset Name", T.TEXT, True),
        C("Asset Class", T.TEXT, choices=ASSET_CLASSES), C("Parent Asset ID", T.ID),
        C("Account ID", T.ID), C("Department ID", T.ID),
        C("Serial Number", T.TEXT), C("Manufacturer", T.TEXT), C("Model", T.TEXT),
        C("Install Date", T.DATE), C("Last Service Date", T.DATE),
        C("Status", T.TEXT, choices=("Active", "Inactive", "Retired")), C("Address", T.TEXT),
        C("Latitude", T.NUMBER), C("Longitude", T.NUMBER),
        R("Date Added", T.DATETIME), C("Date Modified", T.DATETIME),
    ), udf_entity="Asset", label="asset"),
    NovoFile("work_orders", "work_orders.csv", "WO Number", (
        C("WO Number", T.ID, True), C("Title", T.TEXT, True), C("Description", T.LONG_TEXT),
        C("Status", T.TEXT, True, WO_STATUSES), C("Priority", T.TEXT, choices=WO_PRIORITIES),
        C("Request Type", T.TEXT, choices=REQUEST_TYPES),
        C("Requester ID", T.ID), C("Assigned To ID", T.ID), C("Asset ID", T.ID),
        C("Account ID", T.ID), C("Department ID", T.ID),
        R("Date Requested", T.DATETIME), C("Date Scheduled", T.DATE), C("Due Date", T.DATE),
        C("Date Completed", T.DATETIME), C("Estimated Hours", T.NUMBER), C("PM Schedule ID", T.ID),
        C("Source", T.TEXT, choices=("Web", "Email", "Phone", "Walk-in")),
        C("Date Added", T.DATETIME), C("Date Modified", T.DATETIME),
    ), udf_entity="Work Order", label="work order"),
    NovoFile("labor", "labor.csv", "Labor ID", (
        C("Labor ID", T.ID, True), C("WO Number", T.ID, True), C("Technician ID", T.ID),
        R("Work Date", T.DATE), C("Start Time", T.TIME), C("Hours", T.NUMBER), C("Rate", T.MONEY),
        C("Labor Type", T.TEXT, choices=("Regular", "Overtime", "Contractor")), C("Notes", T.LONG_TEXT),
        C("Date Added", T.DATETIME),
    ), modified_column="Date Added", label="labor entry"),
    NovoFile("parts_used", "parts_used.csv", "Line ID", (
        C("Line ID", T.ID, True), C("WO Number", T.ID, True), C("Part Number", T.ID),
        C("Quantity", T.NUMBER), C("Unit Cost", T.MONEY), C("Date Added", T.DATETIME),
    ), modified_column="Date Added", label="part used"),
    NovoFile("status_log", "status_log.csv", "Log ID", (
        C("Log ID", T.ID, True), C("WO Number", T.ID, True), C("From Status", T.TEXT),
        C("To Status", T.TEXT), R("Changed At", T.DATETIME), C("Changed By ID", T.ID),
        C("Comment", T.LONG_TEXT),
    ), modified_column="Changed At", label="status change"),
    NovoFile("notes", "notes.csv", "Note ID", (
        C("Note ID", T.ID, True), C("WO Number", T.ID), C("Asset ID", T.ID),
        C("Entry Type", T.TEXT, choices=("Note", "Call", "Email", "Meeting")), C("Subject", T.TEXT),
        C("Body", T.LONG_TEXT), C("Internal", T.YESNO), R("Logged At", T.DATETIME),
        C("Logged By ID", T.ID),
    ), modified_column="Logged At", label="activity-log entry"),
    NovoFile("pm_schedules", "pm_schedules.csv", "PM ID", (
        C("PM ID", T.ID, True), C("PM Name", T.TEXT, True), C("Asset ID", T.ID),
        C("Trigger", T.TEXT, choices=("Date", "Meter")),
        C("Frequency", T.TEXT, choices=("Daily", "Weekly", "Monthly", "Yearly")), C("Every", T.NUMBER),
        C("Recurrence Rule", T.TEXT), C("Meter Name", T.TEXT), C("Meter Interval", T.NUMBER),
        C("Last Meter Reading", T.NUMBER), R("Start Date", T.DATE), C("End Date", T.DATE),
        C("Next Due", T.DATE), C("Assigned To ID", T.ID), C("Estimated Hours", T.NUMBER),
        C("Procedure", T.LONG_TEXT), C("Active", T.YESNO),
        C("Date Added", T.DATETIME), C("Date Modified", T.DATETIME),
    ), label="PM schedule"),
    NovoFile("pm_history", "pm_history.csv", "PM Event ID", (
        C("PM Event ID", T.ID, True), C("PM ID", T.ID, True), C("WO Number", T.ID),
        C("Due Date", T.DATE), R("Completed Date", T.DATETIME), C("Completed By ID", T.ID),
        C("Meter Reading", T.NUMBER), C("Result", T.TEXT, choices=("Pass", "Fail", "Deferred")),
        C("Notes", T.LONG_TEXT),
    ), modified_column="Completed Date", label="PM history entry"),
    NovoFile("inventory", "inventory.csv", "Part Number", (
        C("Part Number", T.ID, True), C("Description", T.TEXT), C("Category", T.TEXT), C("Unit", T.TEXT),
        C("Unit Cost", T.MONEY), C("Qty On Hand", T.NUMBER), C("Reorder Point", T.NUMBER),
        C("Vendor Account ID", T.ID), C("Storeroom Asset ID", T.ID), C("Date Modified", T.DATETIME),
    ), label="inventory part"),
    NovoFile("asset_parts", "asset_parts.csv", None, (
        C("Asset ID", T.ID, True), C("Part Number", T.ID, True), C("Qty Required", T.NUMBER),
    ), modified_column=None, label="asset part link"),
    NovoFile("attachments", "attachments.csv", "Attachment ID", (
        C("Attachment ID", T.ID, True), C("Parent Type", T.TEXT, True, ("Work Order", "Asset")),
        C("Parent ID", T.ID, True), C("File Name", T.TEXT), C("Bundle Path", T.TEXT),
        C("Size", T.NUMBER), C("Content Type", T.TEXT), C("SHA-256", T.TEXT),
        R("Uploaded At", T.DATETIME), C("Uploaded By ID", T.ID), C("Description", T.LONG_TEXT),
    ), modified_column="Uploaded At", label="attachment"),
    NovoFile("user_defined_fields", "user_defined_fields.csv", None, (
        C("Entity", T.TEXT, True, UDF_ENTITIES), C("Label", T.TEXT, True), C("Column", T.TEXT, True),
        C("Data Type", T.TEXT, True, UDF_DATA_TYPES), C("Choices", T.TEXT), C("Required", T.YESNO),
    ), modified_column=None, label="user defined field"),
    NovoFile("deleted", "deleted.csv", None, (
        C("Entity", T.TEXT, True, ("Work Order", "Asset", "Contact", "Account", "PM Schedule", "Attachment")),
        C("ID", T.ID, True), C("Deleted At", T.DATETIME),
    ), delta_only=True, modified_column=None, label="deletion"),
)

JSON_FILES = ("workflow_rules.json", "form_configurations.json")

BY_ENTITY: dict[str, NovoFile] = {f.entity: f for f in FILES}
BY_FILE: dict[str, NovoFile] = {f.file: f for f in FILES}
UDF_FILE: dict[str, NovoFile] = {f.udf_entity: f for f in FILES if f.udf_entity}

# UDF `Data Type` -> the column type staging gives it.
UDF_TYPE: dict[str, ColType] = {
    "Text": T.TEXT, "Long Text": T.LONG_TEXT, "Number": T.NUMBER, "Currency": T.MONEY, "Date": T.DATE,
    "Yes/No": T.YESNO, "Pick List": T.TEXT, "Multi Pick List": T.MULTI,
}
