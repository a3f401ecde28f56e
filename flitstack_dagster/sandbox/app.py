"""The sandbox's ASGI app: Pipedrive's v1/v2 surface for every operation the migration uses, behind
Pipedrive-style auth, token-based rate limits and (optional) fault injection, plus the admin side
channel under /_sandbox/.

One catch-all Starlette route feeds a small router of our own, so auth, costs, limits and faults are
applied the same way to every operation before its handler runs.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flitstack_dagster.sandbox.admin import handle_admin
from flitstack_dagster.sandbox.body import MAX_FILE_BYTES, file_too_large, parse_form, parse_json, read_capped
from flitstack_dagster.sandbox.catalog import CatalogRoutes
from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.errors import REASONS, ApiError, bad_request, error_body, not_found
from flitstack_dagster.sandbox.faults import FaultConfig, FaultState
from flitstack_dagster.sandbox.fields import FieldRoutes
from flitstack_dagster.sandbox.ratelimit import (
    CUSTOM_FIELD_CAP,
    CostTable,
    RateLimiter,
    check_signals,
    daily_budget,
)
from flitstack_dagster.sandbox.store import Store, iso
from flitstack_dagster.sandbox.search import SearchRoutes
from flitstack_dagster.sandbox.routing import Ctx, Reply, Router, by_id, page, qbool, qint, stream_page
from flitstack_dagster.sandbox.rows import LINK_COLUMNS
from flitstack_dagster.sandbox.v1 import V1Routes
from flitstack_dagster.sandbox.values import check_type, is_int, is_num, parse_ts, valid_date, valid_time

log = logging.getLogger("flitstack.sandbox")

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# keys the spec's responses carry that the sandbox never sets: sent as null, like every unset key
UNSET_KEYS = {
    "persons": ("postal_address", "notes", "im", "birthday", "job_title"),
    "activities": ("conference_meeting_client", "conference_meeting_url", "conference_meeting_id"),
}

V2_ENTITY = {  # url segment -> (store kind, field entity, name key)
    "organizations": ("organizations", "organization", "name"),
    "persons": ("persons", "person", "name"),
    "deals": ("deals", "deal", "title"),
    "activities": ("activities", "activity", "subject"),
}
ENTITY_OF_FIELD_REF = {"org": "organizations", "people": "persons", "deal": "deals"}
# custom field types whose value is kept as sent once it passes one check: (check, what was expected)
PLAIN_FIELD_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "expected a string"),
    "double": (is_num, "expected a number"),
    "date": (valid_date, "expected a date YYYY-MM-DD"),
    "time": (valid_time, "expected a time HH:MM"),
}

# request body property types, from the official v2 request schemas
BODY_TYPES: dict[str, dict[str, str]] = {
    "organizations": {"name": "str", "owner_id": "int", "add_time": "ts", "update_time": "ts",
                      "visible_to": "int", "label_ids": "int[]", "address": "address",
                      "custom_fields": "obj"},
    "persons": {"name": "str", "owner_id": "int", "org_id": "int?", "add_time": "ts", "update_time": "ts",
                "emails": "contact[]", "phones": "contact[]", "visible_to": "int", "label_ids": "int[]",
                "marketing_status": "marketing", "custom_fields": "obj"},
    "deals": {"title": "str", "owner_id": "int", "person_id": "int?", "org_id": "int?", "pipeline_id": "int",
              "stage_id": "int", "value": "num", "currency": "str", "is_deleted": "bool", "is_archived": "bool",
              "archive_time": "ts?", "status": "deal_status", "probability": "num?", "lost_reason": "str?",
              "visible_to": "int", "close_time": "ts?", "won_time": "ts?", "lost_time": "ts?",
              "expected_close_date": "date?", "label_ids": "int[]", "custom_fields": "obj"},
    "activities": {"subject": "str", "type": "str", "owner_id": "int", "deal_id": "int?", "lead_id": "str?",
                   "person_id": "int?", "org_id": "int?", "project_id": "int?", "due_date": "date?",
                   "due_time": "time?", "duration": "duration?", "busy": "bool", "done": "bool",
                   "location": "address", "participants": "obj[]", "attendees": "obj[]",
                   "public_description": "str", "priority": "int", "note": "str"},
}
REQUIRED_ON_CREATE = {"organizations": ["name"], "persons": ["name"], "deals": ["title"], "activities": []}


# ---------------------------------------------------------------------------------------------------------
# request context and router
# ---------------------------------------------------------------------------------------------------------
class DropConnection(Response):
    """Start a response, send part of it, then abort: the client sees the connection close mid-answer."""

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=200)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"success": tr', "more_body": True})
        raise ConnectionAbortedError("sandbox fault: connection dropped")


# ---------------------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------------------
def _cursor_key(after: list | None, sort_by: str) -> list | None:
    """A cursor's key, checked against the sort order it must belong to."""
    if after is None:
        return None
    shape = (int,) if sort_by == "id" else (str, int)
    if len(after) != len(shape) or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(after, shape)):
        raise bad_request("Invalid cursor", "The cursor belongs to another sort order.")
    if not -(2**63) <= after[-1] < 2**63:
        raise bad_request("Invalid cursor", "The cursor is not valid.")
    return after


