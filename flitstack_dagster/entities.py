"""Every Pipedrive entity the migration writes, declared once.

Each `Entity` says what the rest of the product needs to know about it: its shaped table
(`pd_<plural>`) and load asset (`loaded_<plural>`), the records it references (request field, shaped
column, parent entity), the API routes it is written and read through and what each costs in tokens
(looked up in the official cost table, never typed here), how a record in Pipedrive says which source
record it is, and how it is read back. Load order (parents first) and rollback order (its reverse)
are derived from the references, so they can never disagree.

Stages read the product's registry, `ENTITIES`; functions that build something from it (the Dagster
definitions, the orders) take a registry as an argument, so a registry with one more entity can be
built and checked without touching this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from flitstack_dagster.pipedrive.client import IDS_PER_REQUEST, V1_PREFIX, V2_PREFIX
from flitstack_dagster.pipedrive.costs import default_cost_table
from flitstack_dagster.pipedrive.limits import file_limit_text

API_PREFIX = {"v1": V1_PREFIX, "v2": V2_PREFIX}

Identity = Literal["source_id_field", "marker", "linked_organizations"]
ReadBack = Literal["ids", "v1", "one_by_one"]


@dataclass(frozen=True)
class Reference:
    """One foreign key: the request field that holds the parent's Pipedrive id, the shaped column that
    holds the parent's source id, and the parent entity."""

    field: str
    column: str
    parent: str


@dataclass(frozen=True)
class Route:
    """One API operation, as the official OpenAPI files name it (method and full path template)."""

    method: str
    path: str

    @property
    def tokens(self) -> int:
        """The operation's token cost, from the official cost table."""
        op = default_cost_table().lookup(self.method, self.path)
        if op is None:
            raise ValueError(f"{self.method} {self.path} is not in Pipedrive's cost table")
        return op.cost

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Entity:
    """One Pipedrive entity the migration writes; see the module doc for what depends on each field."""

    name: str  # the loader's, id map's and audit log's name: "deal"
    plural: str  # names the shaped table and the load asset: "deals"
    description: str  # what the shaped records are, in the user's words
    api: Literal["v1", "v2"]
    collection: str  # "/deals"
    references: tuple[Reference, ...] = ()
    required: tuple[str, ...] = ()  # payload fields a create needs
    identity: Identity = "source_id_field"
    marker_field: str | None = None  # where a `marker` identity is carried (request and answer field)
    source_kinds: tuple[str, ...] = ()  # source-id prefixes that become this entity (`asset:00042`)
    client_name: str | None = None  # the client's method suffix, when it is not `name`
    lists_updated_since: bool = True  # its list takes `updated_since` (v1 files do not)

    # -- names ------------------------------------------------------------------------------------------
    @property
    def shaped_table(self) -> str:
        return f"pd_{self.plural}"

    @property
    def load_asset(self) -> str:
        return f"loaded_{self.plural}"

    @property
    def method_name(self) -> str:
        """Suffix of the client's methods for this entity (`create_<…>`, `delete_<…>`, `list_<…>s`)."""
        return self.client_name or self.name

    @property
    def parents(self) -> tuple[str, ...]:
        """The entities this one references, each once, in declaration order."""
        return tuple(dict.fromkeys(r.parent for r in self.references))

    # -- routes -----------------------------------------------------------------------------------------
    @property
    def _base(self) -> str:
        return API_PREFIX[self.api] + self.collection

    @property
    def create(self) -> Route:
        return Route("POST", self._base)

    @property
    def update(self) -> Route:
        return Route("PATCH" if self.api == "v2" else "PUT", f"{self._base}/{{id}}")

    @property
    def delete(self) -> Route:
        return Route("DELETE", f"{self._base}/{{id}}")

    @property
    def read(self) -> Route:
        return Route("GET", f"{self._base}/{{id}}")

    @property
    def list_all(self) -> Route:
        return Route("GET", self._base)

    # -- read-back --------------------------------------------------------------------------------------
    @property
    def read_back(self) -> ReadBack:
        """How records are read back by id: v2 lists take `ids=`; v1 has no `ids`, so one by one or one
        list; a record with no identity of its own (relationships) one by one."""
        if self.identity == "linked_organizations":
            return "one_by_one"
        return "ids" if self.api == "v2" else "v1"

    @property
    def read_back_batch(self) -> int | None:
        """Ids read back in one request (None: one by one)."""
        return IDS_PER_REQUEST if self.read_back == "ids" else None

    @property
    def scannable(self) -> bool:
        """Every record says which source record it is, so one list of the account finds them all."""
        return self.identity != "linked_organizations"


