"""Schema provisioning — the first step that writes to Pipedrive.

Creates whatever the approved mapping needs and the account lacks: custom fields on deal, person and
organization (with their enum/set options), missing options on existing fields, organization labels
(options of the standard organization `label_ids` field), the pipeline and its stages, and the
activity types the mapping sends records to (`Work Order Labor` / `Work Order Parts` by default; every
type used is recorded, name → key). The account-specific keys and option ids go
to DuckDB: `meta.field_registry` and `meta.pipeline_registry`.

* Idempotent: existing things are matched first by the key the registry recorded (so a field the
  user renamed in Pipedrive is still found), then by name (case- and space-insensitive). A second
  run creates nothing.
* Headroom first: before creating anything the plan's custom-field cap (lite 30, growth 100,
  premium 300, ultimate 500) is compared with the fields the account has plus those to create; if
  they would not fit, the whole step is refused with a UserError and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.activity_rows import LABOR_TYPE, PARTS_TYPE, activity_types_used
from flitstack_dagster.mapping.audit import (
    PLAN_FIELD_CAP,
    AccountAudit,
    PdField,
    PdOption,
    _attr,
    _norm,
    plan_key,
    read_activity_types,
    read_fields,
    read_pipelines,
)
from flitstack_dagster.mapping.model import FOLDS, Mapping
from flitstack_dagster.mapping.propose import COMPATIBLE
from flitstack_dagster.novo.runs import check_account

ACTIVITY_TYPES = ((LABOR_TYPE, "cogs"), (PARTS_TYPE, "cart"))  # icons of the types the product proposes
FIELD_ENTITIES = ("deal", "person", "organization")
COUNTED_ENTITIES = ("deal", "person", "organization", "activity")  # the cap is per company
API_TYPE = {"person": "people"}  # mapping field_type -> Pipedrive field_type where they differ
LABEL_KEYS = ("label_ids", "label")

DDL = (
    "CREATE SCHEMA IF NOT EXISTS meta",
    """CREATE TABLE IF NOT EXISTS meta.field_registry (
        account VARCHAR, entity VARCHAR, name VARCHAR, key VARCHAR, field_type VARCHAR, options VARCHAR,
        updated_at TIMESTAMPTZ, PRIMARY KEY (account, entity, name))""",
    """CREATE TABLE IF NOT EXISTS meta.pipeline_registry (
        account VARCHAR, kind VARCHAR, name VARCHAR, pd_id BIGINT, parent_id BIGINT, key_string VARCHAR,
        updated_at TIMESTAMPTZ, PRIMARY KEY (account, kind, name))""",
)


class FieldNeed(BaseModel):
    entity: str
    name: str
    field_type: str
    options: list[str] = Field(default_factory=list)
    custom: bool = True  # False: a standard field (organization labels) that only needs options


class ProvisionResult(BaseModel):
    account: str = ""
    created_fields: list[str] = Field(default_factory=list)  # "deal.Novo_Priority__c"
    added_options: dict[str, list[str]] = Field(default_factory=dict)  # "deal.Novo_Priority__c" -> labels
    created_pipeline: str | None = None
    created_stages: list[str] = Field(default_factory=list)
    created_activity_types: list[str] = Field(default_factory=list)
    reused_fields: list[str] = Field(default_factory=list)
    custom_fields_before: int = 0
    custom_field_cap: int | None = None
    requests: int = 0
    tokens: int = 0
    warnings: list[str] = Field(default_factory=list)

    @property
    def created_anything(self) -> bool:
        return bool(self.created_fields or self.added_options or self.created_pipeline or self.created_stages
                    or self.created_activity_types)


def ensure_registry(con) -> None:
    for stmt in DDL:
        con.execute(stmt)


# The deal's long-text fields a record plan writes folded facts to (mapping.model.FOLDS says which).
PLAN_FIELDS: dict[str, FieldNeed] = {
    "timeline": FieldNeed(entity="deal", name="Novo Timeline", field_type="text"),
    "labor": FieldNeed(entity="deal", name="Novo Labor", field_type="text"),
    "parts": FieldNeed(entity="deal", name="Novo Parts", field_type="text"),
}


def plan_field_needs(record_plan: str) -> list[FieldNeed]:
    """The fields the record plan writes to, in PLAN_FIELDS' order."""
    used = set(FOLDS.get(record_plan, {}).values())
    return [n.model_copy() for key, n in PLAN_FIELDS.items() if key in used]


