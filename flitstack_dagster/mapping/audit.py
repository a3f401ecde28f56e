"""Pipedrive account audit: what the destination already holds, read through the client.

`audit_account(client)` takes any object with the Pipedrive client's methods. It is tolerant: a part
that cannot be read (missing method, permission, transient error) is recorded in `errors` and the
rest of the audit still comes back, so the proposal and the scope document can be written anyway.

Plan limits (Pipedrive's published ones): daily token budget = 30,000 × plan multiplier ×
seats; burst limit per 2 s; custom-field cap per company.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from flitstack_dagster.core.plans import DAILY_BASE_TOKENS, PLAN_TABLE, plan_in

PLAN_MULTIPLIER = {p.name: p.multiplier for p in PLAN_TABLE}
PLAN_BURST = {p.name: p.burst for p in PLAN_TABLE}
PLAN_FIELD_CAP = {p.name: p.field_cap for p in PLAN_TABLE}
SEARCH_BURST = 10
BASE_DAILY_TOKENS = DAILY_BASE_TOKENS
FIELD_ENTITIES = ("deal", "person", "organization")
RECORD_KINDS = ("organizations", "persons", "deals", "activities")
COUNT_PAGES = 20  # pages of 500 the audit counts of each kind: up to 10,000 records, 200 tokens


def plan_key(plan: str | None) -> str | None:
    """The plan's current name from a label such as "Growth" or "power_monthly"; None when unknown."""
    found = plan_in(str(plan)) if plan else None
    return found.name if found else None


class PdUser(BaseModel):
    id: int
    name: str = ""
    email: str | None = None
    active: bool = True
    is_admin: bool = False


class PdOption(BaseModel):
    id: int | str
    label: str


class PdField(BaseModel):
    key: str  # field_code: a standard key (`title`) or a 40-hex custom key
    name: str
    field_type: str
    custom: bool = False
    options: list[PdOption] = Field(default_factory=list)


class PdStage(BaseModel):
    id: int
    name: str
    order_nr: int = 0
    pipeline_id: int | None = None


class PdPipeline(BaseModel):
    id: int
    name: str
    stages: list[PdStage] = Field(default_factory=list)


class PdActivityType(BaseModel):
    id: int
    name: str
    key_string: str | None = None
    active: bool = True


class AccountAudit(BaseModel):
    company: str | None = None
    account: str | None = None  # the key of the account read (its domain): only that account may reuse the audit
    plan: str | None = None  # a current plan name (core/plans.py; None: unknown)
    seats: int | None = None
    users: list[PdUser] = Field(default_factory=list)
    pipelines: list[PdPipeline] = Field(default_factory=list)
    fields: dict[str, list[PdField]] = Field(default_factory=dict)  # deal / person / organization
    activity_types: list[PdActivityType] = Field(default_factory=list)
    record_counts: dict[str, int | None] = Field(default_factory=dict)  # None: could not count
    record_counts_capped: dict[str, bool] = Field(default_factory=dict)  # True: "at least"
    tokens_left_today: int | None = None  # from the rate-limit headers / client, when known
    errors: list[str] = Field(default_factory=list)

    # ---- plan arithmetic -------------------------------------------------------------------
    @property
    def plan_key(self) -> str | None:
        return plan_key(self.plan)

    @property
    def daily_token_budget(self) -> int | None:
        k = self.plan_key
        if k is None or not self.seats:
            return None
        return BASE_DAILY_TOKENS * PLAN_MULTIPLIER[k] * int(self.seats)

    @property
    def burst_limit(self) -> int | None:
        k = self.plan_key
        return PLAN_BURST[k] if k else None

    @property
    def custom_field_cap(self) -> int | None:
        k = self.plan_key
        return PLAN_FIELD_CAP[k] if k else None

    @property
    def custom_field_count(self) -> int:
        return sum(1 for fs in self.fields.values() for f in fs if f.custom)

    @property
    def headroom(self) -> int | None:
        cap = self.custom_field_cap
        return None if cap is None else cap - self.custom_field_count

    # ---- look-ups ----------------------------------------------------------------------------
    def find_field(self, entity: str, name: str) -> PdField | None:
        """A field of `entity` by name (case- and space-insensitive), custom fields first."""
        want = _norm(name)
        hits = [f for f in self.fields.get(entity, []) if _norm(f.name) == want]
        hits.sort(key=lambda f: (not f.custom, f.key))
        return hits[0] if hits else None

    def field_by_key(self, entity: str, key: str) -> PdField | None:
        for f in self.fields.get(entity, []):
            if f.key == key:
                return f
        return None

    def pipeline(self, name: str) -> PdPipeline | None:
        for p in self.pipelines:
            if _norm(p.name) == _norm(name):
                return p
        return None

    def activity_type(self, name: str) -> PdActivityType | None:
        for t in self.activity_types:
            if _norm(t.name) == _norm(name):
                return t
        return None

    def admin(self) -> PdUser | None:
        admins = sorted((u for u in self.users if u.is_admin and u.active), key=lambda u: u.id)
        return admins[0] if admins else None


