"""Contract tests: for every operation the sandbox implements, the real HTTP response validates
against the response schema of the official Pipedrive OpenAPI file (v1 or v2)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import jsonschema
import pytest

from .conftest import OPENAPI_DIR

COSTS_CSV = Path(__file__).resolve().parents[2] / "flitstack_dagster" / "sandbox" / "token_costs.csv"

V2 = "v2"
V1 = "v1"


def check(specs, resp: httpx.Response, api: str, path: str, method: str) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    jsonschema.Draft7Validator(specs[api].response_schema(path, method)).validate(body)
    assert body["success"] is True
    return body


def test_the_pinned_official_files_are_the_ones_the_readme_names() -> None:
    """The contract tests read only the pinned copy, and it is byte for byte the one its README hashes."""
    listed = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", (OPENAPI_DIR / "README.md").read_text(), re.M))
    assert set(listed) == {"pipedrive-v1-openapi.yml", "pipedrive-v2-openapi.yml", "token_costs.csv"}
    for name, digest in listed.items():
        assert hashlib.sha256((OPENAPI_DIR / name).read_bytes()).hexdigest() == digest, name
    assert COSTS_CSV.read_bytes() == (OPENAPI_DIR / "token_costs.csv").read_bytes()


def test_schema_conversion_rejects_wrong_shapes(specs) -> None:
    """The converted schemas are strict enough to catch a wrong shape (so the contract tests can fail)."""
    schema = specs[V2].response_schema("/organizations/{id}", "get")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"success": True, "data": {"id": "one"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"success": True, "data": {"id": 1, "owner_id": None}}, schema)
    deal = specs[V2].response_schema("/deals/{id}", "get")
    jsonschema.validate({"success": True, "data": {"id": 1, "lost_reason": None}}, deal)  # nullable in the spec


@pytest.mark.parametrize(
    "seg,create,patch",
    [
        ("organizations", {"name": "Acme Facilities", "address": {"value": "1 Main St, Springfield"}},
         {"name": "Acme Facilities Inc."}),
        ("persons", {"name": "Dana Smith", "emails": [{"value": "dana@example.com", "primary": True}],
                     "phones": [{"value": "+1 555 0100", "label": "mobile"}]}, {"name": "Dana Smith-Lee"}),
        ("deals", {"title": "WO-004211 · Replace pump", "value": 1250.5, "currency": "USD"},
         {"status": "won"}),
        ("activities", {"subject": "Labor", "type": "task", "due_date": "2025-03-01", "due_time": "09:30",
                        "duration": "01:30", "done": True, "note": "2.5 h"}, {"done": False}),
    ],
)
def test_v2_entity_crud_matches_spec(specs, client, seg, create, patch) -> None:
    b = check(specs, client.post(f"/api/v2/{seg}", json=create), V2, f"/{seg}", "post")
    rid = b["data"]["id"]
    for k, v in create.items():
        if k not in ("emails", "phones"):
            assert b["data"][k] == v
    check(specs, client.get(f"/api/v2/{seg}/{rid}"), V2, f"/{seg}/{{id}}", "get")
    listed = check(specs, client.get(f"/api/v2/{seg}", params={"limit": 10}), V2, f"/{seg}", "get")
    assert [r["id"] for r in listed["data"]] == [rid]
    assert listed["additional_data"]["next_cursor"] is None
    upd = check(specs, client.patch(f"/api/v2/{seg}/{rid}", json=patch), V2, f"/{seg}/{{id}}", "patch")
    for k, v in patch.items():
        assert upd["data"][k] == v
    d = check(specs, client.delete(f"/api/v2/{seg}/{rid}"), V2, f"/{seg}/{{id}}", "delete")
    assert d["data"]["id"] == rid


def test_pipelines_and_stages_match_spec(specs, client) -> None:
    pl = check(specs, client.get("/api/v2/pipelines"), V2, "/pipelines", "get")
    assert len(pl["data"]) == 1
    p = check(specs, client.post("/api/v2/pipelines", json={"name": "Novo Work Orders"}), V2, "/pipelines", "post")
    pid = p["data"]["id"]
    check(specs, client.get(f"/api/v2/pipelines/{pid}"), V2, "/pipelines/{id}", "get")
    s = check(specs, client.post("/api/v2/stages", json={"name": "New", "pipeline_id": pid}), V2, "/stages", "post")
    check(specs, client.get(f"/api/v2/stages/{s['data']['id']}"), V2, "/stages/{id}", "get")
    st = check(specs, client.get("/api/v2/stages", params={"pipeline_id": pid}), V2, "/stages", "get")
    assert [x["name"] for x in st["data"]] == ["New"]
    default = check(specs, client.get("/api/v2/stages", params={"pipeline_id": pl["data"][0]["id"]}), V2,
                    "/stages", "get")
    assert len(default["data"]) >= 4


@pytest.mark.parametrize("seg,entity", [("dealFields", "deal"), ("personFields", "person"),
                                        ("organizationFields", "organization")])
def test_fields_match_spec(specs, client, seg, entity) -> None:
    lst = check(specs, client.get(f"/api/v2/{seg}", params={"limit": 500}), V2, f"/{seg}", "get")
    codes = {f["field_code"] for f in lst["data"]}
    assert {"id", "owner_id", "add_time", "update_time"} <= codes
    assert not any(f["is_custom_field"] for f in lst["data"])
    created = check(specs, client.post(f"/api/v2/{seg}", json={
        "field_name": "Novo_Role__c", "field_type": "enum",
        "options": [{"label": "Technician"}, {"label": "Requester"}]}), V2, f"/{seg}", "post")
    key = created["data"]["field_code"]
    assert len(key) == 40 and int(key, 16) >= 0
    opts = check(specs, client.post(f"/api/v2/{seg}/{key}/options", json=[{"label": "Technician/Requester"}]),
                 V2, f"/{seg}/{{field_code}}/options", "post")
    assert [o["label"] for o in opts["data"]] == ["Technician/Requester"]
    one = check(specs, client.get(f"/api/v2/{seg}/{key}"), V2, f"/{seg}/{{field_code}}", "get")
    assert [o["label"] for o in one["data"]["options"]] == ["Technician", "Requester", "Technician/Requester"]


def test_activity_fields_list_only(specs, client) -> None:
    lst = check(specs, client.get("/api/v2/activityFields"), V2, "/activityFields", "get")
    assert {"subject", "type", "due_date", "done"} <= {f["field_code"] for f in lst["data"]}
    r = client.post("/api/v2/activityFields", json={"field_name": "x", "field_type": "varchar"})
    assert r.status_code == 404


def test_item_search_field_matches_spec(specs, client) -> None:
    key = client.post("/api/v2/dealFields", json={"field_name": "Novo Source ID", "field_type": "varchar"}
                      ).json()["data"]["field_code"]
    for n in (1, 2, 3):
        client.post("/api/v2/deals", json={"title": f"WO-{n}", "custom_fields": {key: f"work_order:WO-00{n}"}})
    b = check(specs, client.get("/api/v2/itemSearch/field", params={
        "term": "work_order:WO-002", "entity_type": "deal", "field": key, "match": "exact"}),
        V2, "/itemSearch/field", "get")
    assert [x["item"]["id"] for x in b["data"]] == [2]
    b = check(specs, client.get("/api/v2/itemSearch/field", params={
        "term": "work_order:", "entity_type": "deal", "field": key, "match": "beginning", "limit": 2}),
        V2, "/itemSearch/field", "get")
    assert len(b["data"]) == 2 and b["additional_data"]["next_cursor"]
    # v1-style parameter names are understood too
    b = client.get("/api/v2/itemSearch/field", params={"term": "work_order:WO-003", "field_type": "dealField",
                                                        "field_key": key, "exact_match": "true"}).json()
    assert [x["id"] for x in b["data"]] == [3]


def test_v1_notes_match_spec(specs, client) -> None:
    org = client.post("/api/v2/organizations", json={"name": "Acme"}).json()["data"]["id"]
    b = check(specs, client.post("/v1/notes", json={"content": "Status New → Open", "org_id": org,
                                                     "add_time": "2021-06-01 08:15:00"}), V1, "/notes", "post")
    nid = b["data"]["id"]
    assert b["data"]["add_time"] == "2021-06-01 08:15:00"
    assert b["data"]["organization"] == {"name": "Acme"}
    check(specs, client.get(f"/v1/notes/{nid}"), V1, "/notes/{id}", "get")
    lst = check(specs, client.get("/v1/notes", params={"org_id": org}), V1, "/notes", "get")
    assert [n["id"] for n in lst["data"]] == [nid]
    u = check(specs, client.put(f"/v1/notes/{nid}", json={"content": "edited"}), V1, "/notes/{id}", "put")
    assert u["data"]["content"] == "edited"
    d = check(specs, client.delete(f"/v1/notes/{nid}"), V1, "/notes/{id}", "delete")
    assert d["data"] is True
    assert client.get(f"/v1/notes/{nid}").status_code == 404


def test_v1_files_match_spec(specs, client) -> None:
    deal = client.post("/api/v2/deals", json={"title": "WO-1"}).json()["data"]["id"]
    payload = bytes(range(256)) * 40
    b = check(specs, client.post("/v1/files", files={"file": ("photo.bin", payload, "application/octet-stream")},
                                 data={"deal_id": str(deal)}), V1, "/files", "post")
    fid = b["data"]["id"]
    assert b["data"]["file_size"] == len(payload) and b["data"]["deal_id"] == deal
    check(specs, client.get(f"/v1/files/{fid}"), V1, "/files/{id}", "get")
    lst = check(specs, client.get("/v1/files"), V1, "/files", "get")
    assert [f["id"] for f in lst["data"]] == [fid]
    dl = client.get(f"/v1/files/{fid}/download")
    assert dl.status_code == 200 and dl.content == payload
    check(specs, client.delete(f"/v1/files/{fid}"), V1, "/files/{id}", "delete")
    assert client.get(f"/v1/files/{fid}").status_code == 404


def test_v1_activity_types_match_spec(specs, client) -> None:
    lst = check(specs, client.get("/v1/activityTypes"), V1, "/activityTypes", "get")
    assert {"call", "meeting", "task", "deadline", "email", "lunch"} <= {t["key_string"] for t in lst["data"]}
    b = check(specs, client.post("/v1/activityTypes", json={"name": "Work Order Labor", "icon_key": "cogs"}),
              V1, "/activityTypes", "post")
    assert b["data"]["key_string"] == "work_order_labor"
    a = client.post("/api/v2/activities", json={"type": "work_order_labor", "subject": "Labor"})
    assert a.status_code == 200 and a.json()["data"]["type"] == "work_order_labor"


def test_v1_org_relationships_match_spec(specs, client) -> None:
    parent = client.post("/api/v2/organizations", json={"name": "Plant"}).json()["data"]["id"]
    child = client.post("/api/v2/organizations", json={"name": "Boiler"}).json()["data"]["id"]
    b = check(specs, client.post("/v1/organizationRelationships", json={
        "type": "parent", "rel_owner_org_id": parent, "rel_linked_org_id": child}),
        V1, "/organizationRelationships", "post")
    rid = b["data"]["id"]
    lst = check(specs, client.get("/v1/organizationRelationships", params={"org_id": child}), V1,
                "/organizationRelationships", "get")
    assert lst["data"][0]["calculated_type"] == "parent"
    assert lst["data"][0]["rel_owner_org_id"]["value"] == parent
    # a second parent for the same child, and cycles, are refused
    third = client.post("/api/v2/organizations", json={"name": "Other"}).json()["data"]["id"]
    r = client.post("/v1/organizationRelationships", json={"type": "parent", "rel_owner_org_id": third,
                                                             "rel_linked_org_id": child})
    assert r.status_code == 400
    r = client.post("/v1/organizationRelationships", json={"type": "parent", "rel_owner_org_id": child,
                                                             "rel_linked_org_id": parent})
    assert r.status_code == 400
    check(specs, client.delete(f"/v1/organizationRelationships/{rid}"), V1, "/organizationRelationships/{id}",
          "delete")
    after = client.get("/v1/organizationRelationships", params={"org_id": child}).json()
    assert after["data"] == []


def test_v1_users_match_spec(specs, client) -> None:
    lst = check(specs, client.get("/v1/users"), V1, "/users", "get")
    emails = [u["email"] for u in lst["data"]]
    assert len(emails) == 5 and "admin@springfield.example" in emails
    me = check(specs, client.get("/v1/users/me"), V1, "/users/me", "get")
    assert me["data"]["email"] == "admin@springfield.example" and me["data"]["company_domain"]
    assert client.get("/api/v1/users/me").status_code == 200  # real Pipedrive's /api/v1 prefix


def test_error_bodies_are_pipedrive_shaped(client) -> None:
    r = client.get("/api/v2/deals/999")
    assert r.status_code == 404
    b = r.json()
    assert b["success"] is False and b["data"] is None and b["additional_data"] is None
    assert isinstance(b["error"], str) and isinstance(b["error_info"], str)
