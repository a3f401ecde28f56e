"""v2 search: `itemSearch` over deals, persons and organizations, the per-entity `deals/search`,
`persons/search` and `organizations/search`, and `itemSearch/field` (one field, exact or partial)."""

from __future__ import annotations

from typing import Any, Callable

from flitstack_dagster.sandbox.errors import ApiError, bad_request
from flitstack_dagster.sandbox.routing import Ctx, Reply, page, qbool, qint, stream_page
from flitstack_dagster.sandbox.values import is_int

SEARCH_ENTITY = {"deal": ("deals", "deal", "title"), "person": ("persons", "person", "name"),
                 "organization": ("organizations", "organization", "name")}
V1_FIELD_TYPE_ALIAS = {"dealField": "deal", "personField": "person", "organizationField": "organization"}

ITEM_TYPES = ("deal", "person", "organization", "product", "lead", "file", "mail_attachment", "project")
# the `fields` each route accepts, and what each item type is searched in
ITEM_SEARCH_FIELDS = ("address", "code", "custom_fields", "email", "name", "notes", "phone", "title", "description")
SEARCHED_IN = {
    "deal": ("title", "notes", "custom_fields"),
    "person": ("name", "email", "phone", "notes", "custom_fields"),
    "organization": ("name", "address", "notes", "custom_fields"),
}
INCLUDE_FIELDS = {"itemSearch": ("deal.cc_email", "person.picture", "product.price"),
                  "deal": ("deal.cc_email",), "person": ("person.picture",), "organization": ()}
TEXT_FIELD_TYPES = ("varchar", "varchar_auto", "text", "phone", "double", "address")
MAX_ITEM_SEARCH_LIMIT = 100
NOTE_LINK = {"deal": "deal_id", "person": "person_id", "organization": "org_id"}


