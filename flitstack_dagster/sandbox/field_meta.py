"""Field metadata (`ui_visibility`, `important_fields`, `required_fields`) as Pipedrive's field create and
update requests type it, per entity: the shape is checked against the request schema, the pipelines and
stages it names must exist, and only the keys a field answers with are kept."""

from __future__ import annotations

import copy
from typing import Any

from flitstack_dagster.sandbox.errors import bad_request
from flitstack_dagster.sandbox.values import is_int

META_KEYS = ("ui_visibility", "important_fields", "required_fields")

_BOOL = {"type": "boolean"}
_IDS = {"type": "array", "items": {"type": "integer"}}
_DIALOG = {"type": "object", "properties": {"show": _BOOL, "order": {"type": "integer", "nullable": True}}}
_IMPORTANT = {"type": "object", "properties": {"enabled": _BOOL, "stage_ids": _IDS}}
_ENABLED_ONLY = {"type": "object", "properties": {"enabled": _BOOL}}

# what each metadata object of a field create or update request may hold, per entity
SCHEMAS: dict[str, dict[str, dict]] = {
    "deal": {
        "ui_visibility": {"type": "object", "properties": {
            "add_visible_flag": _BOOL, "details_visible_flag": _BOOL, "projects_detail_visible_flag": _BOOL,
            "show_in_pipelines": {"type": "object", "properties": {"show_in_all": _BOOL, "pipeline_ids": _IDS}}}},
        "important_fields": _IMPORTANT,
        "required_fields": {"type": "object", "properties": {
            "enabled": _BOOL, "stage_ids": _IDS,
            "statuses": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "string", "enum": ["won", "lost"]}}}}},
    },
    "person": {
        "ui_visibility": {"type": "object", "properties": {
            "add_visible_flag": _BOOL, "details_visible_flag": _BOOL, "show_in_add_deal_dialog": _DIALOG}},
        "important_fields": _IMPORTANT,
        "required_fields": _ENABLED_ONLY,
    },
    "organization": {
        "ui_visibility": {"type": "object", "properties": {
            "add_visible_flag": _BOOL, "details_visible_flag": _BOOL, "show_in_add_deal_dialog": _DIALOG,
            "show_in_add_person_dialog": _DIALOG}},
        "important_fields": _IMPORTANT,
        "required_fields": _ENABLED_ONLY,
    },
}

# a new custom field's metadata where its create request leaves it out
_DIALOG_DEFAULT = {"show": False, "order": None}
DEFAULTS: dict[str, dict[str, dict]] = {
    "deal": {
        "ui_visibility": {"add_visible_flag": False, "details_visible_flag": True,
                          "projects_detail_visible_flag": False,
                          "show_in_pipelines": {"show_in_all": True, "pipeline_ids": []}},
        "important_fields": {"enabled": False, "stage_ids": []},
        "required_fields": {"enabled": False, "stage_ids": [], "statuses": {}},
    },
    "person": {
        "ui_visibility": {"add_visible_flag": False, "details_visible_flag": True,
                          "show_in_add_deal_dialog": _DIALOG_DEFAULT},
        "important_fields": {"enabled": False, "stage_ids": []},
        "required_fields": {"enabled": False},
    },
    "organization": {
        "ui_visibility": {"add_visible_flag": False, "details_visible_flag": True,
                          "show_in_add_deal_dialog": _DIALOG_DEFAULT, "show_in_add_person_dialog": _DIALOG_DEFAULT},
        "important_fields": {"enabled": False, "stage_ids": []},
        "required_fields": {"enabled": False},
    },
}

# system fields whose add-modal visibility cannot be switched off
ALWAYS_IN_ADD_MODAL = {"deal": {"title", "pipeline", "pipeline_id", "stage_id", "probability"},
                       "organization": {"name"}, "person": set()}


def schema_error(value: Any, schema: dict, where: str) -> str | None:
    """Where `value` breaks `schema` (the subset of JSON Schema the metadata uses), or None."""
    if value is None:
        return None if schema.get("nullable") else f"'{where}' must not be null"
    kind = schema.get("type")
    ok = {"object": isinstance(value, dict), "array": isinstance(value, list), "boolean": isinstance(value, bool),
          "integer": is_int(value), "string": isinstance(value, str)}.get(kind, True)
    if not ok:
        return f"'{where}' must be of type {kind}"
    if "enum" in schema and value not in schema["enum"]:
        return f"'{where}' must be one of {', '.join(map(str, schema['enum']))}"
    if kind == "array":
        return next((e for i, x in enumerate(value) if (e := schema_error(x, schema["items"], f"{where}[{i}]"))), None)
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None and (e := schema_error(v, sub, f"{where}.{k}")):
                return e
    return None


def _known(value: dict, schema: dict) -> dict:
    """The keys the schema names, nested objects likewise: extra keys are allowed in a request but a
    field never answers with them."""
    out = {}
    for k, v in value.items():
        sub = schema.get("properties", {}).get(k)
        if sub is None and isinstance(schema.get("additionalProperties"), dict):
            sub = schema["additionalProperties"]
        if sub is not None:
            out[k] = _known(v, sub) if sub.get("type") == "object" and "properties" in sub else copy.deepcopy(v)
    return out


def checked_meta(entity: str, body: dict) -> dict[str, dict]:
    """The metadata objects in `body`, shape-checked and trimmed to known keys; 400 when one is wrong."""
    out = {}
    for key in META_KEYS:
        if key not in body:
            continue
        schema = SCHEMAS[entity][key]
        err = schema_error(body[key], schema, key) if body[key] is not None else f"'{key}' must be an object"
        if err:
            raise bad_request(f"Invalid field metadata: {err}", f"See the {key} object of {entity} fields.")
        out[key] = _known(body[key], schema)
    return out


def check_references(meta: dict[str, dict], live_pipelines: set[int], live_stages: set[int]) -> None:
    """The pipelines and stages the metadata names must be active ones."""
    pipeline_ids = list((meta.get("ui_visibility", {}).get("show_in_pipelines") or {}).get("pipeline_ids", []))
    statuses = meta.get("required_fields", {}).get("statuses", {})
    for key in statuses:
        if not key.isdigit():
            raise bad_request("Invalid value for 'required_fields.statuses': keys are pipeline ids")
        pipeline_ids.append(int(key))
    for pid in pipeline_ids:
        if pid not in live_pipelines:
            raise bad_request(f"Pipeline {pid} does not exist", "Field metadata may name active pipelines only.")
    for key in ("important_fields", "required_fields"):
        for sid in meta.get(key, {}).get("stage_ids", []):
            if sid not in live_stages:
                raise bad_request(f"Stage {sid} does not exist", "Field metadata may name active stages only.")


def merged(current: dict | None, change: dict) -> dict:
    """An update sets the keys it names and keeps the others."""
    return {**copy.deepcopy(current or {}), **change}