# what an activity or a note can hang on (request bodies carry them in this order)
_ORG_PERSON_DEAL = (Reference("org_id", "org_ref", "organization"), Reference("person_id", "person_ref", "person"),
                    Reference("deal_id", "deal_ref", "deal"))

PRODUCT_ENTITIES: tuple[Entity, ...] = (
    Entity(
        "organization", "organizations",
        "Accounts and assets as Pipedrive organizations (plus the placeholder for standalone assets).",
        api="v2", collection="/organizations", required=("name",),
        source_kinds=("account", "asset", "placeholder"),
    ),
    Entity(
        "org_relationship", "org_relationships",
        "Asset parent links as organization relationships, flattened past two levels, cycles broken.",
        api="v1", collection="/organizationRelationships",
        references=(Reference("rel_owner_org_id", "parent_ref", "organization"),
                    Reference("rel_linked_org_id", "org_ref", "organization")),
        required=("type",), identity="linked_organizations", client_name="organization_relationship",
        lists_updated_since=False,
    ),
    Entity(
        "person", "persons", "Technicians and requesters as Pipedrive persons.",
        api="v2", collection="/persons",
        references=(Reference("org_id", "org_ref", "organization"),),
        required=("name",), source_kinds=("contact",),
    ),
    Entity(
        "deal", "deals",
        "Work orders as deals: stage and status from the approved map, costs, owners, original dates.",
        api="v2", collection="/deals",
        references=(Reference("org_id", "org_ref", "organization"), Reference("person_id", "person_ref", "person")),
        required=("title", "pipeline", "stage", "status"), source_kinds=("work_order",),
    ),
    Entity(
        "activity", "activities", "Labor, parts, calls/emails/meetings and PM occurrences as activities.",
        api="v2", collection="/activities",
        references=_ORG_PERSON_DEAL,
        required=("subject", "type"), identity="marker", marker_field="note",
    ),
    Entity(
        "note", "notes",
        "Status changes, long descriptions, activity-log notes, PM history and inventory as notes.",
        api="v1", collection="/notes",
        references=_ORG_PERSON_DEAL,
        required=("content",), identity="marker", marker_field="content",
    ),
    Entity(
        "file", "files",
        f"Attachments with body path, size, hash and the {file_limit_text()} decision.",
        api="v1", collection="/files",
        references=(Reference("org_id", "org_ref", "organization"), Reference("deal_id", "deal_ref", "deal")),
        required=("file_name",), identity="marker", marker_field="name", lists_updated_since=False,
    ),
)