def _norm(s: str | None) -> str:
    return " ".join((s or "").split()).casefold()


# ----------------------------------------------------------------------------------------------
# Reading through the client. The client (flitstack_dagster/pipedrive/client.py) is written in
# parallel; these helpers try its named methods first and fall back to generic GET calls.


def _unwrap(resp: Any) -> Any:
    """Accept a list, a {"data": ...} body or an httpx-like response."""
    if hasattr(resp, "json") and callable(resp.json) and not isinstance(resp, (dict, list)):
        resp = resp.json()
    if isinstance(resp, dict) and "data" in resp and ("success" in resp or "additional_data" in resp):
        return resp["data"]
    return resp


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, list):
        return x
    if isinstance(x, dict):
        return [x]
    return list(x)


def _try(client: Any, names: Iterable[str], *args: Any, **kwargs: Any) -> Any:
    for n in names:
        fn = getattr(client, n, None)
        if callable(fn):
            return _unwrap(fn(*args, **kwargs))
    raise AttributeError("client has none of: " + ", ".join(names))


def _get_all(client: Any, path: str, params: dict | None = None) -> list:
    """Every item of a list endpoint, via the client's paginating helper or a generic GET."""
    for n in ("get_all", "list_all", "paginate", "iter_all", "iterate"):
        fn = getattr(client, n, None)
        if callable(fn):
            return _as_list(_unwrap(fn(path, params=params) if params else fn(path)))
    fn = getattr(client, "request", None)
    if callable(fn):
        return _as_list(_unwrap(fn("GET", path, params=params)))
    fn = getattr(client, "get", None)
    if callable(fn):
        return _as_list(_unwrap(fn(path, params=params) if params else fn(path)))
    raise AttributeError("client has no generic GET")


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if not isinstance(obj, dict) and hasattr(obj, n):
            return getattr(obj, n)
    return default


def _user(u: Any) -> PdUser:
    return PdUser(
        id=int(_attr(u, "id")),
        name=str(_attr(u, "name", default="") or ""),
        email=_attr(u, "email"),
        active=bool(_attr(u, "active_flag", "active", default=True)),
        is_admin=bool(_attr(u, "is_admin", default=False)),
    )


def _field(f: Any) -> PdField:
    opts = _attr(f, "options") or []
    return PdField(
        key=str(_attr(f, "field_code", "key")),
        name=str(_attr(f, "field_name", "name", default="")),
        field_type=str(_attr(f, "field_type", default="varchar")),
        custom=bool(_attr(f, "is_custom_field", "custom", default=False)),
        options=[PdOption(id=_attr(o, "id"), label=str(_attr(o, "label", default=""))) for o in opts
                 if _attr(o, "id") is not None],
    )


def read_users(client: Any) -> list[PdUser]:
    try:
        rows = _try(client, ("list_users", "get_users", "users"))
    except AttributeError:
        rows = _get_all(client, "/v1/users")
    return sorted((_user(u) for u in _as_list(rows)), key=lambda u: u.id)


def read_fields(client: Any, entity: str) -> list[PdField]:
    try:
        rows = _try(client, ("list_fields", "get_fields", "fields"), entity)
    except AttributeError:
        rows = _get_all(client, f"/api/v2/{entity}Fields")
    return [_field(f) for f in _as_list(rows)]


def read_pipelines(client: Any) -> list[PdPipeline]:
    try:
        pipes = _try(client, ("list_pipelines", "get_pipelines", "pipelines"))
    except AttributeError:
        pipes = _get_all(client, "/api/v2/pipelines")
    try:
        stages = _try(client, ("list_stages", "get_stages", "stages"))
    except AttributeError:
        stages = _get_all(client, "/api/v2/stages")
    out = []
    for p in _as_list(pipes):
        if _attr(p, "is_deleted", default=False):
            continue
        pid = int(_attr(p, "id"))
        st = [PdStage(id=int(_attr(s, "id")), name=str(_attr(s, "name")), order_nr=int(_attr(s, "order_nr", default=0) or 0),
                      pipeline_id=pid)
              for s in _as_list(stages)
              if _attr(s, "pipeline_id") == pid and not _attr(s, "is_deleted", default=False)]
        out.append(PdPipeline(id=pid, name=str(_attr(p, "name")), stages=sorted(st, key=lambda s: (s.order_nr, s.id))))
    return sorted(out, key=lambda p: p.id)


def read_activity_types(client: Any) -> list[PdActivityType]:
    try:
        rows = _try(client, ("list_activity_types", "get_activity_types", "activity_types"))
    except AttributeError:
        rows = _get_all(client, "/v1/activityTypes")
    return sorted(
        (PdActivityType(id=int(_attr(t, "id")), name=str(_attr(t, "name")), key_string=_attr(t, "key_string"),
                        active=bool(_attr(t, "active_flag", "active", default=True)))
         for t in _as_list(rows) if not _attr(t, "is_deleted", default=False)),
        key=lambda t: t.id,
    )


