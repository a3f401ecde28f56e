"""v2 pipelines, stages, *Fields (with custom-field creation, options, the per-plan cap) and
GET /api/v2/itemSearch/field."""

from __future__ import annotations

import copy
from typing import Any

from flitstack_dagster.sandbox.errors import ApiError, bad_request, not_found
from flitstack_dagster.sandbox.ratelimit import CUSTOM_FIELD_CAP
from flitstack_dagster.sandbox.routing import Ctx, Reply, qint
from flitstack_dagster.sandbox.store import custom_field_key, iso
from flitstack_dagster.sandbox.values import check_type


CREATABLE_FIELD_TYPES = {"varchar", "text", "double", "phone", "date", "daterange", "time", "timerange", "set",
                         "enum", "varchar_auto", "address", "monetary", "org", "people", "user"}
FIELD_SEGMENTS = {"dealFields": "deal", "personFields": "person", "organizationFields": "organization",
                  "activityFields": "activity"}
SEARCH_ENTITY = {"deal": ("deals", "deal", "title"), "person": ("persons", "person", "name"),
                 "organization": ("organizations", "organization", "name")}
V1_FIELD_TYPE_ALIAS = {"dealField": "deal", "personField": "person", "organizationField": "organization"}


class CatalogRoutes:
    def _register_catalog(self) -> None:
        r = self.router
        r.add("GET", "/api/v2/pipelines", self.pipelines_list)
        r.add("POST", "/api/v2/pipelines", self.pipelines_create)
        r.add("GET", "/api/v2/pipelines/{id}", self.pipelines_get)
        r.add("GET", "/api/v2/stages", self.stages_list)
        r.add("POST", "/api/v2/stages", self.stages_create)
        r.add("GET", "/api/v2/stages/{id}", self.stages_get)
        for seg, entity in FIELD_SEGMENTS.items():
            r.add("GET", f"/api/v2/{seg}", self._mk(self.fields_list, entity))
            r.add("GET", f"/api/v2/{seg}/{{field_code}}", self._mk(self.fields_get, entity))
            if entity != "activity":  # activity custom fields cannot be created through the API
                r.add("POST", f"/api/v2/{seg}", self._mk(self.fields_create, entity))
                r.add("POST", f"/api/v2/{seg}/{{field_code}}/options", self._mk(self.fields_add_options, entity))
        r.add("GET", "/api/v2/itemSearch/field", self.item_search_field)

    # -- pipelines & stages --------------------------------------------------------------------------------
    def _list_reply(self, ctx: Ctx, recs: list[dict], sort_keys: tuple[str, ...], render) -> Reply:
        sort_by = ctx.query.get("sort_by", "id")
        if sort_by not in sort_keys:
            raise bad_request("Invalid value for 'sort_by'")
        direction = ctx.query.get("sort_direction", "asc")
        if direction not in ("asc", "desc"):
            raise bad_request("Invalid value for 'sort_direction'")
        def key(r: dict) -> tuple:
            return (r.get(sort_by) if r.get(sort_by) is not None else "", r["id"])

        recs = sorted(recs, key=key, reverse=direction == "desc")
        page, nxt = self._page(ctx, recs, key, direction == "desc")
        return Reply(200, {"success": True, "data": [render(r) for r in page], "additional_data": {"next_cursor": nxt}})

    def _render_plain(self, kind: str):
        return lambda r: dict(r)

    def pipelines_list(self, ctx: Ctx) -> Reply:
        recs = [p for p in self.store.records("pipelines").values() if not p["is_deleted"]]
        return self._list_reply(ctx, recs, ("id", "update_time", "add_time"), self._render_plain("pipelines"))

    def pipelines_get(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("pipelines", ctx.params["id"], "Pipeline")
        return Reply(200, {"success": True, "data": self._render_plain("pipelines")(rec)})

    def pipelines_create(self, ctx: Ctx) -> Reply:
        body = self._body_obj(ctx)
        allowed = {"name": "str", "is_deal_probability_enabled": "bool"}
        self._only(body, allowed)
        vals = {k: check_type(k, allowed[k], v) for k, v in body.items()}
        if not vals.get("name"):
            raise bad_request("Missing required field 'name'")
        pid = self.store.take_id("pipelines")
        order = 1 + max((p["order_nr"] for p in self.store.records("pipelines").values()), default=0)
        t = iso(ctx.now)
        rec = {"id": pid, "name": vals["name"], "order_nr": order, "is_deleted": False,
               "is_deal_probability_enabled": vals.get("is_deal_probability_enabled", False),
               "add_time": t, "update_time": t}
        self.store.records("pipelines")[str(pid)] = rec
        return Reply(200, {"success": True, "data": self._render_plain("pipelines")(rec)})

    def stages_list(self, ctx: Ctx) -> Reply:
        recs = [s for s in self.store.records("stages").values() if not s["is_deleted"]]
        pid = qint(ctx, "pipeline_id")
        if pid is not None:
            recs = [s for s in recs if s["pipeline_id"] == pid]
        return self._list_reply(ctx, recs, ("id", "update_time", "add_time", "order_nr"), self._render_plain("stages"))

    def stages_get(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("stages", ctx.params["id"], "Stage")
        return Reply(200, {"success": True, "data": self._render_plain("stages")(rec)})

    def stages_create(self, ctx: Ctx) -> Reply:
        body = self._body_obj(ctx)
        allowed = {"name": "str", "pipeline_id": "int", "deal_probability": "int", "is_deal_rot_enabled": "bool",
                   "days_to_rotten": "int?"}
        self._only(body, allowed)
        vals = {k: check_type(k, allowed[k], v) for k, v in body.items()}
        for req in ("name", "pipeline_id"):
            if vals.get(req) in (None, ""):
                raise bad_request(f"Missing required field '{req}'")
        if self.store.get("pipelines", vals["pipeline_id"]) is None:
            raise not_found("Pipeline not found")
        prob = vals.get("deal_probability", 100)
        if not 0 <= prob <= 100:
            raise bad_request("Invalid value for 'deal_probability': 0..100")
        sid = self.store.take_id("stages")
        order = 1 + max((s["order_nr"] for s in self.store.records("stages").values()
                         if s["pipeline_id"] == vals["pipeline_id"] and not s["is_deleted"]), default=0)
        t = iso(ctx.now)
        rec = {"id": sid, "order_nr": order, "name": vals["name"], "is_deleted": False, "deal_probability": prob,
               "pipeline_id": vals["pipeline_id"], "is_deal_rot_enabled": vals.get("is_deal_rot_enabled", False),
               "days_to_rotten": vals.get("days_to_rotten"), "add_time": t, "update_time": t}
        self.store.records("stages")[str(sid)] = rec
        return Reply(200, {"success": True, "data": self._render_plain("stages")(rec)})

    @staticmethod
    def _only(body: dict, allowed: dict) -> None:
        for k in body:
            if k not in allowed:
                raise bad_request(f"Unknown parameter '{k}'")

    # -- fields ----------------------------------------------------------------------------------------------
    def _render_field(self, entity: str, f: dict, ctx: Ctx | None = None) -> dict:
        out = {k: copy.deepcopy(v) for k, v in f.items() if k not in ("id", "add_time")}
        if out.get("description") is None:
            out["description"] = ""
        if entity == "activity":
            out.pop("important_fields", None)
            out.pop("required_fields", None)
            out["ui_visibility"] = {k: v for k, v in out.get("ui_visibility", {}).items()
                                    if k in ("add_visible_flag", "details_visible_flag")}
        inc = set((ctx.query.get("include_fields") or "").split(",")) if ctx else set()
        for opt in ("ui_visibility", "important_fields", "required_fields"):
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

    def fields_create(self, ctx: Ctx, entity: str) -> Reply:
        body = self._body_obj(ctx)
        allowed = {"field_name", "field_type", "options", "ui_visibility", "important_fields", "required_fields",
                   "description"}
        for k in body:
            if k not in allowed:
                raise bad_request(f"Unknown parameter '{k}'")
        name = body.get("field_name")
        ftype = body.get("field_type")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Missing required field 'field_name'")
        if len(name) > 255:
            raise bad_request("'field_name' is at most 255 characters")
        if ftype not in CREATABLE_FIELD_TYPES:
            raise bad_request("Invalid value for 'field_type'",
                              f"One of: {', '.join(sorted(CREATABLE_FIELD_TYPES))}.")
        desc = body.get("description")
        if desc is not None and not isinstance(desc, str):
            raise bad_request("Invalid value for 'description'")
        for k in ("ui_visibility", "important_fields", "required_fields"):
            if k in body and not isinstance(body[k], dict):
                raise bad_request(f"Invalid value for '{k}': object expected")
        plan = self.account["plan"]
        cap = CUSTOM_FIELD_CAP[plan]
        if self.custom_field_count() >= cap:
            raise ApiError(403, f"You have reached the limit of {cap} custom fields for the {plan} plan "
                                "(feature_capping_custom_fields)",
                           "Upgrade the plan or remove custom fields.", code="feature_capping_custom_fields")
        options = None
        if ftype in ("enum", "set"):
            options = self._new_options(body.get("options") or [])
            if not options:
                raise bad_request("Fields of type enum and set need at least one option")
        elif body.get("options"):
            raise bad_request("Only enum and set fields have options")
        key = custom_field_key(self.state, entity)
        fid = self.state["next_field_id"]
        self.state["next_field_id"] += 1
        ui = {"add_visible_flag": True, "details_visible_flag": True}
        ui.update(body.get("ui_visibility") or {})
        f = {"id": fid, "field_name": name, "field_code": key, "description": desc, "field_type": ftype,
             "options": options, "subfields": None, "is_custom_field": True, "is_optional_response_field": False,
             "ui_visibility": ui, "add_time": iso(ctx.now)}
        if ftype == "monetary":
            f["subfields"] = [{"field_code": key, "field_name": name, "field_type": "double"},
                              {"field_code": f"{key}_currency", "field_name": f"Currency of {name}",
                               "field_type": "varchar"}]
        if ftype == "address":
            f["subfields"] = [{"field_code": f"{key}_{s}", "field_name": s, "field_type": "varchar"}
                              for s in ("subpremise", "street_number", "route", "sublocality", "locality",
                                        "admin_area_level_1", "admin_area_level_2", "country", "postal_code",
                                        "formatted_address")]
        if entity == "deal":
            f["important_fields"] = body.get("important_fields") or {"enabled": False, "stage_ids": []}
            f["required_fields"] = body.get("required_fields") or {"enabled": False, "stage_ids": [], "statuses": {}}
        else:
            f["important_fields"] = body.get("important_fields") or {"enabled": False}
            f["required_fields"] = body.get("required_fields") or {"enabled": False}
        self.state["fields"][entity].append(f)
        return Reply(200, {"success": True, "data": self._render_field(entity, f)})

    def fields_add_options(self, ctx: Ctx, entity: str) -> Reply:
        f = self._field(entity, ctx.params["field_code"])
        if f["field_type"] not in ("enum", "set") or not f["is_custom_field"]:
            raise bad_request("Options can only be added to custom enum and set fields")
        if not isinstance(ctx.body, list) or not ctx.body:
            raise bad_request("Request body must be a non-empty array of {label}")
        existing = {o["label"] for o in f["options"] or []}
        labels = [o.get("label") if isinstance(o, dict) else None for o in ctx.body]
        dup = [lb for lb in labels if lb in existing]
        if dup:
            raise bad_request(f"Option already exists: {dup[0]}")
        new = self._new_options(ctx.body)
        f["options"] = (f["options"] or []) + new
        return Reply(200, {"success": True, "data": new, "additional_data": None})

    # -- search ----------------------------------------------------------------------------------------------
    def item_search_field(self, ctx: Ctx) -> Reply:
        q = ctx.query
        term = q.get("term")
        entity_type = q.get("entity_type") or V1_FIELD_TYPE_ALIAS.get(q.get("field_type", ""))
        field_key = q.get("field") or q.get("field_key")
        match = q.get("match") or ("exact" if q.get("exact_match") in ("true", "1") else None) or "exact"
        if term is None or term == "":
            raise bad_request("Missing required parameter 'term'")
        if not entity_type:
            raise bad_request("Missing required parameter 'entity_type'")
        if not field_key:
            raise bad_request("Missing required parameter 'field'")
        if entity_type not in ("deal", "lead", "person", "organization", "product", "project"):
            raise bad_request("Invalid value for 'entity_type'")
        if match not in ("exact", "beginning", "middle"):
            raise bad_request("Invalid value for 'match'")
        if match != "exact" and len(term) < 2:
            raise bad_request("The search term must be at least 2 characters long")
        if entity_type not in SEARCH_ENTITY:
            return Reply(200, {"success": True, "data": [], "additional_data": {"next_cursor": None}})
        kind, fentity, name_key = SEARCH_ENTITY[entity_type]
        try:
            f = self._field(fentity, field_key)
        except ApiError:
            raise bad_request(f"Unknown field '{field_key}' for {entity_type}") from None

        def values(rec: dict) -> list[str]:
            v = (rec.get("custom_fields") or {}).get(field_key) if f["is_custom_field"] else rec.get(field_key)
            if v is None:
                return []
            if f["field_type"] in ("enum", "set"):
                labels = {o["id"]: o["label"] for o in f.get("options") or []}
                ids = v if isinstance(v, list) else [v]
                return [labels.get(i, str(i)) for i in ids] + [str(i) for i in ids]
            if isinstance(v, dict):
                return [str(v.get("value"))]
            if isinstance(v, list):
                return [str(x.get("value") if isinstance(x, dict) else x) for x in v]
            return [str(v)]

        def hit(vs: list[str]) -> bool:
            if match == "exact":
                return term in vs
            if match == "beginning":
                return any(x.startswith(term) for x in vs)
            return any(term in x for x in vs)

        found = [r for r in sorted(self.store.records(kind).values(), key=lambda r: r["id"])
                 if not r.get("is_deleted") and hit(values(r))]
        page, nxt = self._page(ctx, found)
        data = []
        for r in page:
            vs = values(r)
            item = {"id": r["id"], name_key: r.get(name_key), field_key: vs[0] if vs else None}
            if name_key != "name":
                item["name"] = r.get(name_key)
            data.append({"id": r["id"], "name": r.get(name_key), "result_score": 1.0, "item": item})
        return Reply(200, {"success": True, "data": data, "additional_data": {"next_cursor": nxt}})