def field_needs(mapping: Mapping) -> list[FieldNeed]:
    """One need per (entity, name): options merged over every column mapped there plus value-map targets,
    and the fields the record plan needs."""
    needs: dict[tuple[str, str], FieldNeed] = {(n.entity, n.name): n for n in plan_field_needs(mapping.record_plan)}
    for f in mapping.fields:
        if f.target_entity not in FIELD_ENTITIES or not f.target_field:
            continue
        if f.custom and f.field_type:
            key = (f.target_entity, f.target_field)
            n = needs.setdefault(key, FieldNeed(entity=f.target_entity, name=f.target_field, field_type=f.field_type))
        elif f.target_entity == "organization" and f.target_field in LABEL_KEYS and f.options:
            key = (f.target_entity, f.target_field)
            n = needs.setdefault(key, FieldNeed(entity="organization", name=f.target_field, field_type="set",
                                                custom=False))
        else:
            continue
        for o in f.options:
            if o and o not in n.options:
                n.options.append(o)
        if f.transform.startswith("value_map:"):
            for t in mapping.value_maps.get(f.transform.split(":", 1)[1], {}).values():
                if t and t not in n.options and n.field_type in ("enum", "set"):
                    n.options.append(t)
    return list(needs.values())


def _account_id(client: Any) -> str:
    return client.account()


def _usage_total(client: Any) -> tuple[int, int]:
    u = getattr(client, "usage", None)
    if callable(u):
        u = u()
    if not isinstance(u, dict):
        return 0, 0
    return (sum(int(v.get("requests", 0)) for v in u.values() if isinstance(v, dict)),
            sum(int(v.get("tokens", 0)) for v in u.values() if isinstance(v, dict)))


def _registry(con, account: str) -> dict[tuple[str, str], str]:
    return {(e, n): k for e, n, k in con.execute(
        "SELECT entity, name, key FROM meta.field_registry WHERE account = ?", [account]).fetchall()}


def _match(need: FieldNeed, fields: list[PdField], reg: dict[tuple[str, str], str]) -> PdField | None:
    if not need.custom:
        for k in LABEL_KEYS:
            for f in fields:
                if f.key == k:
                    return f
        for f in fields:
            if not f.custom and _norm(f.name) in ("label", "labels"):
                return f
        return None
    key = reg.get((need.entity, need.name))
    if key:
        for f in fields:
            if f.key == key:
                return f
    hits = sorted((f for f in fields if f.custom and _norm(f.name) == _norm(need.name)), key=lambda f: f.key)
    return hits[0] if hits else None


def _fd(obj: Any) -> PdField:
    from flitstack_dagster.mapping.audit import _field

    return _field(obj)


@dataclass
class _Account:
    """What the account has before provisioning: custom fields per entity, pipelines, activity types."""

    fields: dict[str, list[PdField]]
    counted: int  # custom fields towards the plan's cap
    pipelines: list[Any]
    types: list[Any]
    registry: dict[tuple[str, str], str]  # (entity, name) -> key recorded earlier


@dataclass
class _FieldPlan:
    to_create: list[FieldNeed] = field(default_factory=list)
    to_extend: list[tuple[FieldNeed, PdField, list[str]]] = field(default_factory=list)
    matched: list[tuple[FieldNeed, PdField]] = field(default_factory=list)


def provision_schema(client: Any, mapping: Mapping, con, *, plan: str | None = None,
                     run_key: str | None = None, audit: AccountAudit | None = None) -> ProvisionResult:
    """Create what the mapping needs and is missing; record keys and option ids (see module doc).

    With `run_key`, the account is checked against the run's first (refused: WrongAccount) first."""
    if run_key is not None:
        check_account(con, client, run_key)
    ensure_registry(con)
    account = _account_id(client)
    res = ProvisionResult(account=account)
    req0, tok0 = _usage_total(client)
    have = _from_audit(audit, con, account, mapping)
    if have is None:
        have = _read_account(client, con, account, res)
    todo = _plan_fields(field_needs(mapping), have)
    _check_headroom(client, plan, have.counted, todo.to_create, res)
    now = datetime.now(UTC)
    res.reused_fields += [f"{n.entity}.{n.name}" for n, _ in todo.matched]
    _add_options(client, todo.to_extend, res)
    _create_fields(client, todo, have.fields, res)
    pipe_name = mapping.options.pipeline_name
    pid, stage_ids = _ensure_pipeline(client, con, account, have.pipelines, pipe_name, mapping.pipeline_stages, res)
    type_ids = _ensure_activity_types(client, mapping, have.types, res)
    _record_fields(con, account, todo.matched, now)
    _record_pipeline(con, account, pipe_name, pid, stage_ids, type_ids, now)
    req1, tok1 = _usage_total(client)
    res.requests, res.tokens = req1 - req0, tok1 - tok0
    return res