def _burst_headers(limit: int, remaining: int, reset_s: float) -> dict[str, str]:
    return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(max(1, int(reset_s + 0.999)))}


class Sandbox(CatalogRoutes, FieldRoutes, SearchRoutes, V1Routes):
    def __init__(self, store: Store, clock: Clock, faults: FaultConfig | None = None,
                 admin_token: str | None = None, block_after: int = 20, block_window: float = 10.0,
                 block_seconds: float = 60.0, signals: str = "documented") -> None:
        self.signals = check_signals(signals)
        self.store = store
        self.clock = clock
        self.faults = FaultState(faults or FaultConfig())
        self.costs = CostTable()
        self.limiter = RateLimiter(clock, block_after, block_window, block_seconds)
        self.admin_token = admin_token
        self.router = Router()
        self._register()
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint,
                                           methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])])

    # -- plumbing ------------------------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        return self.store.state

    @property
    def account(self) -> dict:
        return self.store.state["account"]

    def _token_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.account["api_token"].encode())

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=headers)

    async def _endpoint(self, request: Request) -> Response:
        path = request.url.path
        try:
            if path == "/_sandbox" or path.startswith("/_sandbox/"):
                return await self._admin(request)
            return await self._api(request)
        except ClientDisconnect:
            raise  # the client left mid-request: nobody to answer, and no bug
        except Exception:  # a bug in the sandbox: logged as one, answered in Pipedrive's shape, never hidden
            log.exception("sandbox bug while answering %s %s", request.method, path)
            return self._json(500, error_body(500, REASONS[500], "The sandbox failed on this request (a bug)."))

    def _roll_day(self) -> None:
        usage = self.state["usage"]
        today = self.clock.today()
        if usage["day"] != today:
            usage["day"] = today
            usage["tokens_today"] = 0

    async def _api(self, request: Request) -> Response:
        method = request.method
        path = request.url.path
        token = request.headers.get("x-api-token") or request.query_params.get("api_token")
        if not self._token_ok(token):
            return self._json(401, error_body(401, "unauthorized access", None))
        if path.startswith("/api/v1/"):
            path = path[len("/api"):]  # real Pipedrive serves v1 under /api/v1 too
        m = self.router.match(method, path)
        if m is None:
            return self._json(404, error_body(404, "Unknown method ." if method else "Not found"))
        handler, params, body_kind = m
        op = self.costs.match(method, path)
        cost = op.cost if op else 0
        op_id = op.operation_id if op else f"{method} {path}"
        search = bool(op and op.is_search)
        plan = self.account["plan"]
        budget = daily_budget(plan, self.account["seats"])
        headers: dict[str, str] = {}

        # 403 block after repeated 429s
        blocked = self.limiter.blocked_for()
        if blocked > 0:
            return self._json(403, error_body(403, "Forbidden: too many requests after rate limit errors",
                                              "Requests are blocked for a while; back off and retry later.",
                                              code="rate_limit_block"),
                              {"retry-after": str(int(blocked) + 1)})
        with self.store.lock:
            self._roll_day()
            spent = self.state["usage"]["tokens_today"]
        if spent + cost > budget and cost > 0:
            self.limiter.note_429()
            return self._budget_spent(plan, search, budget, spent)
        allowed, limit, remaining, reset_s = self.limiter.try_acquire(plan, search)
        headers.update(_burst_headers(limit, remaining, reset_s))
        if not allowed:
            self.limiter.note_429()
            headers["retry-after"] = headers["x-ratelimit-reset"]
            return self._json(429, self._over_limit("Rate limit of the 2-second window exceeded.",
                                                    "rate_limit_exceeded"), headers)

        # faults before doing anything
        fc = self.faults.config
        if fc.latency_ms:
            await asyncio.sleep(fc.latency_ms / 1000.0)
        if self.faults.roll(fc.drop_rate):
            self.faults.count("drop")
            return DropConnection()
        if self.faults.roll(fc.error_rate):
            self.faults.count("error")
            st = self.faults.pick_status()
            return self._json(st, error_body(st, REASONS.get(st, "Server error"), "Injected by the sandbox."))

        # read the body, run the operation, charge it and commit, all before answering
        ctx = Ctx(method=method, path=path, params=params, query=dict(request.query_params), now=self.clock.now(),
                  headers={k.lower(): v for k, v in request.headers.items()})
        reply: Reply | None = None
        try:
            if method in WRITE_METHODS:
                await self._read_body(request, ctx, body_kind)
        except ApiError as e:
            reply = Reply(e.status, e.body(), headers=e.headers)
        with self.store.lock:
            if reply is None:
                try:
                    reply = handler(ctx)
                except ApiError as e:
                    reply = Reply(e.status, e.body(), headers=e.headers)
            left = self._charge(op_id, cost, budget)
            self.store.commit(records=method in WRITE_METHODS)
        headers["x-daily-requests-left"] = str(left)
        headers.update(self._insight_headers(budget, left))
        headers.update(reply.headers)

        # commit then fail: the write happened, the client sees a failure
        if method in WRITE_METHODS and reply.status < 300 and self.faults.roll(fc.commit_then_fail_rate):
            self.faults.count("commit_then_fail")
            if fc.commit_then_fail_mode == "drop":
                return DropConnection()
            st = self.faults.pick_status()
            return self._json(st, error_body(st, REASONS.get(st, "Server error"), "Injected by the sandbox."))
        if reply.raw is not None:
            return Response(reply.raw, status_code=reply.status, media_type=reply.media_type, headers=headers)
        return self._json(reply.status, reply.body, headers)

    def _budget_spent(self, plan: str, search: bool, budget: int, spent: int) -> Response:
        """429 for the spent daily budget as Pipedrive answers it: its generic error, `Retry-After` until
        the next UTC day of the sandbox clock and no requests left today; nothing is counted."""
        headers = _burst_headers(*self.limiter.peek(plan, search))
        headers["retry-after"] = str(int(self.clock.seconds_to_next_day()) + 1)
        headers["x-daily-requests-left"] = "0"
        headers.update(self._insight_headers(budget, budget - spent))
        body = self._over_limit("Daily token budget exhausted; it resets at the start of the next day (UTC).",
                                "daily_token_budget_exceeded")
        return self._json(429, body, headers)

    def _over_limit(self, info: str, code: str) -> dict:
        """Pipedrive's 429 body is the same for every limit; only `extended` says which one and why."""
        if self.signals == "extended":
            return error_body(429, "Request over limit", info, code=code)
        return error_body(429, "Request over limit")

    def _insight_headers(self, budget: int, tokens_left: int) -> dict[str, str]:
        """Token budget headers Pipedrive does not send: only in the `extended` signal mode."""
        if self.signals != "extended":
            return {}
        return {"x-daily-token-limit": str(budget), "x-daily-tokens-left": str(max(0, tokens_left))}

    def _charge(self, op_id: str, cost: int, budget: int) -> int:
        """Count the operation and its tokens; return the tokens left today."""
        usage = self.state["usage"]
        usage["tokens_today"] += cost
        if cost:
            usage.setdefault("by_day", {})[usage["day"]] = usage["tokens_today"]
        rec = usage["ops"].setdefault(op_id, {"count": 0, "tokens": 0})
        rec["count"] += 1
        rec["tokens"] += cost
        return max(0, budget - usage["tokens_today"])

    async def _read_body(self, request: Request, ctx: Ctx, kind: str) -> None:
        ctype = request.headers.get("content-type", "")
        if kind == "multipart":
            clen = request.headers.get("content-length")
            if clen and clen.isdigit() and int(clen) > MAX_FILE_BYTES + 64 * 1024:
                raise file_too_large()
            if "multipart/form-data" not in ctype:
                raise bad_request("Expected multipart/form-data with a 'file' part")
            try:
                ctx.form = await request.form(max_part_size=MAX_FILE_BYTES + 1024)
            except HTTPException as e:  # Starlette's answer to a malformed multipart body
                raise bad_request("Invalid multipart/form-data body", str(e.detail)) from None
            return
        raw = await read_capped(request)
        ctx.raw = raw
        if not raw.strip():
            ctx.body = None
            return
        if "application/x-www-form-urlencoded" in ctype:
            ctx.body = parse_form(raw)
            return
        ctx.body = parse_json(raw)

    # -- routes --------------------------------------------------------------------------------------------
    def _register(self) -> None:
        self._register_entities()
        self._register_catalog()
        self._register_fields()
        self._register_search()
        self._register_v1()

    def _register_entities(self) -> None:
        r = self.router
        for seg in V2_ENTITY:
            base = f"/api/v2/{seg}"
            r.add("GET", base, self._mk(self.v2_list, seg))
            r.add("POST", base, self._mk(self.v2_create, seg))
            r.add("GET", base + "/{id}", self._mk(self.v2_get, seg))
            r.add("PATCH", base + "/{id}", self._mk(self.v2_update, seg))
            r.add("DELETE", base + "/{id}", self._mk(self.v2_delete, seg))

    @staticmethod
    def _mk(fn: Callable, *bound: Any) -> Callable:
        return lambda ctx: fn(ctx, *bound)

    # -- shared record logic -------------------------------------------------------------------------------
    def custom_fields_of(self, entity: str) -> list[dict]:
        return [f for f in self.state["fields"][entity] if f["is_custom_field"] and not f.get("is_deleted")]

    def _custom_codes(self, entity: str) -> list[str]:
        return [f["field_code"] for f in self.custom_fields_of(entity)]

    def _user_ids(self) -> set[int]:
        return {u["id"] for u in self.state["users"] if u.get("active_flag")}

    def _check_ref(self, kind: str, rid: Any, name: str) -> None:
        if rid is None:
            return
        if self.store.get(kind, rid) is None:
            raise not_found(f"{name} not found")

    def _check_owner(self, uid: Any) -> None:
        if uid is not None and uid not in self._user_ids():
            raise bad_request("Invalid value for 'owner_id': user not found", "owner_id must be an existing user.")

    def validate_custom_fields(self, entity: str, values: Any) -> dict:
        if not isinstance(values, dict):
            raise bad_request("custom_fields must be an object")
        by_key = {f["field_code"]: f for f in self.custom_fields_of(entity)}
        out: dict[str, Any] = {}
        for key, v in values.items():
            f = by_key.get(key)
            if f is None:
                raise bad_request(f"Unknown custom field '{key}'", f"No {entity} custom field has the key {key}.")
            out[key] = self._custom_value(f, v)
        return out

    def _custom_value(self, f: dict, v: Any) -> Any:
        t = f["field_type"]
        name = f"custom_fields.{f['field_code']}"
        if v is None:
            return None

        def bad(expect: str):
            return bad_request(f"Invalid value for custom field '{f['field_name']}' ({f['field_code']}): {expect}",
                               f"Field type is {t}.")

        option_ids = {o["id"] for o in (f.get("options") or [])}
        if t in ("varchar", "varchar_auto", "phone"):
            if not isinstance(v, str):
                raise bad("expected a string")
            if t == "varchar" and len(v) > 255:
                raise bad("at most 255 characters")
            return v
        if t in PLAIN_FIELD_CHECKS:
            check, expected = PLAIN_FIELD_CHECKS[t]
            if not check(v):
                raise bad(expected)
            return v
        if t == "enum":
            if not is_int(v) or v not in option_ids:
                raise bad("expected the id (integer) of one of the field's options")
            return v
        if t == "set":
            if not isinstance(v, list) or not all(is_int(x) and x in option_ids for x in v):
                raise bad("expected an array of option ids (integers) of the field's options")
            return list(dict.fromkeys(v))
        if t == "monetary":
            if not isinstance(v, dict) or set(v) - {"value", "currency"} or not is_num(v.get("value")):
                raise bad("expected an object {value: number, currency: 'USD'}")
            cur = v.get("currency", "USD")
            if not isinstance(cur, str) or not re.fullmatch(r"[A-Z]{3}", cur):
                raise bad("currency must be a 3-letter ISO code")
            return {"value": v["value"], "currency": cur}
        if t in ("org", "people", "deal"):
            if not is_int(v):
                raise bad("expected the id (integer) of a record")
            kind = ENTITY_OF_FIELD_REF[t]
            if self.store.get(kind, v) is None:
                raise bad(f"no {kind[:-1]} with id {v}")
            return v
        if t == "user":
            if not is_int(v) or v not in self._user_ids():
                raise bad("expected the id of an existing user")
            return v
        if t == "address":
            if isinstance(v, str):
                return {"value": v}
            if isinstance(v, dict) and isinstance(v.get("value"), str):
                return v
            raise bad("expected an address object {value: ...}")
        if t in ("daterange", "timerange"):
            valid = valid_date if t == "daterange" else valid_time
            if not isinstance(v, dict) or not {"start", "end"} <= set(v) or not (
                    valid(v["start"]) and valid(v["end"])):
                raise bad("expected an object {start, end} of dates YYYY-MM-DD" if t == "daterange"
                          else "expected an object {start, end} of times HH:MM")
            return {"start": v["start"], "end": v["end"]}
        _ = name
        return v

    def _body_obj(self, ctx: Ctx) -> dict:
        if ctx.body is None:
            return {}
        if not isinstance(ctx.body, dict):
            raise bad_request("Request body must be a JSON object")
        return ctx.body

    # -- v2 entities ---------------------------------------------------------------------------------------
    def _apply_v2(self, seg: str, rec: dict, body: dict, creating: bool, now: float) -> None:
        kind, entity, _ = V2_ENTITY[seg]
        types = BODY_TYPES[seg]
        for k in body:
            if k not in types:
                if k == "add_time" and seg in ("deals", "activities"):
                    raise bad_request(f"Parameter 'add_time' is not allowed for {seg}",
                                      f"The API does not let you set the creation time of {seg}.")
                raise bad_request(f"Unknown parameter '{k}'", f"'{k}' is not a field of {seg}.")
        vals = {k: check_type(k, types[k], v) for k, v in body.items()}
        if creating:
            for req_key in REQUIRED_ON_CREATE[seg]:
                if not vals.get(req_key):
                    raise bad_request(f"Missing required field '{req_key}'", f"'{req_key}' is required.")
        else:
            for req_key in REQUIRED_ON_CREATE[seg]:
                if req_key in vals and not vals[req_key]:
                    raise bad_request(f"'{req_key}' cannot be empty")
        if "owner_id" in vals:
            self._check_owner(vals["owner_id"])
        for ref, rkind, label in (("org_id", "organizations", "Organization"), ("person_id", "persons", "Person"),
                                  ("deal_id", "deals", "Deal")):
            if ref in vals and ref in types:
                self._check_ref(rkind, vals[ref], label)
        if seg == "deals":
            self._apply_deal_pipeline(rec, vals, creating, now)
        if seg == "activities" and "type" in vals:
            types_ok = {t["key_string"] for t in self.store.records("activityTypes").values()
                        if not t.get("is_deleted") and t.get("active_flag")}
            if vals["type"] not in types_ok:
                raise bad_request(f"Invalid activity type '{vals['type']}'", "Use the key_string of an activity type.")
        if "custom_fields" in vals:
            cf = self.validate_custom_fields(entity, vals.pop("custom_fields"))
            rec.setdefault("custom_fields", {}).update(cf)
        if seg == "persons" and "name" in vals:
            first, _, last = vals["name"].partition(" ")
            rec["first_name"], rec["last_name"] = first, last or None
        if seg == "activities" and "done" in vals:
            rec["marked_as_done_time"] = iso(now) if vals["done"] else None
        if seg == "deals" and "status" in vals and vals["status"] != rec.get("status"):
            if vals["status"] == "won" and "won_time" not in vals:
                rec["won_time"] = iso(now)
            if vals["status"] == "lost" and "lost_time" not in vals:
                rec["lost_time"] = iso(now)
            if vals["status"] in ("won", "lost") and "close_time" not in vals:
                rec["close_time"] = vals.get("won_time") or vals.get("lost_time") or iso(now)
        rec.update(vals)

    def _apply_deal_pipeline(self, rec: dict, vals: dict, creating: bool, now: float) -> None:
        pipelines = self.store.records("pipelines")
        stages = self.store.records("stages")
        if "pipeline_id" in vals and self.store.get("pipelines", vals["pipeline_id"]) is None:
            raise not_found("Pipeline not found")
        if "stage_id" in vals:
            st = self.store.get("stages", vals["stage_id"])
            if st is None:
                raise not_found("Stage not found")
            if "pipeline_id" in vals and vals["pipeline_id"] != st["pipeline_id"]:
                raise bad_request("Stage does not belong to the given pipeline")
            vals["pipeline_id"] = st["pipeline_id"]
        elif "pipeline_id" in vals or creating:
            pid = vals.get("pipeline_id") or rec.get("pipeline_id")
            if pid is None:
                live = sorted((p for p in pipelines.values() if not p["is_deleted"]), key=lambda p: p["order_nr"])
                if not live:
                    raise bad_request("No pipeline exists")
                pid = live[0]["id"]
            first = sorted((s for s in stages.values() if s["pipeline_id"] == pid and not s["is_deleted"]),
                           key=lambda s: s["order_nr"])
            if not first:
                raise bad_request("The pipeline has no stages")
            vals["pipeline_id"] = pid
            if rec.get("stage_id") is None or self.store.get("stages", rec.get("stage_id"), True)["pipeline_id"] != pid:
                vals["stage_id"] = first[0]["id"]
        if "stage_id" in vals and vals["stage_id"] != rec.get("stage_id"):
            rec["stage_change_time"] = iso(now) if not creating else None

    def _new_v2(self, seg: str, rid: int, now: float) -> dict:
        admin = self.store.admin_user["id"]
        t = iso(now)
        base = {"id": rid, "owner_id": admin, "add_time": t, "update_time": t, "is_deleted": False,
                "visible_to": 3}
        if seg == "organizations":
            base.update({"name": None, "address": None, "label_ids": [], "custom_fields": {}})
        elif seg == "persons":
            base.update({"name": None, "first_name": None, "last_name": None, "org_id": None, "emails": [],
                         "phones": [], "label_ids": [], "picture_id": None, "custom_fields": {}})
        elif seg == "deals":
            base.update({"title": None, "creator_user_id": admin, "person_id": None, "org_id": None,
                         "pipeline_id": None, "stage_id": None, "value": 0, "currency": "USD",
                         "stage_change_time": None, "is_archived": False, "status": "open", "probability": None,
                         "lost_reason": None, "close_time": None, "won_time": None, "lost_time": None,
                         "expected_close_date": None, "label_ids": [], "origin": "API", "origin_id": None,
                         "channel": None, "channel_id": None, "source_lead_id": None, "arr": None, "mrr": None,
                         "acv": None, "custom_fields": {}})
        elif seg == "activities":
            base.pop("visible_to")
            base.update({"subject": None, "type": "task", "creator_user_id": admin, "deal_id": None,
                         "lead_id": None, "person_id": None, "org_id": None, "project_id": None, "due_date": None,
                         "due_time": None, "duration": None, "busy": False, "done": False,
                         "marked_as_done_time": None, "location": None, "participants": [], "attendees": [],
                         "public_description": None, "priority": None, "note": None})
        return base

    def render_v2(self, seg: str, rec: dict, codes: list[str] | None = None) -> dict:
        """The record as the API answers it; `codes`: the entity's custom field keys, when a list renders
        many records."""
        kind, entity, _ = V2_ENTITY[seg]
        out = {**dict.fromkeys(UNSET_KEYS.get(seg, ())), **rec}
        if seg != "activities":
            cf = dict.fromkeys(codes if codes is not None else self._custom_codes(entity))
            cf.update({k: v for k, v in (rec.get("custom_fields") or {}).items() if k in cf})
            out["custom_fields"] = cf
        return out

    def v2_create(self, ctx: Ctx, seg: str) -> Reply:
        kind = V2_ENTITY[seg][0]
        body = self._body_obj(ctx)
        rid = self.state["next_id"][kind]
        rec = self._new_v2(seg, rid, ctx.now)
        self._apply_v2(seg, rec, body, True, ctx.now)
        if seg == "activities" and not rec.get("subject"):
            types = {t["key_string"]: t["name"] for t in self.store.records("activityTypes").values()}
            rec["subject"] = types.get(rec["type"], "Task")
        self.store.take_id(kind)
        self.store.records(kind)[str(rid)] = rec
        return Reply(200, {"success": True, "data": self.render_v2(seg, rec)})

    def _get_or_404(self, kind: str, rid: str, label: str) -> dict:
        rec = self.store.get(kind, rid)
        if rec is None:
            raise not_found(f"{label} not found")
        return rec

    def v2_get(self, ctx: Ctx, seg: str) -> Reply:
        kind = V2_ENTITY[seg][0]
        rec = self._get_or_404(kind, ctx.params["id"], seg[:-1].capitalize() if seg != "activities" else "Activity")
        return Reply(200, {"success": True, "data": self.render_v2(seg, rec)})

    def v2_update(self, ctx: Ctx, seg: str) -> Reply:
        kind = V2_ENTITY[seg][0]
        rec = self._get_or_404(kind, ctx.params["id"], seg[:-1].capitalize() if seg != "activities" else "Activity")
        body = self._body_obj(ctx)
        if seg in ("organizations", "persons") and "add_time" in body:
            pass  # allowed, like on create
        new = json.loads(json.dumps(rec))
        self._apply_v2(seg, new, body, False, ctx.now)
        if "update_time" not in body:
            new["update_time"] = iso(ctx.now)
        rec.clear()
        rec.update(new)
        return Reply(200, {"success": True, "data": self.render_v2(seg, rec)})

    def v2_delete(self, ctx: Ctx, seg: str) -> Reply:
        kind = V2_ENTITY[seg][0]
        rec = self._get_or_404(kind, ctx.params["id"], seg[:-1].capitalize() if seg != "activities" else "Activity")
        rec["is_deleted"] = True
        rec["update_time"] = iso(ctx.now)
        rec["delete_time"] = iso(ctx.now)
        if seg == "deals":
            rec["status"] = "deleted"
        return Reply(200, {"success": True, "data": {"id": rec["id"]}})

    def _page(self, ctx: Ctx, items: list[dict], key: Callable[[dict], tuple] = by_id,
              descending: bool = False) -> tuple[list[dict], str | None]:
        return page(ctx, items, key, descending)

    def v2_list(self, ctx: Ctx, seg: str) -> Reply:
        kind = V2_ENTITY[seg][0]
        q = ctx.query
        deleted = seg == "deals" and q.get("status") == "deleted"
        keep: list[Callable[[dict], bool]] = []  # what the indexes do not narrow: checked on each row
        eq: dict[str, int] = {}
        if seg == "deals" and q.get("status") and not deleted:
            if q["status"] not in ("open", "won", "lost", "deleted"):
                raise bad_request("Invalid value for 'status'")
            keep.append(lambda r: r.get("status") == q["status"])
        ids = self._list_ids(q)
        for key in ("owner_id", "org_id", "person_id", "deal_id", "pipeline_id", "stage_id"):
            if key in q and q[key] != "":
                v = qint(ctx, key)
                if key in LINK_COLUMNS and -(2**63) <= v < 2**63:
                    eq[key] = v
                else:
                    keep.append(lambda r, key=key, v=v: r.get(key) == v)
        if seg == "activities" and qbool(ctx, "done") is not None:
            d = qbool(ctx, "done")
            keep.append(lambda r: bool(r.get("done")) == d)
        for name, later in (("updated_since", True), ("updated_until", False)):
            if q.get(name):
                ts = parse_ts(q[name])
                if ts is None:
                    raise bad_request(f"Invalid value for '{name}': RFC3339 timestamp expected")
                keep.append(lambda r, ts=ts, later=later: (parse_ts(r["update_time"]) >= ts) == later)
        sort_by = q.get("sort_by", "id")
        if sort_by not in ("id", "update_time", "add_time", "due_date"):
            raise bad_request("Invalid value for 'sort_by'")
        desc = q.get("sort_direction", "asc") == "desc"
        key = (lambda r: (r.get(sort_by) or "", r["id"])) if sort_by != "id" else by_id
        table = self.store.records(kind)

        def select(after: list | None):
            rows = table.select(deleted=deleted, eq=eq, ids=ids, order=sort_by, descending=desc,
                                after=_cursor_key(after, sort_by))
            return (r for r in rows if all(k(r) for k in keep))

        shown, nxt = stream_page(ctx, select, key)
        codes = self._custom_codes(V2_ENTITY[seg][1])
        return Reply(200, {"success": True, "data": [self.render_v2(seg, r, codes) for r in shown],
                           "additional_data": {"next_cursor": nxt}})

    @staticmethod
    def _list_ids(q: dict) -> list[int] | None:
        if not q.get("ids"):
            return None
        try:
            ids = {int(x) for x in q["ids"].split(",") if x.strip()}
        except ValueError:
            raise bad_request("Invalid value for 'ids': comma-separated integers expected") from None
        if len(ids) > 100:
            raise bad_request("Invalid value for 'ids': at most 100 ids")
        return sorted(i for i in ids if -(2**63) <= i < 2**63)

    # -- admin side channel --------------------------------------------------------------------------------
    async def _admin(self, request: Request) -> Response:
        return await handle_admin(self, request)

    # -- admin helpers used by the Python API and /_sandbox/ -----------------------------------------------
    def usage(self) -> dict:
        with self.store.lock:
            self._roll_day()
            u = self.state["usage"]
            acct = self.account
            budget = daily_budget(acct["plan"], acct["seats"])
            return {
                "day": u["day"],
                "plan": acct["plan"],
                "seats": acct["seats"],
                "daily_budget": budget,
                "tokens_today": u["tokens_today"],
                "tokens_left": max(0, budget - u["tokens_today"]),
                "tokens_by_day": dict(u.get("by_day", {})),  # the company's spend per (sandbox clock) day
                "operations": json.loads(json.dumps(u["ops"])),
                "faults_injected": dict(self.faults.injected),
                "custom_field_cap": CUSTOM_FIELD_CAP[acct["plan"]],
            }

    def snapshot(self) -> dict:
        with self.store.lock:
            st = self.state
            acct = {k: v for k, v in st["account"].items() if k != "api_token"}
            return json.loads(json.dumps({
                "account": acct,
                "users": st["users"],
                "fields": st["fields"],
                "records": {kind: dict(table.items()) for kind, table in st["records"].items()},
                "clock": {"now": iso(self.clock.now()), "offset": self.clock.offset},
            }))

    def set_tokens_spent(self, tokens: int) -> None:
        if tokens < 0:
            raise ValueError("tokens_today must be >= 0")
        with self.store.lock:
            self._roll_day()
            usage = self.state["usage"]
            usage["tokens_today"] = tokens
            usage.setdefault("by_day", {})[usage["day"]] = tokens
            self.store.mark_dirty()

    def set_faults(self, **changes: Any) -> FaultConfig:
        cfg = FaultConfig.from_dict(changes, base=self.faults.config)
        self.faults.set(cfg)
        return cfg

    def reset(self) -> None:
        self.store.reset()
        self.limiter.reset()

    def forget_creates(self, count: int, kind: str | None = None) -> list[dict]:
        """Fault mode: lose the `count` most recent acknowledged creates (of one kind, or any), rewinding
        the id counters so the next creates get the same ids again. Returns what was lost, newest first."""
        return [{"kind": k, "id": rid} for k, rid in self.store.forget_creates(count, kind)]

    def patch_record(self, kind: str, rid: int, changes: dict) -> dict:
        with self.store.lock:
            if kind not in self.state["records"]:
                raise KeyError(kind)
            rec = self.store.get(kind, rid, include_deleted=True)
            if rec is None:
                raise KeyError(rid)
            for k, v in changes.items():
                if k == "custom_fields" and isinstance(v, dict):
                    rec.setdefault("custom_fields", {}).update(v)
                else:
                    rec[k] = v
            self.store.mark_dirty()
            return json.loads(json.dumps(rec))

