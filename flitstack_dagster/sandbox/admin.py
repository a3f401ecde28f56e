"""The admin side channel under /_sandbox/ — never part of the Pipedrive surface.

Guarded by the account's API token (header `x-api-token`) or, when the server was started with one,
a separate admin token (header `x-sandbox-admin-token`). Costs no tokens and is never rate limited.

  GET   /_sandbox/usage                      per operation count + tokens, tokens spent today, budget
  POST  /_sandbox/usage                      {"tokens_today": n}: pretend n tokens were spent today
  GET   /_sandbox/snapshot                   every record of every entity (deleted ones flagged), fields
  POST  /_sandbox/reset                      a fresh company account (same API token)
  GET   /_sandbox/faults                     the fault configuration
  POST  /_sandbox/faults                     change it: {"error_rate": 0.2, "latency_ms": 50, ...}
  POST  /_sandbox/clock                      {"advance": seconds} or {"next_day": true}; returns the clock
  GET   /_sandbox/clock
  PATCH /_sandbox/records/{kind}/{id}        set fields of one stored record directly
  PUT   /_sandbox/users                      {"users": [{"id", "name", "email", "active_flag", "is_admin"}, ...]}:
                                             the account's users become these (one admin at least)
  POST  /_sandbox/forget                     {"creates": n, "kind": "deals"} (kind optional): lose the n most
                                             recent acknowledged creates, id counters rewound (a store that
                                             lost writes); returns {"forgotten": [{"kind", "id"}], "next_id"}
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse

from flitstack_dagster.sandbox.body import parse_json
from flitstack_dagster.sandbox.errors import ApiError, error_body
from flitstack_dagster.sandbox.seed import install_users
from flitstack_dagster.sandbox.store import iso



class Sandbox(Protocol):
    """What the side channel needs of the sandbox (a protocol, so this module does not import the app)."""

    admin_token: str | None
    account: dict
    state: dict
    store: Any
    clock: Any
    faults: Any

    def usage(self) -> dict: ...
    def set_tokens_spent(self, tokens: int) -> None: ...
    def snapshot(self) -> dict: ...
    def reset(self) -> None: ...
    def set_faults(self, **changes: Any) -> Any: ...
    def forget_creates(self, count: int, kind: str | None = None) -> list[dict]: ...
    def patch_record(self, kind: str, rid: int, changes: dict) -> dict: ...


def _ok(data, status: int = 200) -> JSONResponse:
    return JSONResponse({"success": True, "data": data}, status_code=status)


def _err(status: int, msg: str) -> JSONResponse:
    return JSONResponse(error_body(status, msg), status_code=status)


def _authorized(sb: Sandbox, request: Request) -> bool:
    admin = request.headers.get("x-sandbox-admin-token")
    if sb.admin_token:
        return bool(admin) and hmac.compare_digest(admin.encode(), sb.admin_token.encode())
    tok = request.headers.get("x-api-token") or admin
    return bool(tok) and hmac.compare_digest(tok.encode(), sb.account["api_token"].encode())


async def handle_admin(sb: Sandbox, request: Request) -> JSONResponse:
    if not _authorized(sb, request):
        return _err(401, "unauthorized access")
    path = request.url.path.rstrip("/")
    method = request.method
    body = {}
    if method in ("POST", "PATCH", "PUT"):
        raw = await request.body()
        if raw.strip():
            try:
                body = parse_json(raw)  # what the API refuses (NaN, deep nesting, ...) is no admin value either
            except ApiError as e:
                return _err(400, e.error)
        if not isinstance(body, dict):
            return _err(400, "Body must be a JSON object")
    if path == "/_sandbox/usage" and method == "GET":
        return _ok(sb.usage())
    if path == "/_sandbox/usage" and method == "POST":
        try:
            sb.set_tokens_spent(int(body["tokens_today"]))
        except (KeyError, TypeError, ValueError):
            return _err(400, "Body must be {\"tokens_today\": <int>}")
        return _ok(sb.usage())
    if path == "/_sandbox/snapshot" and method == "GET":
        return _ok(sb.snapshot())
    if path == "/_sandbox/reset" and method == "POST":
        sb.reset()
        return _ok({"reset": True, "company_id": sb.account["company_id"]})
    if path == "/_sandbox/faults":
        if method == "GET":
            return _ok(sb.faults.config.to_dict())
        if method == "POST":
            try:
                cfg = sb.set_faults(**body)
            except (ValueError, TypeError) as e:
                return _err(400, str(e))
            return _ok(cfg.to_dict())
    if path == "/_sandbox/clock":
        if method == "POST":
            try:
                if body.get("next_day"):
                    sb.clock.next_day()
                if body.get("advance"):
                    sb.clock.advance(float(body["advance"]))
            except (ValueError, TypeError) as e:
                return _err(400, str(e))
            sb.store.mark_dirty()
        if method in ("GET", "POST"):
            return _ok({"now": iso(sb.clock.now()), "offset": sb.clock.offset, "today": sb.clock.today()})
    if path == "/_sandbox/forget" and method == "POST":
        return _forget(sb, body)
    if path == "/_sandbox/users" and method == "PUT":
        return _users(sb, body)
    parts = path.split("/")
    if len(parts) == 5 and parts[2] == "records" and method == "PATCH":
        kind, rid = parts[3], parts[4]
        try:
            rec = sb.patch_record(kind, int(rid), body)
        except (KeyError, ValueError):
            return _err(404, f"No {kind} record {rid}")
        return _ok(rec)
    return _err(404, "Unknown sandbox admin route")


def _forget(sb: Sandbox, body: dict) -> JSONResponse:
    count, kind = body.get("creates"), body.get("kind")
    if not isinstance(count, int) or isinstance(count, bool) or set(body) - {"creates", "kind"}:
        return _err(400, 'Body must be {"creates": <int>, "kind": <entity kind, optional>}')
    try:
        lost = sb.forget_creates(count, kind)
    except ValueError as e:
        return _err(400, str(e))
    return _ok({"forgotten": lost, "next_id": dict(sb.state["next_id"])})


def _users(sb: Sandbox, body: dict) -> JSONResponse:
    users = body.get("users")
    shape = 'Body must be {"users": [{"id": <int>, "name": <str>, "email": <str>, "active_flag": <bool>, "is_admin": <bool>}]}'
    if set(body) != {"users"} or not isinstance(users, list) or not users or not all(map(_user_ok, users)):
        return _err(400, shape)
    if len({u["id"] for u in users}) != len(users):
        return _err(400, "Every user needs their own id")
    try:
        install_users(sb.store, users)
    except ValueError as e:
        return _err(400, str(e))
    return _ok(sb.state["users"])


def _user_ok(u: Any) -> bool:
    return (isinstance(u, dict) and isinstance(u.get("id"), int) and not isinstance(u["id"], bool) and u["id"] > 0
            and isinstance(u.get("name"), str) and isinstance(u.get("email"), str)
            and all(isinstance(u.get(k, False), bool) for k in ("active_flag", "is_admin")))
