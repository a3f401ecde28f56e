"""Turn a shaped record's logical payload into the request body for this Pipedrive account.

Shaping writes field *names* (`Novo_Priority__c`), option *labels* (`High`), stage and pipeline
*names* and references by *source id*. Here they become this account's 40-hex keys, option ids,
stage/pipeline ids and Pipedrive record ids — from the field registry and the id map, never by a
search and never hard-coded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.core.errors import UserError

# Which id-map entity a source id's prefix refers to (`asset:00042` is an organization).
REF_ENTITY = ENTITIES.source_kinds


@dataclass
class CustomField:
    key: str
    field_type: str
    options: dict[str, int] = field(default_factory=dict)  # label -> option id


@dataclass
class Registry:
    """This account's custom-field keys and option ids, pipelines, stages and activity types."""

    fields: dict[str, dict[str, CustomField]]  # entity -> name -> field
    pipelines: dict[str, int]  # name -> id
    stages: dict[tuple[int, str], int]  # (pipeline id, stage name) -> id
    activity_types: dict[str, str]  # name or key -> key_string

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, account: str) -> "Registry":
        """What `pipedrive_schema` recorded for this account (mapping.provision writes it)."""
        fields: dict[str, dict[str, CustomField]] = {}
        for entity, name, key, ftype, options in con.execute(
            "SELECT entity, name, key, field_type, options FROM meta.field_registry WHERE account = ?", [account]
        ).fetchall():
            fields.setdefault(entity, {})[name] = CustomField(key, ftype, _options(options))
        pipelines, stages, types = {}, {}, {}
        for kind, name, pid, parent, extra in con.execute(
            "SELECT kind, name, pd_id, parent_id, key_string FROM meta.pipeline_registry WHERE account = ?", [account]
        ).fetchall():
            if kind == "pipeline":
                pipelines[name] = int(pid)
            elif kind == "stage":
                stages[(int(parent), name)] = int(pid)
            elif kind == "activity_type":
                types[name] = extra or name
                types[extra or name] = extra or name
        return cls(fields, pipelines, stages, types)


def _options(raw: Any) -> dict[str, int]:
    data = json.loads(raw) if isinstance(raw, str) else (raw or [])
    if isinstance(data, dict):
        return {str(k): int(v) for k, v in data.items()}
    return {str(o["label"]): int(o["id"]) for o in data}


class Unresolved(Exception):
    """A reference or value this account does not have yet; the record is set aside with this reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Resolver:
    def __init__(self, registry: Registry, id_maps: dict[str, dict[str, int]]):
        self.registry = registry
        self.id_maps = id_maps  # entity -> source id -> pipedrive id

    def ref(self, source_id: str) -> int:
        entity = REF_ENTITY.get(source_id.split(":", 1)[0])
        pid = self.id_maps.get(entity or "", {}).get(source_id)
        if pid is None:
            raise Unresolved("reference_not_loaded", f"{source_id} is not in Pipedrive yet")
        return pid

    def body(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        """The API body for one shaped row (`payload` JSON plus reference columns)."""
        payload = json.loads(row["payload"])
        custom_defs = self.registry.fields.get(entity, {})
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        pipeline_id = None
        if "pipeline" in payload:
            name = payload.pop("pipeline")
            pipeline_id = self.registry.pipelines.get(name)
            if pipeline_id is None:
                raise UserError(f"pipeline '{name}' is not provisioned; materialize pipedrive_schema first")
            body["pipeline_id"] = pipeline_id
        if "stage" in payload:
            stage = payload.pop("stage")
            if stage is not None:
                sid = self.registry.stages.get((pipeline_id or 0, stage))
                if sid is None:
                    raise Unresolved("stage_not_provisioned", f"stage '{stage}' is not in the pipeline")
                body["stage_id"] = sid
        if "type" in payload and entity == "activity":
            t = payload.pop("type")
            body["type"] = self.registry.activity_types.get(t, t)
        for name, value in payload.items():
            if isinstance(value, dict) and "$ref" in value:
                value = self.ref(value["$ref"])
            cf = custom_defs.get(name)
            if cf is None:
                body[name] = value
            elif cf.key == name:  # a standard field with options (organization labels): top level, ids
                body[name] = self._custom_value(name, cf, value)
            else:
                custom[cf.key] = self._custom_value(name, cf, value)
        if entity in ("organization",) and isinstance(body.get("address"), str):
            body["address"] = {"value": body["address"]}  # API v2 takes an address object
        for ref in ENTITIES[entity].references:
            if row.get(ref.column):
                body[ref.field] = self.ref(row[ref.column])
        if row.get("owner_id") is not None and entity in ("organization", "person", "deal", "activity"):
            body["owner_id"] = int(row["owner_id"])
        if custom:
            body["custom_fields"] = custom
        return body

    @staticmethod
    def _custom_value(name: str, cf: CustomField, value: Any) -> Any:
        if value is None:
            return None
        if cf.field_type == "enum":
            if str(value) not in cf.options:
                raise Unresolved("option_not_provisioned", f"'{value}' is not an option of {name}")
            return cf.options[str(value)]
        if cf.field_type == "set":
            vals = value if isinstance(value, list) else [value]
            missing = [v for v in vals if str(v) not in cf.options]
            if missing:
                raise Unresolved("option_not_provisioned", f"{missing} are not options of {name}")
            return [cf.options[str(v)] for v in vals]
        return value


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Only what differs, custom fields compared key by key; a field gone from `new` is cleared."""
    out: dict[str, Any] = {}
    for k in set(old) | set(new):
        if k == "custom_fields":
            oc, nc = old.get(k) or {}, new.get(k) or {}
            diff = {ck: nc.get(ck) for ck in set(oc) | set(nc) if oc.get(ck) != nc.get(ck)}
            if diff:
                out[k] = diff
        elif old.get(k) != new.get(k):
            out[k] = new.get(k)
    return out


def before_values(old: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The values `changes` overwrites, so a rollback can put them back."""
    out: dict[str, Any] = {}
    for k, v in changes.items():
        if k == "custom_fields":
            out[k] = {ck: (old.get(k) or {}).get(ck) for ck in v}
        else:
            out[k] = old.get(k)
    return out