class Registry:
    """A set of entities and what follows from their references: load order and rollback order."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        declared = list(entities)
        names = [e.name for e in declared]
        if len(set(names)) != len(names):
            raise ValueError(f"an entity is declared twice: {names}")
        for e in declared:
            unknown = [p for p in e.parents if p not in names]
            if unknown:
                raise ValueError(f"{e.name} references {', '.join(unknown)}, which is not declared")
        self._by_name = {e.name: e for e in _load_order(declared)}

    def __iter__(self) -> Iterator[Entity]:
        """Entities in load order: every entity after the entities it references."""
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Entity:
        return self._by_name[name]

    def with_entity(self, entity: Entity) -> Registry:
        """This registry plus one entity (its place in the orders follows from its references)."""
        return Registry([*self._by_name.values(), entity])

    @property
    def load_order(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def rollback_order(self) -> tuple[str, ...]:
        """Children before the records they reference: the reverse of the load order."""
        return tuple(reversed(self.load_order))

    @property
    def shaped_tables(self) -> dict[str, str]:
        """Entity -> shaped table, in load order."""
        return {e.name: e.shaped_table for e in self}

    @property
    def reference_fields(self) -> dict[str, str]:
        """Request field that holds another record's Pipedrive id -> the entity it points at."""
        return _one_each((r.field, r.parent) for e in self for r in e.references)

    @property
    def reference_columns(self) -> dict[str, str]:
        """Shaped column that holds another record's source id -> the entity it points at."""
        return _one_each((r.column, r.parent) for e in self for r in e.references)

    @property
    def referenced(self) -> tuple[str, ...]:
        """Entities other records reference, in load order."""
        parents = {p for e in self for p in e.parents}
        return tuple(e.name for e in self if e.name in parents)

    @property
    def source_kinds(self) -> dict[str, str]:
        """Source-id prefix -> the entity it becomes."""
        return _one_each((k, e.name) for e in self for k in e.source_kinds)

    def with_identity(self, identity: Identity) -> tuple[str, ...]:
        return tuple(e.name for e in self if e.identity == identity)


def _load_order(entities: list[Entity]) -> list[Entity]:
    """Parents before children; entities free to go at the same time keep their declared order."""
    placed: list[Entity] = []
    done: set[str] = set()
    waiting = list(entities)
    while waiting:
        ready = next((e for e in waiting if set(e.parents) <= done), None)
        if ready is None:
            raise ValueError("entities reference each other in a circle: "
                             + ", ".join(e.name for e in waiting))
        placed.append(ready)
        done.add(ready.name)
        waiting.remove(ready)
    return placed


def _one_each(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, target in pairs:
        if out.setdefault(key, target) != target:
            raise ValueError(f"{key} points at both {out[key]} and {target}")
    return out


ENTITIES = Registry(PRODUCT_ENTITIES)


# -- the docs table ---------------------------------------------------------------------------------------

DOCS_BEGIN = "<!-- entities table: generated by `python -m flitstack_dagster.entities`; a test keeps it current -->"
DOCS_END = "<!-- end of entities table -->"
_IDENTITY_TEXT = {
    "source_id_field": "`Novo Source ID` custom field",
    "marker": "`[novo:…]` marker in `{field}`",
    "linked_organizations": "the two organizations it links",
}
_READ_BACK_TEXT = {"ids": f"`ids=` lists, {IDS_PER_REQUEST} a request", "v1": "one by one, or one list",
                   "one_by_one": "one by one"}


def docs_table(registry: Registry = ENTITIES) -> str:
    """The Markdown table of entities docs/contracts.md shows, between DOCS_BEGIN and DOCS_END."""
    head = ("| # | Entity | Shaped table | Load asset | References (request field → entity) | "
            "Create / update / delete / read (tokens) | Source identity | Read back |")
    lines = [DOCS_BEGIN, head, "|" + " --- |" * 8]
    for i, e in enumerate(registry, 1):
        refs = ", ".join(f"`{r.field}` → {r.parent}" for r in e.references) or "—"
        routes = "<br>".join(f"`{r}` ({r.tokens})" for r in (e.create, e.update, e.delete, e.read))
        identity = _IDENTITY_TEXT[e.identity].format(field=e.marker_field)
        lines.append(f"| {i} | {e.name} | `{e.shaped_table}` | `{e.load_asset}` | {refs} | {routes} | {identity} | "
                     f"{_READ_BACK_TEXT[e.read_back]} |")
    lines.append(DOCS_END)
    return "\n".join(lines)


if __name__ == "__main__":
    print(docs_table())
