"""Pydantic models for what the client sends to and reads from Pipedrive.

Field names follow the official OpenAPI files (`pipedrive-v2-openapi.yml` for organizations,
persons, deals, activities, pipelines, stages and fields; `pipedrive-v1-openapi.yml` for notes,
files, activity types, organization relationships and users). Every model accepts and keeps fields
it does not declare (`extra="allow"`), so new Pipedrive fields never break reading, and payloads can
carry fields this module does not list.

Payloads are serialized with `exclude_unset=True`: only the fields the caller set are sent, and an
explicit `None` is sent as `null` (which clears the field on update).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PDModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


# --- shared -----------------------------------------------------------------------------------------


class Address(PDModel):
    value: str | None = None
    country: str | None = None
    admin_area_level_1: str | None = None
    admin_area_level_2: str | None = None
    locality: str | None = None
    sublocality: str | None = None
    route: str | None = None
    street_number: str | None = None
    subpremise: str | None = None
    postal_code: str | None = None


class ContactValue(PDModel):
    """An email or phone entry of a v2 person."""

    value: str
    primary: bool | None = None
    label: str | None = None


class Monetary(PDModel):
    """Value of a monetary custom field in v2."""

    value: float
    currency: str


# --- organizations (v2) --------------------------------------------------------------------------


class _OrganizationFields(PDModel):
    """What an organization create or update may carry; only the create requires a name."""

    name: str | None = None
    owner_id: int | None = None
    add_time: str | None = None
    visible_to: int | None = None
    label_ids: list[int] | None = None
    address: Address | None = None
    custom_fields: dict[str, Any] | None = None


class OrganizationCreate(_OrganizationFields):
    # The v2 spec lists `title` as required for addOrganization, but its only name property is
    # `name` (a spec error); the API requires `name`.
    name: str


class OrganizationUpdate(_OrganizationFields):
    pass


class Organization(PDModel):
    id: int
    name: str | None = None
    owner_id: int | None = None
    add_time: str | None = None
    update_time: str | None = None
    is_deleted: bool | None = None
    visible_to: int | None = None
    address: Address | None = None
    label_ids: list[int] | None = None
    custom_fields: dict[str, Any] | None = None


# --- persons (v2) -------------------------------------------------------------------------------


class _PersonFields(PDModel):
    """What a person create or update may carry; only the create requires a name."""

    name: str | None = None
    owner_id: int | None = None
    org_id: int | None = None
    add_time: str | None = None
    emails: list[ContactValue] | None = None
    phones: list[ContactValue] | None = None
    visible_to: int | None = None
    label_ids: list[int] | None = None
    marketing_status: Literal["no_consent", "unsubscribed", "subscribed", "archived"] | None = None
    custom_fields: dict[str, Any] | None = None


class PersonCreate(_PersonFields):
    name: str


class PersonUpdate(_PersonFields):
    pass


class Person(PDModel):
    id: int
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    owner_id: int | None = None
    org_id: int | None = None
    add_time: str | None = None
    update_time: str | None = None
    emails: list[ContactValue] | None = None
    phones: list[ContactValue] | None = None
    is_deleted: bool | None = None
    visible_to: int | None = None
    label_ids: list[int] | None = None
    custom_fields: dict[str, Any] | None = None


# --- deals (v2) ---------------------------------------------------------------------------------

DealStatus = Literal["open", "won", "lost", "deleted"]


class _DealFields(PDModel):
    """What a deal create or update may carry; only the create requires a title."""

    title: str | None = None
    owner_id: int | None = None
    person_id: int | None = None
    org_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    value: float | None = None
    currency: str | None = None
    status: DealStatus | None = None
    probability: float | None = None
    lost_reason: str | None = None
    visible_to: int | None = None
    close_time: str | None = None
    won_time: str | None = None
    lost_time: str | None = None
    expected_close_date: str | None = None
    label_ids: list[int] | None = None
    custom_fields: dict[str, Any] | None = None


class DealCreate(_DealFields):
    # v2 deals take no add_time: the original creation time goes in a custom field.
    title: str


class DealUpdate(_DealFields):
    pass


class Deal(PDModel):
    id: int
    title: str | None = None
    owner_id: int | None = None
    person_id: int | None = None
    org_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    value: float | None = None
    currency: str | None = None
    add_time: str | None = None
    update_time: str | None = None
    status: str | None = None
    lost_reason: str | None = None
    won_time: str | None = None
    lost_time: str | None = None
    close_time: str | None = None
    is_deleted: bool | None = None
    label_ids: list[int] | None = None
    custom_fields: dict[str, Any] | None = None


# --- activities (v2) ----------------------------------------------------------------------------


class ActivityCreate(PDModel):
    subject: str | None = None
    type: str | None = None
    owner_id: int | None = None
    deal_id: int | None = None
    lead_id: str | None = None
    person_id: int | None = None
    org_id: int | None = None
    project_id: int | None = None
    due_date: str | None = None  # YYYY-MM-DD
    due_time: str | None = None  # HH:MM
    duration: str | None = None  # HH:MM
    busy: bool | None = None
    done: bool | None = None
    location: dict[str, Any] | None = None
    participants: list[dict[str, Any]] | None = None
    attendees: list[dict[str, Any]] | None = None
    public_description: str | None = None
    priority: int | None = None
    note: str | None = None


class ActivityUpdate(ActivityCreate):
    pass


class Activity(PDModel):
    id: int
    subject: str | None = None
    type: str | None = None
    owner_id: int | None = None
    creator_user_id: int | None = None
    is_deleted: bool | None = None
    add_time: str | None = None
    update_time: str | None = None
    deal_id: int | None = None
    person_id: int | None = None
    org_id: int | None = None
    due_date: str | None = None
    due_time: str | None = None
    duration: str | None = None
    done: bool | None = None
    note: str | None = None


# --- pipelines & stages (v2) --------------------------------------------------------------------


class PipelineCreate(PDModel):
    name: str
    is_deal_probability_enabled: bool | None = None


class Pipeline(PDModel):
    id: int
    name: str | None = None
    order_nr: int | None = None
    is_deleted: bool | None = None
    is_deal_probability_enabled: bool | None = None
    add_time: str | None = None
    update_time: str | None = None


class StageCreate(PDModel):
    name: str
    pipeline_id: int
    deal_probability: int | None = None
    is_deal_rot_enabled: bool | None = None
    days_to_rotten: int | None = None


class Stage(PDModel):
    id: int
    name: str | None = None
    order_nr: int | None = None
    pipeline_id: int | None = None
    deal_probability: int | None = None
    is_deleted: bool | None = None
    add_time: str | None = None
    update_time: str | None = None


# --- fields (v2 dealFields / personFields / organizationFields / activityFields) ------------------

CreatableFieldType = Literal[
    "varchar", "text", "double", "phone", "date", "daterange", "time", "timerange", "set", "enum",
    "varchar_auto", "address", "monetary", "org", "people", "user",
]


class FieldOption(PDModel):
    id: int
    label: str | None = None


class OptionLabel(PDModel):
    label: str = Field(min_length=1, max_length=255)


class FieldCreate(PDModel):
    field_name: str
    field_type: CreatableFieldType
    options: list[OptionLabel] | None = None  # required for enum and set
    description: str | None = None  # dealFields only
    ui_visibility: dict[str, Any] | None = None
    important_fields: dict[str, Any] | None = None
    required_fields: dict[str, Any] | None = None


class FieldDef(PDModel):
    field_code: str
    field_name: str | None = None
    field_type: str | None = None
    options: list[FieldOption] | None = None
    is_custom_field: bool | None = None
    description: str | None = None

    def option_id(self, label: str) -> int | None:
        for o in self.options or []:
            if o.label == label:
                return o.id
        return None


# --- search (v2 itemSearch/field) ---------------------------------------------------------------


class ItemSearchFieldResult(PDModel):
    """One hit of GET /api/v2/itemSearch/field: the item's id and the field's value (`name`)."""

    id: int | None = None
    name: Any = None


# --- notes (v1) ---------------------------------------------------------------------------------


class _NoteFields(PDModel):
    """What a note create or update may carry (the same list for both); only the create requires content."""

    content: str | None = None
    deal_id: int | None = None
    person_id: int | None = None
    org_id: int | None = None
    lead_id: str | None = None
    project_id: int | None = None
    user_id: int | None = None
    add_time: str | None = None  # "YYYY-MM-DD HH:MM:SS" (UTC), admin token
    pinned_to_deal_flag: Literal[0, 1] | None = None
    pinned_to_organization_flag: Literal[0, 1] | None = None
    pinned_to_person_flag: Literal[0, 1] | None = None


class NoteCreate(_NoteFields):
    content: str


class NoteUpdate(_NoteFields):
    pass


class Note(PDModel):
    id: int
    content: str | None = None
    add_time: str | None = None
    update_time: str | None = None
    active_flag: bool | None = None
    deal_id: int | None = None
    person_id: int | None = None
    org_id: int | None = None
    user_id: int | None = None


# --- files (v1) ---------------------------------------------------------------------------------


class File(PDModel):
    id: int
    file_name: str | None = None
    file_size: int | None = None
    file_type: str | None = None
    deal_id: int | None = None
    org_id: int | None = None
    person_id: int | None = None
    activity_id: int | None = None
    add_time: str | None = None
    update_time: str | None = None
    active_flag: bool | None = None
    name: str | None = None
    url: str | None = None


# --- activity types (v1) ------------------------------------------------------------------------


class ActivityTypeCreate(PDModel):
    name: str
    icon_key: str
    color: str | None = None  # 6-character HEX, no '#'


class ActivityType(PDModel):
    id: int
    name: str | None = None
    icon_key: str | None = None
    color: str | None = None
    order_nr: int | None = None
    key_string: str | None = None
    active_flag: bool | None = None
    is_custom_flag: bool | None = None


# --- organization relationships (v1) ------------------------------------------------------------


class OrganizationRelationshipCreate(PDModel):
    type: Literal["parent", "related"]
    rel_owner_org_id: int  # the parent, for type "parent"
    rel_linked_org_id: int  # the child
    org_id: int | None = None


def _org_ref_id(value: Any) -> int | None:
    if isinstance(value, dict):
        v = value.get("value", value.get("id"))
        return int(v) if v is not None else None
    return int(value) if value is not None else None


class OrganizationRelationship(PDModel):
    id: int
    type: str | None = None
    # v1 answers these as an org object ({"value": id, "name": ...}) or a bare id
    rel_owner_org_id: Any = None
    rel_linked_org_id: Any = None
    add_time: str | None = None
    update_time: str | None = None
    active_flag: Any = None

    @property
    def owner_org_id(self) -> int | None:
        return _org_ref_id(self.rel_owner_org_id)

    @property
    def linked_org_id(self) -> int | None:
        return _org_ref_id(self.rel_linked_org_id)


# --- users (v1) ---------------------------------------------------------------------------------


class User(PDModel):
    id: int
    name: str | None = None
    email: str | None = None
    active_flag: bool | None = None
    is_admin: int | bool | None = None
    is_you: bool | None = None
    is_deleted: bool | None = None
    timezone_name: str | None = None
    company_id: int | None = None
    company_domain: str | None = None
