"""The large kinds live in the database, not in memory: a state written before the records had lookup
columns is upgraded on open (links, update time, deleted flag, field-search texts filled from the
bodies), and the indexed routes answer from it as from a new one."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import httpx
import pytest

from flitstack_dagster.sandbox.server import SandboxServer

_OLD_SCHEMA = """
CREATE TABLE docs (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE records (kind TEXT NOT NULL, id INTEGER NOT NULL, created INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, id));
CREATE INDEX records_created ON records (created);
"""


def _as_old_database(state) -> None:
    """Rewrite the state in the shape the sandbox stored before: bodies only."""
    with closing(sqlite3.connect(state)) as db:
        docs = db.execute("SELECT name, body FROM docs").fetchall()
        rows = db.execute("SELECT kind, id, created, body FROM records").fetchall()
    for p in state.parent.glob(state.name + "*"):
        p.unlink()
    with closing(sqlite3.connect(state)) as db:
        db.executescript(_OLD_SCHEMA)
        db.executemany("INSERT INTO docs VALUES (?, ?)", docs)
        db.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
        db.commit()


def test_an_older_state_is_upgraded_and_its_records_found_by_index(tmp_path) -> None:
    state = tmp_path / "state.sqlite"
    with SandboxServer(state_path=state, plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        key = c.post("/api/v2/dealFields", json={"field_name": "Source id", "field_type": "varchar"}).json()["data"]["field_code"]
        org = c.post("/api/v2/organizations", json={"name": "Water Works"}).json()["data"]["id"]
        deal = c.post("/api/v2/deals", json={"title": "WO-1", "org_id": org, "custom_fields": {key: "wo-1"}}).json()["data"]["id"]
        gone = c.post("/api/v2/deals", json={"title": "WO-2", "org_id": org, "custom_fields": {key: "wo-2"}}).json()["data"]["id"]
        c.delete(f"/api/v2/deals/{gone}")
        c.post("/v1/notes", json={"content": "pump replaced", "deal_id": deal})
    _as_old_database(state)
    with SandboxServer(state_path=state, plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        assert [d["id"] for d in c.get("/api/v2/deals", params={"org_id": org}).json()["data"]] == [deal]
        assert [d["id"] for d in c.get("/api/v2/deals", params={"status": "deleted"}).json()["data"]] == [gone]
        assert [n["content"] for n in c.get("/v1/notes", params={"deal_id": deal}).json()["data"]] == ["pump replaced"]
        found = c.get("/api/v2/itemSearch/field", params={"term": "wo-1", "entity_type": "deal", "field": key,
                                                           "match": "exact"}).json()["data"]
        assert [f["id"] for f in found] == [deal]
        assert c.get("/api/v2/itemSearch/field", params={"term": "wo-2", "entity_type": "deal", "field": key,
                                                          "match": "exact"}).json()["data"] == []
        begins = c.get("/api/v2/itemSearch/field", params={"term": "WO", "entity_type": "deal", "field": "title",
                                                            "match": "beginning"}).json()["data"]
        assert [f["id"] for f in begins] == [deal]


def test_a_request_leaves_no_record_in_memory(tmp_path) -> None:
    with SandboxServer(state_path=tmp_path / "state.sqlite", plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        for i in range(30):
            org = c.post("/api/v2/organizations", json={"name": f"Org {i}"}).json()["data"]["id"]
            c.post("/api/v2/persons", json={"name": f"P {i}", "org_id": org})
        assert len(c.get("/api/v2/persons", params={"limit": 500}).json()["data"]) == 30
        tables = [sb.store.records(k) for k in ("organizations", "persons")]
        assert [len(t) for t in tables] == [30, 30]  # counted in the database...
        assert all(not t._reached for t in tables)  # ...and none kept in memory after the requests


@pytest.mark.parametrize("kind, select, index", [
    ("activities", {"eq": {"deal_id": 5}}, "records_by_deal_id"),
    ("notes", {"eq": {"deal_id": 5}, "offset": 100}, "records_by_deal_id"),
    ("deals", {"eq": {"org_id": 5}, "order": "update_time", "descending": True}, "records_by_org_id"),
    ("persons", {"eq": {"org_id": 5}, "order": "add_time", "limit": 100}, "records_by_org_id"),
    ("deals", {"order": "update_time", "after": ["2026-01-01T00:00:00Z", 9]}, "records_updated"),
    ("deals", {"after": [9], "limit": 501}, "(kind=? AND id>?)"),
    ("deals", {"ids": [3, 4, 5]}, "(kind=? AND id=?)"),
])
def test_the_routes_lookups_go_through_an_index(kind, select, index) -> None:
    """With a million records a lookup that walks its whole kind takes seconds: each must seek."""
    with SandboxServer(plan="ultimate") as sb:
        plan = sb.store.records(kind).plan(**select)
    assert index in plan and "SCAN" not in plan, plan


def test_the_search_index_is_what_the_entity_searches_look_up() -> None:
    """A term of three characters or more is found through the trigram index, not by walking the kind."""
    with SandboxServer(plan="ultimate") as sb:
        for kind in ("deals", "persons", "organizations", "notes"):
            plan = sb.store.records(kind).search_plan("wo-42")
            assert f"search_{kind} VIRTUAL TABLE INDEX" in plan and ":M" in plan, plan  # the MATCH constraint


def _search_city(c: httpx.Client) -> str:
    key = c.post("/api/v2/dealFields", json={"field_name": "Source", "field_type": "varchar"}).json()["data"]["field_code"]
    org = c.post("/api/v2/organizations", json={"name": "Straße Pumpwerk", "address": {"value": "1 Kelvin Way"}}).json()
    person = c.post("/api/v2/persons", json={"name": "Dana PUMP", "org_id": org["data"]["id"],
                                             "emails": [{"value": "dana@pump.example"}]}).json()["data"]
    for i, title in enumerate(["Pump WO-1", "pump wo-12", "Valve", "STRASSE work", "Deleted pump", "ﬁlter pump"]):
        d = c.post("/api/v2/deals", json={"title": title, "person_id": person["id"], "org_id": org["data"]["id"],
                                          "custom_fields": {key: f"wo-{i} Pump"}}).json()["data"]
        c.post("/v1/notes", json={"content": f"pump seal {i} \"quoted\" OR NOT", "deal_id": d["id"]})
        if title.startswith("Deleted"):
            c.delete(f"/api/v2/deals/{d['id']}")
    return key


def _answers(c: httpx.Client, sb: SandboxServer, key: str) -> list:
    out = []
    for term in ("pump", "PUMP", "wo-1", "strasse", "fil", "\"quoted\" OR", "seal 3", "kelvin", "no such thing"):
        sb.advance_clock(2.5)  # each term in a fresh burst window
        for path, params in [("/api/v2/deals/search", {}), ("/api/v2/persons/search", {}),
                             ("/api/v2/organizations/search", {}), ("/api/v2/itemSearch", {}),
                             ("/api/v2/deals/search", {"fields": "notes"}),
                             ("/api/v2/itemSearch", {"exact_match": "true"})]:
            out.append(c.get(path, params={"term": term, **params}).json())
        out.append(c.get("/api/v2/itemSearch/field", params={"term": term, "entity_type": "deal", "field": key,
                                                             "match": "middle"}).json())
    return out


def test_the_indexed_searches_answer_exactly_as_the_walk_did(tmp_path, monkeypatch) -> None:
    """Same records, same requests: the answers through the index equal those of walking every record
    (case folding beyond ASCII, quotes and words FTS would read as operators, deleted records, notes)."""
    from flitstack_dagster.sandbox.rows import RowTable

    with SandboxServer(state_path=tmp_path / "state.sqlite", plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        key = _search_city(c)
        indexed = _answers(c, sb, key)
        assert any(a["data"] for a in indexed if isinstance(a.get("data"), list)) and \
            any(a["data"]["items"] for a in indexed if isinstance(a.get("data"), dict))
        monkeypatch.setattr(RowTable, "ids_containing", lambda self, term: None)  # as before the index
        walked = _answers(c, sb, key)
    assert indexed == walked


def test_an_entity_search_does_not_walk_its_kind(monkeypatch) -> None:
    from flitstack_dagster.sandbox.rows import RowTable

    with SandboxServer(plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        _search_city(c)
        sb.advance_clock(2.5)
        walks = []
        select = RowTable.select

        def no_walk(self, **kw):
            if kw.get("ids") is None:
                walks.append(self.kind)
            return select(self, **kw)

        monkeypatch.setattr(RowTable, "select", no_walk)
        body = c.get("/api/v2/itemSearch", params={"term": "pump"}).json()
        assert body["success"] and len(body["data"]["items"]) >= 5
        assert walks == []
