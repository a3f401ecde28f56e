"""v2 deal, person, organization and activity fields: list and read; for deal, person and organization
fields also create (with the per-plan cap), update and delete, and add, edit and delete options."""

from __future__ import annotations

import copy
from typing import Any

from flitstack_dagster.sandbox.errors import ApiError, bad_request, not_found
from flitstack_dagster.sandbox.field_meta import (
    ALWAYS_IN_ADD_MODAL,
    DEFAULTS,
    META_KEYS,
    check_references,
    checked_meta,
    merged,
)
from flitstack_dagster.sandbox.ratelimit import CUSTOM_FIELD_CAP
from flitstack_dagster.sandbox.routing import Ctx, Reply
from flitstack_dagster.sandbox.store import custom_field_key, iso
from flitstack_dagster.sandbox.values import is_int

CREATABLE_FIELD_TYPES = {"varchar", "text", "double", "phone", "date", "daterange", "time", "timerange", "set",
                         "enum", "varchar_auto", "address", "monetary", "org", "people", "user"}
FIELD_SEGMENTS = {"dealFields": "deal", "personFields": "person", "organizationFields": "organization",
                  "activityFields": "activity"}
# the request properties of field create and update; only deal fields take a description
CREATE_KEYS = {"field_name", "field_type", "options", *META_KEYS}
UPDATE_KEYS = {"field_name", *META_KEYS}
DESCRIBED = {"deal"}