def _count(client: Any, kind: str, max_pages: int) -> tuple[int, bool]:
    """Records of one kind, paging the v2 list with limit 500 (10 tokens a page), at most max_pages."""
    fn = getattr(client, "count", None) or getattr(client, "count_records", None)
    if callable(fn):
        return int(fn(kind)), False
    req = getattr(client, "request", None)
    if callable(req):
        def getter(path: str, params: dict) -> Any:
            return req("GET", path, params=params)
    else:
        getter = getattr(client, "get_page", None) or getattr(client, "get", None)
    if not callable(getter):
        raise AttributeError("client has no GET")
    total, cursor = 0, None
    for _ in range(max_pages):
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        resp = getter(f"/api/v2/{kind}", params=params)
        if hasattr(resp, "json") and not isinstance(resp, (dict, list)):
            resp = resp.json()
        if isinstance(resp, dict):
            total += len(resp.get("data") or [])
            cursor = (resp.get("additional_data") or {}).get("next_cursor")
        else:
            total += len(_as_list(resp))
            cursor = None
        if not cursor:
            return total, False
    return total, True


def _account_info(client: Any) -> tuple[str | None, int | None, str | None, int | None]:
    """(plan, seats, company, tokens left today) from whatever the client exposes."""
    plan = seats = company = left = None
    for n in ("account_info", "company_info", "plan_info", "get_account"):
        fn = getattr(client, n, None)
        if callable(fn):
            info = _unwrap(fn())
            plan = _attr(info, "plan", "plan_name", default=None)
            seats = _attr(info, "seats", default=None)
            company = _attr(info, "company_name", "company", default=None)
            break
    for n in ("plan", "seats"):
        v = getattr(client, n, None)
        if v is not None and not callable(v):
            if n == "plan" and plan is None:
                plan = v
            if n == "seats" and seats is None:
                seats = v
    for holder in (getattr(client, "limiter", None), client):
        if holder is None:
            continue
        for n in ("remaining_today", "tokens_left_today", "daily_remaining"):
            v = getattr(holder, n, None)
            if v is not None:
                left = v() if callable(v) else v
                break
        if left is not None:
            break
    return plan, (int(seats) if seats is not None else None), company, (int(left) if left is not None else None)


def count_pages(mode: str) -> int:
    """Pages of each kind a run's audit counts. A delta's account holds the earlier runs, whose size
    is known: one page (10 tokens) says enough, where counting the city would cost hundreds."""
    return 1 if mode == "delta" else COUNT_PAGES


def audit_account(client: Any, *, plan: str | None = None, seats: int | None = None,
                  count_records: bool = True, max_pages: int = COUNT_PAGES) -> AccountAudit:
    """Read users, pipelines/stages, custom fields, activity types and record counts.

    `plan`/`seats` override what the client reports (the API may not expose the plan to a token).
    """
    audit = AccountAudit()
    try:
        p, s, company, left = _account_info(client)
        audit.plan, audit.seats, audit.company, audit.tokens_left_today = plan_key(p) or p, s, company, left
    except Exception as e:  # noqa: BLE001 - tolerant by design
        audit.errors.append(f"account info: {e}")
    account = getattr(client, "account", None)
    try:
        audit.account = account() if callable(account) else None
    except Exception as e:  # noqa: BLE001 - tolerant by design
        audit.errors.append(f"account identity: {e}")
    if plan:
        audit.plan = plan_key(plan) or plan
    if seats:
        audit.seats = int(seats)
    steps = [
        ("users", lambda: setattr(audit, "users", read_users(client))),
        ("pipelines and stages", lambda: setattr(audit, "pipelines", read_pipelines(client))),
        ("activity types", lambda: setattr(audit, "activity_types", read_activity_types(client))),
    ]
    for entity in FIELD_ENTITIES:
        steps.append((f"{entity} fields", lambda e=entity: audit.fields.__setitem__(e, read_fields(client, e))))
    for name, fn in steps:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - tolerant by design
            audit.errors.append(f"{name}: {type(e).__name__}: {e}")
    if count_records:
        for kind in RECORD_KINDS:
            try:
                n, capped = _count(client, kind, max_pages)
                audit.record_counts[kind], audit.record_counts_capped[kind] = n, capped
            except Exception as e:  # noqa: BLE001
                audit.record_counts[kind] = None
                audit.errors.append(f"{kind} count: {type(e).__name__}: {e}")
    if audit.seats is None and audit.users:
        audit.seats = sum(1 for u in audit.users if u.active)
    return audit


__all__ = [
    "PLAN_BURST",
    "PLAN_FIELD_CAP",
    "PLAN_MULTIPLIER",
    "SEARCH_BURST",
    "AccountAudit",
    "PdActivityType",
    "PdField",
    "PdOption",
    "PdPipeline",
    "PdStage",
    "PdUser",
    "audit_account",
    "plan_key",
]
