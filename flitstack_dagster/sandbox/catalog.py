"""v2 pipelines and stages: list, read, create, update and delete."""

from __future__ import annotations

from flitstack_dagster.sandbox.errors import bad_request, not_found
from flitstack_dagster.sandbox.routing import Ctx, Reply, qint
from flitstack_dagster.sandbox.store import iso
from flitstack_dagster.sandbox.values import check_type

PIPELINE_BODY = {"name": "str", "is_deal_probability_enabled": "bool"}
STAGE_BODY = {"name": "str", "pipeline_id": "int", "deal_probability": "int", "is_deal_rot_enabled": "bool",
              "days_to_rotten": "int?"}


class CatalogRoutes:
    def _register_catalog(self) -> None:
        r = self.router
        r.add("GET", "/api/v2/pipelines", self.pipelines_list)
        r.add("POST", "/api/v2/pipelines", self.pipelines_create)
        r.add("GET", "/api/v2/pipelines/{id}", self.pipelines_get)
        r.add("PATCH", "/api/v2/pipelines/{id}", self.pipelines_update)
        r.add("DELETE", "/api/v2/pipelines/{id}", self.pipelines_delete)
        r.add("GET", "/api/v2/stages", self.stages_list)
        r.add("POST", "/api/v2/stages", self.stages_create)
        r.add("GET", "/api/v2/stages/{id}", self.stages_get)
        r.add("PATCH", "/api/v2/stages/{id}", self.stages_update)
        r.add("DELETE", "/api/v2/stages/{id}", self.stages_delete)

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
        vals = self._typed(body, PIPELINE_BODY)
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
        vals = self._typed(body, STAGE_BODY)
        for req in ("name", "pipeline_id"):
            if vals.get(req) in (None, ""):
                raise bad_request(f"Missing required field '{req}'")
        if self.store.get("pipelines", vals["pipeline_id"]) is None:
            raise not_found("Pipeline not found")
        prob = vals.get("deal_probability", 100)
        _check_probability(prob)
        sid = self.store.take_id("stages")
        order = self._next_stage_order(vals["pipeline_id"])
        t = iso(ctx.now)
        rec = {"id": sid, "order_nr": order, "name": vals["name"], "is_deleted": False, "deal_probability": prob,
               "pipeline_id": vals["pipeline_id"], "is_deal_rot_enabled": vals.get("is_deal_rot_enabled", False),
               "days_to_rotten": vals.get("days_to_rotten"), "add_time": t, "update_time": t}
        self.store.records("stages")[str(sid)] = rec
        return Reply(200, {"success": True, "data": self._render_plain("stages")(rec)})

    @staticmethod
    def _typed(body: dict, types: dict[str, str]) -> dict:
        """The body's values checked against their types; an unknown parameter is a 400."""
        for k in body:
            if k not in types:
                raise bad_request(f"Unknown parameter '{k}'")
        return {k: check_type(k, types[k], v) for k, v in body.items()}

    def _deal_count(self, key: str, rid: int) -> int:
        return self.store.records("deals").count(**{key: rid})

    def pipelines_update(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("pipelines", ctx.params["id"], "Pipeline")
        vals = self._typed(self._body_obj(ctx), PIPELINE_BODY)
        if "name" in vals and not vals["name"].strip():
            raise bad_request("'name' cannot be empty")
        rec.update(vals, update_time=iso(ctx.now))
        return Reply(200, {"success": True, "data": self._render_plain("pipelines")(rec)})

    def pipelines_delete(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("pipelines", ctx.params["id"], "Pipeline")
        # the docs do not say what happens to a pipeline's deals; refusing loses none of them silently
        if self._deal_count("pipeline_id", rec["id"]):
            raise bad_request("The pipeline has deals", "Move or delete its deals before deleting the pipeline.")
        if sum(1 for p in self.store.records("pipelines").values() if not p["is_deleted"]) == 1:
            raise bad_request("The last pipeline cannot be deleted", "An account always keeps one pipeline.")
        t = iso(ctx.now)
        rec.update(is_deleted=True, update_time=t)
        for stage in self.store.records("stages").values():
            if stage["pipeline_id"] == rec["id"] and not stage["is_deleted"]:
                self.store.touch("stages", str(stage["id"]))  # so the commit writes it
                stage.update(is_deleted=True, update_time=t)
        return Reply(200, {"success": True, "data": {"id": rec["id"]}})

    def stages_update(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("stages", ctx.params["id"], "Stage")
        vals = self._typed(self._body_obj(ctx), STAGE_BODY)
        if "name" in vals and not vals["name"].strip():
            raise bad_request("'name' cannot be empty")
        if "deal_probability" in vals:
            _check_probability(vals["deal_probability"])
        if vals.get("pipeline_id", rec["pipeline_id"]) != rec["pipeline_id"]:
            if self.store.get("pipelines", vals["pipeline_id"]) is None:
                raise not_found("Pipeline not found")
            # the docs do not say whether a stage's deals follow it; refusing keeps deal and stage consistent
            if self._deal_count("stage_id", rec["id"]):
                raise bad_request("The stage has deals", "Move its deals before moving the stage to another pipeline.")
            vals["order_nr"] = self._next_stage_order(vals["pipeline_id"])
        rec.update(vals, update_time=iso(ctx.now))
        return Reply(200, {"success": True, "data": self._render_plain("stages")(rec)})

    def stages_delete(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("stages", ctx.params["id"], "Stage")
        # the docs do not say what happens to a stage's deals; refusing loses none of them silently
        if self._deal_count("stage_id", rec["id"]):
            raise bad_request("The stage has deals", "Move or delete its deals before deleting the stage.")
        live = [s for s in self.store.records("stages").values()
                if s["pipeline_id"] == rec["pipeline_id"] and not s["is_deleted"]]
        if len(live) == 1:
            raise bad_request("The last stage of a pipeline cannot be deleted", "A pipeline keeps at least one stage.")
        rec.update(is_deleted=True, update_time=iso(ctx.now))
        return Reply(200, {"success": True, "data": {"id": rec["id"]}})

    def _next_stage_order(self, pipeline_id: int) -> int:
        return 1 + max((s["order_nr"] for s in self.store.records("stages").values()
                        if s["pipeline_id"] == pipeline_id and not s["is_deleted"]), default=0)


def _check_probability(prob: int) -> None:
    if not 0 <= prob <= 100:
        raise bad_request("Invalid value for 'deal_probability': 0..100")
