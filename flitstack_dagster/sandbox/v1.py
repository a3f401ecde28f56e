"""The v1-only operations the migration uses: notes, files (multipart, up to Pipedrive's file size limit), activity types,
organization relationships and users. Served under /v1/... (the spec's server) and /api/v1/...
(how real Pipedrive answers too)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from flitstack_dagster.sandbox.body import MAX_FILE_BYTES, file_too_large
from flitstack_dagster.sandbox.errors import bad_request, not_found
from flitstack_dagster.sandbox.routing import Ctx, Reply, qint
from flitstack_dagster.sandbox.rows import LINK_COLUMNS
from flitstack_dagster.sandbox.store import v1_time
from flitstack_dagster.sandbox.values import parse_ts


ICON_KEYS = {"task", "email", "meeting", "deadline", "call", "lunch", "calendar", "downarrow", "document",
             "smartphone", "camera", "scissors", "cogs", "bubble", "uparrow", "checkbox", "signpost", "shuffle",
             "addressbook", "linegraph", "picture", "car", "world", "search", "clip", "sound", "brush", "key",
             "padlock", "pricetag", "suitcase", "finish", "plane", "loop", "wifi", "truck", "cart", "bulb", "bell",
             "presentation"}
PIN_FLAGS = ("pinned_to_lead_flag", "pinned_to_deal_flag", "pinned_to_organization_flag", "pinned_to_person_flag",
             "pinned_to_project_flag", "pinned_to_task_flag")


def _v1_ts(name: str, v: Any) -> str:
    ts = parse_ts(v)
    if ts is None:
        raise bad_request(f"Invalid value for '{name}': expected 'YYYY-MM-DD HH:MM:SS'")
    return v1_time(ts)


def _int_param(name: str, v: Any, required: bool = False) -> int | None:
    if v is None or v == "":
        if required:
            raise bad_request(f"Missing required field '{name}'")
        return None
    if isinstance(v, bool):
        raise bad_request(f"Invalid value for '{name}': expected integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d{1,18}", v):  # longer would not fit a 64-bit id
        return int(v)
    raise bad_request(f"Invalid value for '{name}': expected integer")


class V1Routes:
    def _register_v1(self) -> None:
        r = self.router
        r.add("GET", "/v1/notes", self.notes_list)
        r.add("POST", "/v1/notes", self.notes_create)
        r.add("GET", "/v1/notes/{id}", self.notes_get)
        r.add("PUT", "/v1/notes/{id}", self.notes_update)
        r.add("DELETE", "/v1/notes/{id}", self.notes_delete)
        r.add("GET", "/v1/files", self.files_list)
        r.add("POST", "/v1/files", self.files_create, body="multipart")
        r.add("GET", "/v1/files/{id}", self.files_get)
        r.add("DELETE", "/v1/files/{id}", self.files_delete)
        r.add("GET", "/v1/files/{id}/download", self.files_download)
        r.add("GET", "/v1/activityTypes", self.activity_types_list)
        r.add("POST", "/v1/activityTypes", self.activity_types_create)
        r.add("GET", "/v1/organizationRelationships", self.rel_list)
        r.add("POST", "/v1/organizationRelationships", self.rel_create)
        r.add("GET", "/v1/organizationRelationships/{id}", self.rel_get)
        r.add("PUT", "/v1/organizationRelationships/{id}", self.rel_update)
        r.add("DELETE", "/v1/organizationRelationships/{id}", self.rel_delete)
        r.add("GET", "/v1/users", self.users_list)
        r.add("GET", "/v1/users/me", self.users_me)
        r.add("GET", "/v1/users/{id}", self.users_get)

    # -- v1 pagination -------------------------------------------------------------------------------------
    def _v1_page(self, ctx: Ctx, items: Iterable | Callable[[int], Iterable]) -> tuple[list, dict]:
        """One page of `items` (or of what `items(start)` yields from the page's start on), read no
        further than the page needs, and v1's pagination block."""
        start = qint(ctx, "start", 0, minimum=0)
        limit = qint(ctx, "limit", 100, minimum=1)
        if limit > 500:
            limit = 500
        rest = items(start) if callable(items) else islice(iter(items), start, None)
        window = list(islice(rest, limit + 1))
        page = window[:limit]
        more = len(window) > limit
        pag = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pag["next_start"] = start + limit
        return page, pag

    def _v1_list(self, ctx: Ctx, items: Iterable | Callable[[int], Iterable], render: Callable[[dict], dict]) -> Reply:
        """One page of `items`, rendered, with v1's pagination block."""
        page, pag = self._v1_page(ctx, items)
        return Reply(200, {"success": True, "data": [render(i) for i in page],
                           "additional_data": {"pagination": pag}})

    def _v1_delete(self, ctx: Ctx, collection: str, label: str) -> dict:
        """v1 deletes are soft: the record stays, inactive and marked deleted; returns it."""
        rec = self._get_or_404(collection, ctx.params["id"], label)
        rec["is_deleted"] = True
        rec["active_flag"] = False
        rec["update_time"] = v1_time(ctx.now)
        return rec

    # -- notes ----------------------------------------------------------------------------------------------
    def _render_note(self, n: dict) -> dict:
        out = dict(n)
        out.pop("is_deleted", None)
        deal = self.store.get("deals", n.get("deal_id"), True) if n.get("deal_id") else None
        org = self.store.get("organizations", n.get("org_id"), True) if n.get("org_id") else None
        person = self.store.get("persons", n.get("person_id"), True) if n.get("person_id") else None
        user = self.store.user(n.get("user_id")) or self.store.admin_user
        out["deal"] = {"title": deal["title"]} if deal else None
        out["organization"] = {"name": org["name"]} if org else None
        out["person"] = {"name": person["name"]} if person else None
        out["user"] = {"email": user["email"], "icon_url": user.get("icon_url") or "", "is_you": user["is_you"],
                       "name": user["name"]}
        return out

    def _note_values(self, body: dict, creating: bool) -> dict:
        allowed = {"content", "lead_id", "deal_id", "person_id", "org_id", "project_id", "task_id", "user_id",
                   "add_time", *PIN_FLAGS}
        for k in body:
            if k not in allowed:
                raise bad_request(f"Unknown parameter '{k}'")
        vals: dict[str, Any] = {}
        if "content" in body:
            if not isinstance(body["content"], str) or not body["content"].strip():
                raise bad_request("Invalid value for 'content': non-empty string expected")
            vals["content"] = body["content"]
        elif creating:
            raise bad_request("Missing required field 'content'")
        for k, kind, label in (("deal_id", "deals", "Deal"), ("person_id", "persons", "Person"),
                               ("org_id", "organizations", "Organization")):
            if k in body:
                v = _int_param(k, body[k])
                if v is not None and self.store.get(kind, v) is None:
                    raise not_found(f"{label} not found")
                vals[k] = v
        for k in ("project_id", "task_id"):
            if k in body:
                vals[k] = _int_param(k, body[k])
        if "lead_id" in body:
            if body["lead_id"] is not None and not isinstance(body["lead_id"], str):
                raise bad_request("Invalid value for 'lead_id'")
            vals["lead_id"] = body["lead_id"]
        if "user_id" in body:
            uid = _int_param("user_id", body["user_id"])
            if uid is not None and self.store.user(uid) is None:
                raise bad_request("Invalid value for 'user_id': user not found")
            vals["user_id"] = uid
        if "add_time" in body:
            vals["add_time"] = _v1_ts("add_time", body["add_time"])
        for k in PIN_FLAGS:
            if k in body:
                if body[k] not in (0, 1, True, False, "0", "1"):
                    raise bad_request(f"Invalid value for '{k}': 0 or 1 expected")
                vals[k] = body[k] in (1, True, "1")
        return vals

    def notes_create(self, ctx: Ctx) -> Reply:
        vals = self._note_values(self._body_obj(ctx), True)
        if not any(vals.get(k) for k in ("deal_id", "person_id", "org_id", "lead_id", "project_id", "task_id")):
            raise bad_request("A note must be attached to a deal, person, organization, lead or project",
                              "Provide deal_id, person_id, org_id, lead_id or project_id.")
        nid = self.store.take_id("notes")
        t = v1_time(ctx.now)
        note = {"id": nid, "active_flag": True, "add_time": t, "content": None, "lead_id": None, "deal_id": None,
                "last_update_user_id": None, "org_id": None, "person_id": None, "project_id": None,
                "task_id": None, "update_time": t, "user_id": self.store.admin_user["id"], "is_deleted": False,
                **{k: False for k in PIN_FLAGS if k != "pinned_to_lead_flag"}}
        note.update(vals)
        self.store.records("notes")[str(nid)] = note
        return Reply(200, {"success": True, "data": self._render_note(note)})

    def notes_get(self, ctx: Ctx) -> Reply:
        note = self._get_or_404("notes", ctx.params["id"], "Note")
        return Reply(200, {"success": True, "data": self._render_note(note)})

    def notes_update(self, ctx: Ctx) -> Reply:
        note = self._get_or_404("notes", ctx.params["id"], "Note")
        vals = self._note_values(self._body_obj(ctx), False)
        note.update(vals)
        note["update_time"] = v1_time(ctx.now)
        note["last_update_user_id"] = self.store.admin_user["id"]
        return Reply(200, {"success": True, "data": self._render_note(note)})

    def notes_delete(self, ctx: Ctx) -> Reply:
        self._v1_delete(ctx, "notes", "Note")
        return Reply(200, {"success": True, "data": True})

    def notes_list(self, ctx: Ctx) -> Reply:
        eq: dict[str, int] = {}
        keep: list[Callable[[dict], bool]] = []  # what the indexes do not narrow: checked on each note
        for k in ("user_id", "deal_id", "person_id", "org_id", "project_id", "task_id"):
            v = qint(ctx, k)
            if v is None:
                continue
            if k in LINK_COLUMNS and -(2**63) <= v < 2**63:
                eq[k] = v
            else:
                keep.append(lambda n, k=k, v=v: n.get(k) == v)
        if ctx.query.get("lead_id"):
            keep.append(lambda n: n.get("lead_id") == ctx.query["lead_id"])
        if ctx.query.get("updated_since"):
            ts = parse_ts(ctx.query["updated_since"])
            if ts is None:
                raise bad_request("Invalid value for 'updated_since'")
            keep.append(lambda n: parse_ts(n["update_time"]) >= ts)
        for k in PIN_FLAGS:
            if ctx.query.get(k) in ("0", "1"):
                want = ctx.query[k] == "1"
                keep.append(lambda n, k=k, want=want: bool(n.get(k)) == want)
        sort = (ctx.query.get("sort") or "id ASC").split(",")[0].strip().split()
        key = sort[0] if sort and sort[0] in ("id", "add_time", "update_time", "user_id", "content") else "id"
        desc = len(sort) > 1 and sort[1].upper() == "DESC"
        table = self.store.records("notes")
        if keep:
            rows = (n for n in table.select(eq=eq, order=key, descending=desc) if all(k(n) for k in keep))
            return self._v1_list(ctx, rows, self._render_note)
        return self._v1_list(ctx, lambda start: table.select(eq=eq, order=key, descending=desc, offset=start),
                             self._render_note)

    # -- files ----------------------------------------------------------------------------------------------
    def _render_file(self, f: dict) -> dict:
        out = dict(f)
        out.pop("is_deleted", None)
        for key, kind, attr, nkey in (("deal_id", "deals", "title", "deal_name"),
                                      ("person_id", "persons", "name", "person_name"),
                                      ("org_id", "organizations", "name", "org_name")):
            rec = self.store.get(kind, f.get(key), True) if f.get(key) else None
            out[nkey] = rec[attr] if rec else None
        out["url"] = f"/v1/files/{f['id']}/download"
        return out

    async def _noop(self) -> None:  # pragma: no cover
        return None

    def files_create(self, ctx: Ctx) -> Reply:
        form = ctx.form
        upload = form.get("file") if form is not None else None
        if upload is None or isinstance(upload, str):
            raise bad_request("Missing required field 'file'", "Send the file as multipart/form-data part 'file'.")
        fh = upload.file
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(0)
        if size > MAX_FILE_BYTES:
            raise file_too_large()
        data = fh.read()
        links: dict[str, Any] = {}
        for k, kind, label in (("deal_id", "deals", "Deal"), ("person_id", "persons", "Person"),
                               ("org_id", "organizations", "Organization"), ("activity_id", "activities", "Activity")):
            v = _int_param(k, form.get(k))
            if v is not None and self.store.get(kind, v) is None:
                raise not_found(f"{label} not found")
            links[k] = v
        links["product_id"] = _int_param("product_id", form.get("product_id"))
        links["lead_id"] = form.get("lead_id") or None
        if not any(links.values()):
            raise bad_request("A file must be attached to a deal, person, organization, activity, product or lead")
        fid = self.store.take_id("files")
        t = v1_time(ctx.now)
        name = upload.filename or f"file-{fid}"
        rec = {"id": fid, "user_id": self.store.admin_user["id"], **links, "add_time": t, "update_time": t,
               "file_name": name, "file_size": size, "active_flag": True, "inline_flag": False,
               "remote_location": "s3", "remote_id": f"sandbox/{fid}", "cid": "", "s3_bucket": "",
               "mail_message_id": "", "mail_template_id": "", "name": name, "description": "",
               "file_type": (upload.content_type or "application/octet-stream"), "is_deleted": False}
        self.store.put_blob(fid, data)
        self.store.records("files")[str(fid)] = rec
        return Reply(200, {"success": True, "data": self._render_file(rec)})

    def files_get(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("files", ctx.params["id"], "File")
        return Reply(200, {"success": True, "data": self._render_file(rec)})

    def files_list(self, ctx: Ctx) -> Reply:
        files = self.store.records("files")
        return self._v1_list(ctx, lambda start: files.select(offset=start), self._render_file)

    def files_delete(self, ctx: Ctx) -> Reply:
        rec = self._v1_delete(ctx, "files", "File")
        return Reply(200, {"success": True, "data": {"id": rec["id"]}})

    def files_download(self, ctx: Ctx) -> Reply:
        rec = self._get_or_404("files", ctx.params["id"], "File")
        data = self.store.get_blob(rec["id"])
        if data is None:
            raise not_found("File content not found")
        safe = re.sub(r'[^A-Za-z0-9._ -]', "_", rec["file_name"])
        return Reply(200, raw=data, media_type=rec.get("file_type") or "application/octet-stream",
                     headers={"content-disposition": f'attachment; filename="{safe}"'})

    # -- activity types ---------------------------------------------------------------------------------------
    def _render_type(self, t: dict) -> dict:
        out = dict(t)
        out.pop("is_deleted", None)
        return out

    def activity_types_list(self, ctx: Ctx) -> Reply:
        types = sorted((t for t in self.store.records("activityTypes").values() if not t.get("is_deleted")),
                       key=lambda t: t["order_nr"])
        return Reply(200, {"success": True, "data": [self._render_type(t) for t in types]})

    def activity_types_create(self, ctx: Ctx) -> Reply:
        body = self._body_obj(ctx)
        for k in body:
            if k not in ("name", "icon_key", "color"):
                raise bad_request(f"Unknown parameter '{k}'")
        name, icon = body.get("name"), body.get("icon_key")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Missing required field 'name'")
        if icon is None:
            raise bad_request("Missing required field 'icon_key'")
        if icon not in ICON_KEYS:
            raise bad_request("Invalid value for 'icon_key'")
        color = body.get("color")
        if color is not None and (not isinstance(color, str) or not re.fullmatch(r"[0-9A-Fa-f]{6}", color)):
            raise bad_request("Invalid value for 'color': 6-character HEX expected")
        types = self.store.records("activityTypes")
        base_key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or "custom"
        keys = {t["key_string"] for t in types.values()}
        key, n = base_key, 1
        while key in keys:
            n += 1
            key = f"{base_key}_{n}"
        tid = self.store.take_id("activityTypes")
        rec = {"id": tid, "order_nr": 1 + max((t["order_nr"] for t in types.values()), default=0), "name": name,
               "key_string": key, "icon_key": icon, "active_flag": True, "color": color, "is_custom_flag": True,
               "add_time": v1_time(ctx.now), "update_time": None, "is_deleted": False}
        types[str(tid)] = rec
        return Reply(200, {"success": True, "data": self._render_type(rec)})

    # -- organization relationships ----------------------------------------------------------------------------
    def _org_info(self, oid: int) -> dict:
        org = self.store.get("organizations", oid, True) or {}
        addr = (org.get("address") or {}).get("value") if isinstance(org.get("address"), dict) else None
        people = self.store.records("persons").count(org_id=oid) if -(2**63) <= oid < 2**63 else 0
        return {"name": org.get("name") or "", "people_count": people, "owner_id": org.get("owner_id"),
                "address": addr, "active_flag": not org.get("is_deleted", False), "cc_email": None, "value": oid}

    def _render_rel(self, rel: dict, for_org: int | None = None) -> dict:
        out = {"id": rel["id"], "type": rel["type"],
               "rel_owner_org_id": self._org_info(rel["rel_owner_org_id"]),
               "rel_linked_org_id": self._org_info(rel["rel_linked_org_id"]),
               "add_time": rel["add_time"], "update_time": rel["update_time"], "active_flag": "true"}
        if for_org is not None:
            owner = rel["rel_owner_org_id"] == for_org
            other = rel["rel_linked_org_id"] if owner else rel["rel_owner_org_id"]
            if rel["type"] == "parent":
                out["calculated_type"] = "daughter" if owner else "parent"
            else:
                out["calculated_type"] = "related"
            out["calculated_related_org_id"] = other
            out["related_organization_name"] = self._org_info(other)["name"]
        return out

    def _related_orgs(self, rels: list[dict]) -> dict:
        out = {}
        for rel in rels:
            for oid in (rel["rel_owner_org_id"], rel["rel_linked_org_id"]):
                info = self._org_info(oid)
                out[str(oid)] = {"id": oid, "name": info["name"], "people_count": info["people_count"],
                                 "owner_id": info["owner_id"], "address": info["address"], "cc_email": None,
                                 "active_flag": info["active_flag"]}
        return {"organization": out}

    def rel_create(self, ctx: Ctx) -> Reply:
        body = self._body_obj(ctx)
        if body.get("type") is None:
            raise bad_request("Missing required field 'type'")
        rtype, owner, linked = self._rel_fields(body, None)
        rid = self.store.take_id("organizationRelationships")
        t = v1_time(ctx.now)
        rel = {"id": rid, "type": rtype, "rel_owner_org_id": owner, "rel_linked_org_id": linked,
               "add_time": t, "update_time": t, "active_flag": True, "is_deleted": False}
        self.store.records("organizationRelationships")[str(rid)] = rel
        return Reply(200, {"success": True, "data": self._render_rel(rel),
                           "related_objects": self._related_orgs([rel])})

    def rel_update(self, ctx: Ctx) -> Reply:
        rel = self._get_or_404("organizationRelationships", ctx.params["id"], "Organization relationship")
        body = self._body_obj(ctx)
        merged = {"type": rel["type"], "rel_owner_org_id": rel["rel_owner_org_id"],
                  "rel_linked_org_id": rel["rel_linked_org_id"], **{k: v for k, v in body.items() if v is not None}}
        rel["type"], rel["rel_owner_org_id"], rel["rel_linked_org_id"] = self._rel_fields(merged, rel["id"])
        rel["update_time"] = v1_time(ctx.now)
        return Reply(200, {"success": True, "data": self._render_rel(rel),
                           "related_objects": self._related_orgs([rel])})

    def _rel_fields(self, body: dict, self_id: int | None) -> tuple[str, int, int]:
        """Validate a relationship body (create, or update merged with the current values)."""
        for k in body:
            if k not in ("org_id", "type", "rel_owner_org_id", "rel_linked_org_id"):
                raise bad_request(f"Unknown parameter '{k}'")
        rtype = body.get("type")
        if rtype not in ("parent", "related"):
            raise bad_request("Invalid value for 'type': parent or related")
        owner = _int_param("rel_owner_org_id", body.get("rel_owner_org_id"), True)
        linked = _int_param("rel_linked_org_id", body.get("rel_linked_org_id"), True)
        org_id = _int_param("org_id", body.get("org_id"))
        for oid in (owner, linked) + ((org_id,) if org_id else ()):
            if self.store.get("organizations", oid) is None:
                raise not_found("Organization not found")
        if owner == linked:
            raise bad_request("An organization cannot be related to itself")
        live = [r for r in self.store.records("organizationRelationships").values()
                if not r.get("is_deleted") and r["id"] != self_id]
        for r in live:
            if {r["rel_owner_org_id"], r["rel_linked_org_id"]} == {owner, linked}:
                raise bad_request("These organizations are already related")
        if rtype == "parent":
            if any(r["type"] == "parent" and r["rel_linked_org_id"] == linked for r in live):
                raise bad_request("The organization already has a parent")
            # no cycles: walk up from the new parent
            parent_of = {r["rel_linked_org_id"]: r["rel_owner_org_id"] for r in live if r["type"] == "parent"}
            cur, seen = owner, set()
            while cur in parent_of and cur not in seen:
                seen.add(cur)
                cur = parent_of[cur]
                if cur == linked:
                    raise bad_request("The relationship would create a cycle")
        return rtype, owner, linked

    def rel_get(self, ctx: Ctx) -> Reply:
        rel = self._get_or_404("organizationRelationships", ctx.params["id"], "Organization relationship")
        org = qint(ctx, "org_id")
        return Reply(200, {"success": True, "data": self._render_rel(rel, org),
                           "related_objects": self._related_orgs([rel])})

    def rel_list(self, ctx: Ctx) -> Reply:
        org = qint(ctx, "org_id")
        if org is None:
            raise bad_request("Missing required parameter 'org_id'")
        if self.store.get("organizations", org) is None:
            raise not_found("Organization not found")
        rels = sorted((r for r in self.store.records("organizationRelationships").values()
                       if not r.get("is_deleted") and org in (r["rel_owner_org_id"], r["rel_linked_org_id"])),
                      key=lambda r: r["id"])
        page, pag = self._v1_page(ctx, rels)
        return Reply(200, {"success": True, "data": [self._render_rel(r, org) for r in page],
                           "additional_data": {**pag, "pagination": pag},
                           "related_objects": self._related_orgs(page)})

    def rel_delete(self, ctx: Ctx) -> Reply:
        rel = self._v1_delete(ctx, "organizationRelationships", "Organization relationship")
        return Reply(200, {"success": True, "data": {"id": rel["id"]}})

    # -- users ------------------------------------------------------------------------------------------------
    def _render_user(self, u: dict) -> dict:
        return dict(u)

    def users_list(self, ctx: Ctx) -> Reply:
        return Reply(200, {"success": True, "data": [self._render_user(u) for u in self.state["users"]]})

    def users_me(self, ctx: Ctx) -> Reply:
        acct = self.account
        me = self._render_user(self.store.admin_user)
        me.update({"company_id": acct["company_id"], "company_name": acct["company_name"],
                   "company_domain": acct["company_domain"], "company_country": "US",
                   "company_industry": "Facility services", "language": {"language_code": "en", "country_code": "US"}})
        return Reply(200, {"success": True, "data": me})

    def users_get(self, ctx: Ctx) -> Reply:
        try:
            u = self.store.user(int(ctx.params["id"]))
        except ValueError:
            u = None
        if u is None:
            raise not_found("User not found")
        return Reply(200, {"success": True, "data": self._render_user(u)})

