"""Give a sandbox account someone else's schema or user list, so a rehearsal runs against the
customer's own pipelines, stages, fields, activity types and owners.

`install_schema` replaces the account's pipelines, stages, fields and activity types with copies of
another account's (as its API answered them: same ids, field keys and option ids, so a mapping made
against one holds in the other); `install_users` replaces its users. Both write straight into the
store, before the server answers anyone, and commit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

from flitstack_dagster.sandbox.store import Store, iso, v1_time

FIELD_ENTITIES = ("deal", "person", "organization", "activity")
# keys of /v1/users/me that describe the company, not the user: the sandbox answers its own
COMPANY_KEYS = {"company_id", "company_name", "company_domain", "company_country", "company_industry", "language"}


def install_schema(store: Store, *, pipelines: Iterable[Mapping], stages: Iterable[Mapping],
                   fields: Mapping[str, Iterable[Mapping]], activity_types: Iterable[Mapping]) -> None:
    """The account's pipelines, stages, fields and activity types become copies of these."""
    with store.lock:
        _replace_records(store, "pipelines", pipelines)
        _replace_records(store, "stages", stages)
        _replace_records(store, "activityTypes", activity_types)
        for entity in FIELD_ENTITIES:
            _replace_fields(store, entity, fields.get(entity, ()))
        store.mark_dirty()


def install_users(store: Store, users: Iterable[Mapping]) -> None:
    """The account's users become these (each in the sandbox's user shape; unknown keys kept as
    given). The user the API token belongs to is the first admin, as in every sandbox account."""
    with store.lock:
        template = copy.deepcopy(store.admin_user)
        now = store.clock.now()
        made = [_user(template, u, now) for u in users]
        if not any(u["is_admin"] for u in made):
            raise ValueError("the user list has no admin: mark the user whose API token the migration uses as admin")
        you = next((u for u in made if u.get("is_you") and u["is_admin"]), None) or next(u for u in made if u["is_admin"])
        for u in made:
            u["is_you"] = u is you
        store.state["users"] = [you, *(u for u in made if u is not you)]
        store.mark_dirty()


def _user(template: dict, given: Mapping, now: float) -> dict:
    user = {**template, "phone": None, "icon_url": None,
            "created": v1_time(now), "modified": v1_time(now), "has_created_company": False}
    user.update({k: copy.deepcopy(v) for k, v in given.items() if k not in COMPANY_KEYS})
    user["is_admin"] = bool(user.get("is_admin"))
    user["active_flag"] = bool(user.get("active_flag", True))
    user["activated"] = user["active_flag"]
    user["is_deleted"] = bool(user.get("is_deleted", False))
    if "access" not in given:  # the copied account's own access list is kept as it was
        user["access"] = [{"app": "sales", "admin": user["is_admin"], "permission_set_id": "sandbox"}]
    return user


def _replace_records(store: Store, kind: str, items: Iterable[Mapping]) -> None:
    table = store.records(kind)
    for key in list(table):
        del table[key]
    for item in items:
        rec = copy.deepcopy(dict(item))
        rec.setdefault("is_deleted", False)
        table[str(int(rec["id"]))] = rec
    store.state["next_id"][kind] = 1 + max((int(k) for k in table), default=0)


def _replace_fields(store: Store, entity: str, items: Iterable[Mapping]) -> None:
    state = store.state
    copied = []
    for item in items:
        f = copy.deepcopy(dict(item))
        f["id"] = state["next_field_id"]
        state["next_field_id"] += 1
        f.setdefault("add_time", iso(store.clock.now()))
        copied.append(f)
    state["fields"][entity] = copied
    highest = max((o["id"] for fs in state["fields"].values() for f in fs for o in f.get("options") or []
                   if isinstance(o.get("id"), int)), default=0)
    state["next_option_id"] = max(state["next_option_id"], highest + 1)