def _read_account(client: Any, con, account: str, res: ProvisionResult) -> _Account:
    fields: dict[str, list[PdField]] = {e: read_fields(client, e) for e in FIELD_ENTITIES}
    counted = sum(1 for e in FIELD_ENTITIES for f in fields[e] if f.custom)
    try:
        counted += sum(1 for f in read_fields(client, "activity") if f.custom)
    except Exception as e:  # noqa: BLE001 - activity fields are only counted
        res.warnings.append(f"activity fields not counted: {e}")
    pipelines = read_pipelines(client)
    types = read_activity_types(client)
    return _Account(fields, counted, pipelines, types, _registry(con, account))


def _from_audit(audit: AccountAudit | None, con, account: str, mapping: Mapping) -> _Account | None:
    """The account as the run's audit read it, when by that reading the mapping needs nothing created or
    extended (a delta, a full run after its sample): the reads are not repeated. Anything it shows as
    missing is read again first, so nothing is created from a stale reading; an audit of another account
    (settings changed since) is never used: its keys would be recorded for this one."""
    if audit is None or audit.account != account or audit.errors or any(e not in audit.fields for e in FIELD_ENTITIES):
        return None
    have = _Account({e: audit.fields[e] for e in FIELD_ENTITIES}, audit.custom_field_count, audit.pipelines,
                    audit.activity_types, _registry(con, account))
    try:
        todo = _plan_fields(field_needs(mapping), have)
    except UserError:
        return None
    pipe = audit.pipeline(mapping.options.pipeline_name)
    complete = (pipe is not None and {_norm(s) for s in mapping.pipeline_stages} <= {_norm(s.name) for s in pipe.stages}
                and all(audit.activity_type(t) is not None for t in activity_types_used(mapping)))
    return have if complete and not todo.to_create and not todo.to_extend else None


def _plan_fields(needs: list[FieldNeed], have: _Account) -> _FieldPlan:
    """Which needs the account meets, which need options added, which fields to create; a field of the
    wrong type (or no label field) refuses the whole step before anything is written."""
    todo = _FieldPlan()
    problems: list[str] = []
    for n in needs:
        f = _match(n, have.fields[n.entity], have.registry)
        if f is None:
            if not n.custom:
                problems.append(f"the account has no standard {n.entity} label field to add labels to")
            else:
                todo.to_create.append(n)
            continue
        want_type = API_TYPE.get(n.field_type, n.field_type)
        if n.custom and f.field_type not in COMPATIBLE.get(n.field_type, {want_type}) and f.field_type != want_type:
            problems.append(f"{n.entity} field '{f.name}' ({f.key}) is {f.field_type} in Pipedrive but the mapping "
                            f"needs {n.field_type}: rename one of them in the approved mapping")
            continue
        labels = {_norm(o.label) for o in f.options}
        missing = [o for o in n.options if _norm(o) not in labels] if n.field_type in ("enum", "set") else []
        todo.matched.append((n, f))
        if missing:
            todo.to_extend.append((n, f, missing))
    if problems:
        raise UserError("schema provisioning refused, nothing was created:\n  - " + "\n  - ".join(problems))
    return todo


def _check_headroom(client: Any, plan: str | None, counted: int, to_create: list[FieldNeed],
                    res: ProvisionResult) -> None:
    """Refuse before writing anything when the new fields would not fit under the plan's cap."""
    pk = plan_key(plan) or plan_key(getattr(client, "plan", None))
    cap = PLAN_FIELD_CAP.get(pk) if pk else None
    res.custom_fields_before, res.custom_field_cap = counted, cap
    if cap is not None and counted + len(to_create) > cap:
        names = ", ".join(f"{n.entity}.{n.name}" for n in to_create)
        raise UserError(
            f"schema provisioning refused, nothing was created: the mapping needs {len(to_create)} new custom "
            f"field(s) but the {pk} plan allows {cap} per company and the account already has {counted} "
            f"(headroom {cap - counted}). Map fewer columns (set target_entity: none in mapping/approved.yaml), "
            f"reuse existing fields, or upgrade the plan. Needed: {names}"
        )


def _add_options(client: Any, to_extend: list[tuple[FieldNeed, PdField, list[str]]], res: ProvisionResult) -> None:
    for n, f, missing in to_extend:
        try:
            new = client.add_field_options(n.entity, f.key, missing)
        except Exception as e:
            if n.custom:
                raise
            # organization labels: some accounts do not take label options over the API
            res.warnings.append(f"could not add {n.entity} labels {missing} through the API ({e}); create them in "
                                "Pipedrive (Settings > Labels) and re-run provisioning")
            continue
        for o in new or []:
            f.options.append(PdOption(id=_attr(o, "id"), label=str(_attr(o, "label", default=""))))
        res.added_options[f"{n.entity}.{n.name}"] = list(missing)