def _csv(ctx: Ctx, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return None
    values = [v.strip() for v in raw.split(",")]
    for v in values:
        if v not in allowed:
            raise bad_request(f"Invalid value for '{name}': {v}", f"One of: {', '.join(allowed)}.")
    return values


def _term(ctx: Ctx) -> tuple[str, bool]:
    """The search term and whether it must match whole; too short a term is a 400."""
    term = (ctx.query.get("term") or "").strip()
    exact = bool(qbool(ctx, "exact_match"))
    if not term:
        raise bad_request("Missing required parameter 'term'")
    if len(term) < (1 if exact else 2):
        raise bad_request("The search term must be at least 2 characters long (1 with exact_match)")
    return term, exact


def _score(values: list[str], term: str, exact: bool) -> float:
    """How well the term matches the best value: whole 1.0, start 0.75, inside 0.5, not at all 0.
    Never case sensitive."""
    t = term.casefold()
    best = 0.0
    for v in values:
        v = v.casefold()
        if v == t:
            return 1.0
        if not exact and v.startswith(t):
            best = max(best, 0.75)
        elif not exact and t in v:
            best = max(best, 0.5)
    return best


def _matching(values: list[str], term: str, exact: bool) -> list[str]:
    return [v for v in values if _score([v], term, exact) > 0]


class SearchRoutes:
    def _register_search(self) -> None:
        r = self.router
        r.add("GET", "/api/v2/itemSearch", self.item_search)
        r.add("GET", "/api/v2/itemSearch/field", self.item_search_field)
        r.add("GET", "/api/v2/deals/search", self._mk(self.entity_search, "deal"))
        r.add("GET", "/api/v2/persons/search", self._mk(self.entity_search, "person"))
        r.add("GET", "/api/v2/organizations/search", self._mk(self.entity_search, "organization"))

    # -- what a record is searched in ----------------------------------------------------------------------
    def _notes_of(self, item_type: str, ids: list[int] | None = None) -> dict[int, list[str]]:
        """The contents of the live notes of each record (of the records `ids` only, when given)."""
        link = NOTE_LINK[item_type]
        notes = self.store.records("notes")
        out: dict[int, list[str]] = {}
        for n in notes.select() if ids is None else notes.linked(link, ids):
            if n.get(link) is not None and isinstance(n.get("content"), str):
                out.setdefault(n[link], []).append(n["content"])
        return out

    def _candidates(self, item_type: str, searched: list[str], term: str) -> list[int] | None:
        """Ids of the records the search index says may match (a superset, checked record by record);
        None when the term is too short for the index."""
        table = self.store.records(SEARCH_ENTITY[item_type][0])
        own = table.ids_containing(term)
        if own is None:
            return None
        found = set(own) if any(f != "notes" for f in searched) else set()
        if "notes" in searched:
            notes = self.store.records("notes")
            for part in _chunks(notes.ids_containing(term) or [], 500):  # SQLite bounds the ids in one query
                found |= {n[NOTE_LINK[item_type]] for n in notes.select(ids=part) if is_int(n.get(NOTE_LINK[item_type]))}
        return sorted(found)

    def _custom_texts(self, item_type: str, rec: dict) -> list[str]:
        texts = []
        for f in self.custom_fields_of(SEARCH_ENTITY[item_type][1]):
            v = (rec.get("custom_fields") or {}).get(f["field_code"])
            if v is None or f["field_type"] not in TEXT_FIELD_TYPES:
                continue
            texts.append(str(v.get("value")) if isinstance(v, dict) else str(v))
        return texts

    def _texts(self, item_type: str, rec: dict, field: str, notes: dict[int, list[str]]) -> list[str]:
        if field in ("title", "name"):
            v = rec.get(SEARCH_ENTITY[item_type][2])
            return [v] if isinstance(v, str) else []
        if field in ("email", "phone"):
            return [c["value"] for c in rec.get(field + "s") or []]
        if field == "address":
            return [a] if (a := _address(rec)) else []
        if field == "notes":
            return notes.get(rec["id"], [])
        if field == "custom_fields":
            return self._custom_texts(item_type, rec)
        return []

    # -- found items as Pipedrive renders them -------------------------------------------------------------
    def _org_ref(self, oid: Any, with_address: bool = True) -> dict | None:
        org = self.store.get("organizations", oid, True) if oid else None
        if org is None:
            return None
        ref = {"id": org["id"], "name": org.get("name")}
        if with_address:
            ref["address"] = _address(org)
        return ref

    def _item(self, item_type: str, rec: dict, matched: dict[str, list[str]], includes: list[str]) -> dict:
        base = {"id": rec["id"], "type": item_type}
        extra = {"custom_fields": matched.get("custom_fields", []), "notes": matched.get("notes", [])}
        owner = {"id": rec.get("owner_id")}
        if item_type == "deal":
            stage = self.store.get("stages", rec.get("stage_id"), True) if rec.get("stage_id") else None
            person = self.store.get("persons", rec.get("person_id"), True) if rec.get("person_id") else None
            item = {**base, "title": rec.get("title"), "value": rec.get("value"), "currency": rec.get("currency"),
                    "status": rec.get("status"), "visible_to": rec.get("visible_to"), "owner": owner,
                    "stage": {"id": stage["id"], "name": stage["name"]} if stage else None,
                    "person": {"id": person["id"], "name": person.get("name")} if person else None,
                    "organization": self._org_ref(rec.get("org_id")), **extra,
                    "is_archived": bool(rec.get("is_archived"))}
            if "deal.cc_email" in includes:
                item["cc_email"] = f"{self.account['company_domain']}+deal{rec['id']}@pipedrivemail.com"
            return item
        if item_type == "person":
            item = {**base, "name": rec.get("name"), "phones": [p["value"] for p in rec.get("phones") or []],
                    "emails": [e["value"] for e in rec.get("emails") or []], "visible_to": rec.get("visible_to"),
                    "owner": owner, "organization": self._org_ref(rec.get("org_id")), **extra}
            if "person.picture" in includes:
                item["picture"] = None  # the sandbox keeps no pictures
            return item
        return {**base, "name": rec.get("name"), "address": _address(rec), "visible_to": rec.get("visible_to"),
                "owner": owner, **extra}

    # -- the search ----------------------------------------------------------------------------------------
    def _found(self, item_type: str, fields: list[str], term: str, exact: bool,
               keep: Callable[[dict], bool]) -> list[tuple[float, dict, dict[str, list[str]]]]:
        """(score, record, matched texts by field) of every live record of the type the term matches."""
        table = self.store.records(SEARCH_ENTITY[item_type][0])
        searched = [f for f in SEARCHED_IN[item_type] if f in fields]
        ids = self._candidates(item_type, searched, term)
        notes = self._notes_of(item_type, ids) if "notes" in searched else {}
        rows = table.select() if ids is None else (r for chunk in _chunks(ids, 500) for r in table.select(ids=chunk))
        out = []
        for rec in rows:
            if not keep(rec):
                continue
            texts = {f: self._texts(item_type, rec, f, notes) for f in searched}
            score = max((_score(v, term, exact) for v in texts.values()), default=0.0)
            if score > 0:
                out.append((score, rec, {f: _matching(v, term, exact) for f, v in texts.items()}))
        return out

    def _search_reply(self, ctx: Ctx, hits: list[tuple[float, str, dict, dict]], includes: list[str],
                      max_limit: int, related: list[dict] | None = None) -> Reply:
        order = {t: i for i, t in enumerate(ITEM_TYPES)}
        rows = [{"score": s, "type": t, "rec": r, "matched": m} for s, t, r, m in hits]

        def key(row: dict) -> tuple:  # best first; a cursor needs integers, so the score in thousandths
            return (-round(row["score"] * 1000), order[row["type"]], row["rec"]["id"])

        rows.sort(key=key)
        shown, nxt = page(ctx, rows, key, max_limit=max_limit)
        data: dict[str, Any] = {"items": [{"result_score": r["score"],
                                           "item": self._item(r["type"], r["rec"], r["matched"], includes)}
                                          for r in shown]}
        if related is not None:
            data["related_items"] = related
        return Reply(200, {"success": True, "data": data, "additional_data": {"next_cursor": nxt}})

    def entity_search(self, ctx: Ctx, item_type: str) -> Reply:
        term, exact = _term(ctx)
        fields = _csv(ctx, "fields", SEARCHED_IN[item_type]) or list(SEARCHED_IN[item_type])
        includes = _csv(ctx, "include_fields", INCLUDE_FIELDS[item_type]) or []
        keep = self._filter(ctx, item_type)
        hits = [(s, item_type, r, m) for s, r, m in self._found(item_type, fields, term, exact, keep)]
        return self._search_reply(ctx, hits, includes, max_limit=500)

    def _filter(self, ctx: Ctx, item_type: str) -> Callable[[dict], bool]:
        """The record filters a per-entity search takes (person, organization, status)."""
        wanted: dict[str, Any] = {}
        if item_type in ("deal", "person"):
            org = qint(ctx, "organization_id")
            if org is not None:
                wanted["org_id"] = org
        if item_type == "deal":
            person = qint(ctx, "person_id")
            if person is not None:
                wanted["person_id"] = person
            status = ctx.query.get("status")
            if status:
                if status not in ("open", "won", "lost"):
                    raise bad_request("Invalid value for 'status'", "One of: open, won, lost.")
                wanted["status"] = status
        return lambda rec: all(rec.get(k) == v for k, v in wanted.items())

    def item_search(self, ctx: Ctx) -> Reply:
        term, exact = _term(ctx)
        types = _csv(ctx, "item_types", ITEM_TYPES) or list(ITEM_TYPES)
        fields = _csv(ctx, "fields", ITEM_SEARCH_FIELDS) or list(ITEM_SEARCH_FIELDS)
        includes = _csv(ctx, "include_fields", INCLUDE_FIELDS["itemSearch"]) or []
        hits = []
        # the sandbox keeps no products, leads, projects or mail, and files are not searched: none found
        for item_type in (t for t in types if t in SEARCH_ENTITY):
            hits += [(s, item_type, r, m) for s, r, m in self._found(item_type, fields, term, exact, lambda r: True)]
        related = self._related(hits, includes) if qbool(ctx, "search_for_related_items") else None
        return self._search_reply(ctx, hits, includes, MAX_ITEM_SEARCH_LIMIT, related)

    def _related(self, hits: list[tuple[float, str, dict, dict]], includes: list[str]) -> list[dict]:
        """Up to 100 newest deals of each found person and organization, and up to 100 newest persons of
        each found organization (the sandbox keeps no leads)."""
        out, seen = [], set()
        for _score_, item_type, rec, _m in hits:
            links = [("deal", "person_id" if item_type == "person" else "org_id")] if item_type != "deal" else []
            if item_type == "organization":
                links.append(("person", "org_id"))
            for rel_type, key in links:
                kind = SEARCH_ENTITY[rel_type][0]
                linked = self.store.records(kind).select(eq={key: rec["id"]}, order="add_time", descending=True,
                                                         limit=100)
                for r in linked:
                    if (rel_type, r["id"]) not in seen:
                        seen.add((rel_type, r["id"]))
                        out.append({"result_score": 0.0, "item": self._item(rel_type, r, {}, includes)})
        return out

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

        table = self.store.records(kind)
        indexed = (f["is_custom_field"] or field_key == name_key) and f["field_type"] not in ("enum", "set")

        def select(after: list | None):
            if after is not None and (len(after) != 1 or not is_int(after[0]) or not -(2**63) <= after[0] < 2**63):
                raise bad_request("Invalid cursor", "The cursor is not valid.")
            # the candidates from an index, checked on each record
            found = None if not indexed else table.ids_containing(term) if match == "middle" else \
                table.ids_with_text(field_key, term, prefix=match == "beginning")
            if found is not None:
                ids = [i for i in found if after is None or i > after[0]]
                rows = (r for chunk in _chunks(ids, 500) for r in table.select(ids=chunk))
            else:
                rows = table.select(after=after)
            return (r for r in rows if hit(values(r)))

        page, nxt = stream_page(ctx, select)
        data = []
        for r in page:
            vs = values(r)
            item = {"id": r["id"], name_key: r.get(name_key), field_key: vs[0] if vs else None}
            if name_key != "name":
                item["name"] = r.get(name_key)
            data.append({"id": r["id"], "name": r.get(name_key), "result_score": 1.0, "item": item})
        return Reply(200, {"success": True, "data": data, "additional_data": {"next_cursor": nxt}})


def _chunks(ids: list[int], size: int):
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _address(rec: dict) -> str | None:
    a = rec.get("address")
    if isinstance(a, dict):
        return a.get("value")
    return a if isinstance(a, str) else None
