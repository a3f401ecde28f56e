"""Read an account's schema — users, pipelines, stages, deal/person/organization/activity fields with
their options, activity types — with GET requests only, and say first what that costs.

`SCHEMA_READS` is every request the copy makes (one page each; a list longer than a page costs its
request again per extra page); `read_cost` prices them from the token cost table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .client import PipedriveClient
from .costs import CostTable, default_cost_table

FIELD_ENTITIES = ("deal", "person", "organization", "activity")
# the metadata namespaces Pipedrive lets each entity's fields include (activity fields: only ui_visibility)
FIELD_META = {"deal": ("ui_visibility", "important_fields", "required_fields"),
              "person": ("ui_visibility", "important_fields", "required_fields"),
              "organization": ("ui_visibility", "important_fields", "required_fields"),
              "activity": ("ui_visibility",)}

SCHEMA_READS: tuple[tuple[str, str], ...] = (
    ("GET", "/v1/users"),
    ("GET", "/api/v2/pipelines"),
    ("GET", "/api/v2/stages"),
    *(("GET", f"/api/v2/{e}Fields") for e in FIELD_ENTITIES),
    ("GET", "/v1/activityTypes"),
)


@dataclass
class AccountSchema:
    """What a rehearsal needs of an account, as Pipedrive answered it (plain JSON objects)."""

    users: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    activity_types: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """`7 users, 2 pipelines, 9 stages, 12 custom fields (31 options), 8 activity types`."""
        custom = [f for fs in self.fields.values() for f in fs if f.get("is_custom_field")]
        options = sum(len(f.get("options") or []) for f in custom)
        return (f"{len(self.users)} users, {len(self.pipelines)} pipelines, {len(self.stages)} stages, "
                f"{len(custom)} custom fields ({options} options), {len(self.activity_types)} activity types")


def read_cost(costs: CostTable | None = None) -> int:
    """Tokens the copy spends when every list fits in one page."""
    table = costs or default_cost_table()
    return sum(table.cost(method, path) for method, path in SCHEMA_READS)


def read_account_schema(client: PipedriveClient) -> AccountSchema:
    """Every part of the schema, read through `client` (GET requests only)."""
    return AccountSchema(
        users=[_plain(u) for u in client.list_users()],
        pipelines=[_plain(p) for p in client.list_pipelines()],
        stages=[_plain(s) for s in client.list_stages()],
        fields={e: [_plain(f) for f in client.list_fields(e, FIELD_META[e])] for e in FIELD_ENTITIES},
        activity_types=[_plain(t) for t in client.list_activity_types()],
    )


def _plain(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