def _create_fields(client: Any, todo: _FieldPlan, fields: dict[str, list[PdField]], res: ProvisionResult) -> None:
    """Create the missing fields; each joins `todo.matched` so it is recorded with the others."""
    for n in todo.to_create:
        body: dict[str, Any] = {"field_name": n.name, "field_type": API_TYPE.get(n.field_type, n.field_type)}
        if n.field_type in ("enum", "set"):
            body["options"] = [{"label": o} for o in n.options]
        created = _fd(client.create_field(n.entity, body))
        fields[n.entity].append(created)
        todo.matched.append((n, created))
        res.created_fields.append(f"{n.entity}.{n.name}")


def _ensure_pipeline(client: Any, con, account: str, pipelines: list[Any], pipe_name: str, stages: list[str],
                     res: ProvisionResult) -> tuple[int, dict[str, int]]:
    """The pipeline (the one recorded earlier, else by name, else created) and its stages: (id, stage ids)."""
    pipe = next((p for p in pipelines if _norm(p.name) == _norm(pipe_name)), None)
    prow = con.execute("SELECT pd_id FROM meta.pipeline_registry WHERE account=? AND kind='pipeline' AND name=?",
                       [account, pipe_name]).fetchall()
    if prow:
        pipe = next((p for p in pipelines if p.id == prow[0][0]), pipe)
    if pipe is None:
        made = client.create_pipeline({"name": pipe_name})
        pid = int(_attr(made, "id"))
        res.created_pipeline = pipe_name
        existing_stages: dict[str, int] = {}
    else:
        pid = pipe.id
        existing_stages = {_norm(s.name): s.id for s in pipe.stages}
    stage_ids: dict[str, int] = {}
    for sname in stages:
        sid = existing_stages.get(_norm(sname))
        if sid is None:
            made = client.create_stage({"name": sname, "pipeline_id": pid})
            sid = int(_attr(made, "id"))
            res.created_stages.append(sname)
        stage_ids[sname] = sid
    return pid, stage_ids


def _ensure_activity_types(client: Any, mapping: Mapping, types: list[Any],
                           res: ProvisionResult) -> dict[str, tuple[int, str | None]]:
    """Name -> (id, key_string) of each activity type the loads use, created when missing."""
    type_ids: dict[str, tuple[int, str | None]] = {}
    icons = dict(ACTIVITY_TYPES)
    for tname in activity_types_used(mapping):  # the mapping's types: created when missing, all recorded
        icon = icons.get(tname, "task")
        t = next((t for t in types if _norm(t.name) == _norm(tname)), None)
        if t is None:
            made = client.create_activity_type({"name": tname, "icon_key": icon})
            type_ids[tname] = (int(_attr(made, "id")), _attr(made, "key_string"))
            res.created_activity_types.append(tname)
        else:
            type_ids[tname] = (t.id, t.key_string)
    return type_ids


def _record_fields(con, account: str, matched: list[tuple[FieldNeed, PdField]], now: datetime) -> None:
    for n, f in matched:
        con.execute(
            "INSERT OR REPLACE INTO meta.field_registry VALUES (?, ?, ?, ?, ?, ?, ?)",
            [account, n.entity, n.name, f.key, f.field_type,
             json.dumps([{"id": o.id, "label": o.label} for o in f.options], ensure_ascii=False), now],
        )


def _record_pipeline(con, account: str, pipe_name: str, pid: int, stage_ids: dict[str, int],
                     type_ids: dict[str, tuple[int, str | None]], now: datetime) -> None:
    con.execute("INSERT OR REPLACE INTO meta.pipeline_registry VALUES (?, 'pipeline', ?, ?, NULL, NULL, ?)",
                [account, pipe_name, pid, now])
    for sname, sid in stage_ids.items():
        con.execute("INSERT OR REPLACE INTO meta.pipeline_registry VALUES (?, 'stage', ?, ?, ?, NULL, ?)",
                    [account, sname, sid, pid, now])
    for tname, (tid, ks) in type_ids.items():
        con.execute("INSERT OR REPLACE INTO meta.pipeline_registry VALUES (?, 'activity_type', ?, ?, NULL, ?, ?)",
                    [account, tname, tid, ks, now])


def field_registry(con, account: str | None = None) -> dict[tuple[str, str], dict]:
    """(entity, name) -> {key, field_type, options: {label: id}} as recorded (for shaping/loading)."""
    ensure_registry(con)
    sql = "SELECT account, entity, name, key, field_type, options FROM meta.field_registry"
    rows = con.execute(sql + (" WHERE account = ?" if account else ""), [account] if account else []).fetchall()
    return {(e, n): {"account": a, "key": k, "field_type": t,
                     "options": {o["label"]: o["id"] for o in json.loads(opts or "[]")}}
            for a, e, n, k, t, opts in rows}


__all__ = ["ACTIVITY_TYPES", "FieldNeed", "ProvisionResult", "ensure_registry", "field_needs", "field_registry",
           "provision_schema"]