class FieldRoutes:
    def _register_fields(self) -> None:
        r = self.router
        for seg, entity in FIELD_SEGMENTS.items():
            r.add("GET", f"/api/v2/{seg}", self._mk(self.fields_list, entity))
            r.add("GET", f"/api/v2/{seg}/{{field_code}}", self._mk(self.fields_get, entity))
            if entity == "activity":  # activity fields are read-only through the API
                continue
            r.add("POST", f"/api/v2/{seg}", self._mk(self.fields_create, entity))
            r.add("PATCH", f"/api/v2/{seg}/{{field_code}}", self._mk(self.fields_update, entity))
            r.add("DELETE", f"/api/v2/{seg}/{{field_code}}", self._mk(self.fields_delete, entity))
            options = f"/api/v2/{seg}/{{field_code}}/options"
            r.add("POST", options, self._mk(self.fields_add_options, entity))
            r.add("PATCH", options, self._mk(self.fields_update_options, entity))
            r.add("DELETE", options, self._mk(self.fields_delete_options, entity))

    def _render_field(self, entity: str, f: dict, ctx: Ctx | None = None) -> dict:
        out = {k: copy.deepcopy(v) for k, v in f.items() if k not in ("id", "add_time", "is_deleted")}
        if out.get("description") is None:
            out["description"] = ""
        if entity == "activity":
            out.pop("important_fields", None)
            out.pop("required_fields", None)
            out["ui_visibility"] = {k: v for k, v in out.get("ui_visibility", {}).items()
                                    if k in ("add_visible_flag", "details_visible_flag")}
        inc = set((ctx.query.get("include_fields") or "").split(",")) if ctx else set()
        for opt in META_KEYS:
            if ctx is not None and opt not in inc:
                out.pop(opt, None)
        return out

    def fields_list(self, ctx: Ctx, entity: str) -> Reply:
        fields = [f for f in self.state["fields"][entity] if not f.get("is_deleted")]
        page, nxt = self._page(ctx, fields)
        return Reply(200, {"success": True, "data": [self._render_field(entity, f, ctx) for f in page],
                           "additional_data": {"next_cursor": nxt}})

    def _field(self, entity: str, code: str) -> dict:
        for f in self.state["fields"][entity]:
            if f["field_code"] == code and not f.get("is_deleted"):
                return f
        raise not_found("Field not found")

    def fields_get(self, ctx: Ctx, entity: str) -> Reply:
        f = self._field(entity, ctx.params["field_code"])
        return Reply(200, {"success": True, "data": self._render_field(entity, f, ctx)})

    def custom_field_count(self) -> int:
        return sum(1 for e in ("deal", "person", "organization", "activity")
                   for f in self.state["fields"][e] if f["is_custom_field"] and not f.get("is_deleted"))

    def _new_options(self, labels: Any) -> list[dict]:
        if not isinstance(labels, list):
            raise bad_request("'options' must be an array of {label}")
        out = []
        for o in labels:
            if not isinstance(o, dict) or not isinstance(o.get("label"), str) or not o["label"].strip():
                raise bad_request("Every option needs a non-empty 'label'")
            if len(o["label"]) > 255:
                raise bad_request("Option labels are at most 255 characters")
            out.append({"id": self.state["next_option_id"], "label": o["label"]})
            self.state["next_option_id"] += 1
        return out

    def _check_keys(self, body: dict, entity: str, allowed: set[str]) -> None:
        allowed = allowed | ({"description"} if entity in DESCRIBED else set())
        for k in body:
            if k not in allowed:
                raise bad_request(f"Unknown parameter '{k}'")

    @staticmethod
    def _checked_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Missing required field 'field_name'")
        if len(name) > 255:
            raise bad_request("'field_name' is at most 255 characters")
        return name

    @staticmethod
    def _checked_description(desc: Any) -> str | None:
        if desc is not None and not isinstance(desc, str):
            raise bad_request("Invalid value for 'description'")
        return desc

    def _checked_meta(self, entity: str, body: dict) -> dict[str, dict]:
        meta = checked_meta(entity, body)
        live_pipelines = {p["id"] for p in self.store.records("pipelines").values() if not p["is_deleted"]}
        live_stages = {s["id"] for s in self.store.records("stages").values() if not s["is_deleted"]}
        check_references(meta, live_pipelines, live_stages)
        return meta

    def _check_cap(self) -> None:
        plan = self.account["plan"]
        cap = CUSTOM_FIELD_CAP[plan]
        if self.custom_field_count() >= cap:
            raise ApiError(403, f"You have reached the limit of {cap} custom fields for the {plan} plan "
                                "(feature_capping_custom_fields)",
                           "Upgrade the plan or remove custom fields.", code="feature_capping_custom_fields")

    def _create_options(self, ftype: str, labels: Any) -> list[dict] | None:
        if ftype in ("enum", "set"):
            options = self._new_options(labels or [])
            if not options:
                raise bad_request("Fields of type enum and set need at least one option")
            return options
        if labels:
            raise bad_request("Only enum and set fields have options")
        return None

    @staticmethod
    def _subfields(key: str, name: str, ftype: str) -> list[dict] | None:
        if ftype == "monetary":
            return [{"field_code": key, "field_name": name, "field_type": "double"},
                    {"field_code": f"{key}_currency", "field_name": f"Currency of {name}", "field_type": "varchar"}]
        if ftype == "address":
            return [{"field_code": f"{key}_{s}", "field_name": s, "field_type": "varchar"}
                    for s in ("subpremise", "street_number", "route", "sublocality", "locality",
                              "admin_area_level_1", "admin_area_level_2", "country", "postal_code",
                              "formatted_address")]
        return None

    def fields_create(self, ctx: Ctx, entity: str) -> Reply:
        body = self._body_obj(ctx)
        self._check_keys(body, entity, CREATE_KEYS)
        name = self._checked_name(body.get("field_name"))
        ftype = body.get("field_type")
        if ftype not in CREATABLE_FIELD_TYPES:
            raise bad_request("Invalid value for 'field_type'",
                              f"One of: {', '.join(sorted(CREATABLE_FIELD_TYPES))}.")
        desc = self._checked_description(body.get("description"))
        meta = self._checked_meta(entity, body)
        self._check_cap()
        options = self._create_options(ftype, body.get("options"))
        key = custom_field_key(self.state, entity)
        fid = self.state["next_field_id"]
        self.state["next_field_id"] += 1
        f = {"id": fid, "field_name": name, "field_code": key, "description": desc, "field_type": ftype,
             "options": options, "subfields": self._subfields(key, name, ftype), "is_custom_field": True,
             "is_optional_response_field": False, "add_time": iso(ctx.now)}
        for k in META_KEYS:
            f[k] = merged(DEFAULTS[entity][k], meta.get(k, {}))
        self.state["fields"][entity].append(f)
        return Reply(200, {"success": True, "data": self._render_field(entity, f)})

    def fields_update(self, ctx: Ctx, entity: str) -> Reply:
        f = self._field(entity, ctx.params["field_code"])
        body = self._body_obj(ctx)
        if not body:
            raise bad_request("Nothing to update", "Send at least one of field_name, ui_visibility, "
                                                   "important_fields, required_fields.")
        self._check_keys(body, entity, UPDATE_KEYS)
        change: dict[str, Any] = {}
        if "field_name" in body:
            # the docs name only custom fields as updatable; a system field keeps its name
            if not f["is_custom_field"]:
                raise bad_request("The name of a system field cannot be changed")
            change["field_name"] = self._checked_name(body["field_name"])
        if "description" in body:
            change["description"] = self._checked_description(body["description"])
        for k, v in self._checked_meta(entity, body).items():
            change[k] = merged(f.get(k), v)
        ui = change.get("ui_visibility", {})
        if ui.get("add_visible_flag") is False and f["field_code"] in ALWAYS_IN_ADD_MODAL[entity]:
            raise bad_request(f"'{f['field_code']}' is always shown when adding a record",
                              "add_visible_flag cannot be false for this system field.")
        f.update(change)
        self.store.fields_changed()
        return Reply(200, {"success": True, "data": self._render_field(entity, f)})

    def fields_delete(self, ctx: Ctx, entity: str) -> Reply:
        f = self._field(entity, ctx.params["field_code"])
        if not f["is_custom_field"]:
            raise bad_request("System fields cannot be deleted", "Only custom fields can be deleted.")
        f["is_deleted"] = True
        self.store.fields_changed()
        return Reply(200, {"success": True, "data": self._render_field(entity, f)})

    def _options_field(self, ctx: Ctx, entity: str) -> dict:
        f = self._field(entity, ctx.params["field_code"])
        if f["field_type"] not in ("enum", "set") or not f["is_custom_field"]:
            raise bad_request("Options can only be changed on custom enum and set fields")
        if not isinstance(ctx.body, list) or not ctx.body:
            raise bad_request("Request body must be a non-empty array of options")
        return f

    def fields_add_options(self, ctx: Ctx, entity: str) -> Reply:
        f = self._options_field(ctx, entity)
        existing = {o["label"] for o in f["options"] or []}
        labels = [o.get("label") if isinstance(o, dict) else None for o in ctx.body]
        dup = [lb for lb in labels if lb in existing]
        if dup:
            raise bad_request(f"Option already exists: {dup[0]}")
        new = self._new_options(ctx.body)
        f["options"] = (f["options"] or []) + new
        return Reply(200, {"success": True, "data": new, "additional_data": None})

    def _named_options(self, f: dict, items: list, keys: set[str]) -> list[dict]:
        """The field's options the items name by id; the whole request fails if one does not exist."""
        by_id = {o["id"]: o for o in f["options"] or []}
        found = []
        for item in items:
            if not isinstance(item, dict) or set(item) - keys or not is_int(item.get("id")):
                raise bad_request("Every item needs an integer 'id'" + (" and a 'label'" if "label" in keys else ""))
            if item["id"] not in by_id:
                # the option is named in the body, not the path: a bad request rather than a missing page
                raise bad_request(f"Option {item['id']} does not exist on this field")
            found.append(by_id[item["id"]])
        if len({o["id"] for o in found}) != len(found):
            raise bad_request("An option is named twice")
        return found

    def fields_update_options(self, ctx: Ctx, entity: str) -> Reply:
        f = self._options_field(ctx, entity)
        targets = self._named_options(f, ctx.body, {"id", "label"})
        labels = [item.get("label") for item in ctx.body]
        for label in labels:
            if not isinstance(label, str) or not label.strip() or len(label) > 255:
                raise bad_request("Every option needs a 'label' of 1 to 255 characters")
        renamed = {o["id"] for o in targets}
        others = {o["label"] for o in f["options"] if o["id"] not in renamed}
        if len(set(labels)) != len(labels) or others & set(labels):
            raise bad_request("Option labels must be unique within the field")
        for option, label in zip(targets, labels):
            option["label"] = label
        self.store.fields_changed()
        return Reply(200, {"success": True, "data": [{"id": o["id"], "label": o["label"]} for o in targets],
                           "additional_data": None})

    def fields_delete_options(self, ctx: Ctx, entity: str) -> Reply:
        f = self._options_field(ctx, entity)
        targets = self._named_options(f, ctx.body, {"id"})
        gone = {o["id"] for o in targets}
        # the docs do not say whether the last option may go; a field of choices with none is refused
        if len(gone) == len(f["options"]):
            raise bad_request("An enum or set field keeps at least one option")
        f["options"] = [o for o in f["options"] if o["id"] not in gone]
        self.store.fields_changed()
        return Reply(200, {"success": True, "data": [{"id": o["id"], "label": o["label"]} for o in targets],
                           "additional_data": None})
