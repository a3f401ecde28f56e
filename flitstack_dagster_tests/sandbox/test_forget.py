"""The "forget acknowledged writes" fault mode: the sandbox loses its newest acknowledged creates and
rewinds its id counters, as a store that lost writes would, so the next creates get the same ids."""

from __future__ import annotations

import httpx

from flitstack_dagster.sandbox.server import SandboxServer


def _client(sb: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10)


def _create(c: httpx.Client, seg: str, body: dict) -> int:
    r = c.post(f"/api/v2/{seg}", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def test_forget_over_http_loses_the_newest_creates_and_reuses_their_ids(sandbox, client) -> None:
    orgs = [_create(client, "organizations", {"name": f"Org {i}"}) for i in range(3)]
    deal = _create(client, "deals", {"title": "Kept", "org_id": orgs[0]})
    person = _create(client, "persons", {"name": "Lost Person", "org_id": orgs[2]})
    client.patch(f"/api/v2/organizations/{orgs[0]}", json={"name": "Org 0 renamed"})  # an update is no create

    r = client.post("/_sandbox/forget", json={"creates": 2})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["forgotten"] == [{"kind": "persons", "id": person}, {"kind": "deals", "id": deal}]
    assert data["next_id"]["persons"] == person and data["next_id"]["deals"] == deal

    assert client.get(f"/api/v2/persons/{person}").status_code == 404
    assert client.get(f"/api/v2/deals/{deal}").status_code == 404
    assert client.get(f"/api/v2/organizations/{orgs[0]}").json()["data"]["name"] == "Org 0 renamed"
    # the lost ids are handed out again, to other records
    assert _create(client, "deals", {"title": "Another deal"}) == deal
    assert _create(client, "persons", {"name": "Another person"}) == person
    assert client.get(f"/api/v2/deals/{deal}").json()["data"]["title"] == "Another deal"


def test_forget_one_kind_and_it_lasts_across_a_restart(tmp_path) -> None:
    state = tmp_path / "state.sqlite"
    with SandboxServer(state_path=state, plan="ultimate") as sb, _client(sb) as c:
        orgs = [_create(c, "organizations", {"name": f"Org {i}"}) for i in range(4)]
        deal = _create(c, "deals", {"title": "Newest create, not an organization"})
        lost = sb.forget_creates(2, "organizations")
        assert lost == [{"kind": "organizations", "id": orgs[3]}, {"kind": "organizations", "id": orgs[2]}]
    with SandboxServer(state_path=state, plan="ultimate") as sb, _client(sb) as c:
        names = sorted(o["name"] for o in c.get("/api/v2/organizations").json()["data"])
        assert names == ["Org 0", "Org 1"]
        assert c.get(f"/api/v2/deals/{deal}").status_code == 200
        assert _create(c, "organizations", {"name": "Again"}) == orgs[2]


def test_forget_a_file_loses_its_body_too(sandbox, client) -> None:
    org = _create(client, "organizations", {"name": "Has a file"})
    r = client.post("/v1/files", files={"file": ("a.txt", b"payload")}, data={"org_id": str(org)})
    fid = r.json()["data"]["id"]
    assert client.get(f"/v1/files/{fid}/download").content == b"payload"
    assert sandbox.forget_creates(1) == [{"kind": "files", "id": fid}]
    assert client.get(f"/v1/files/{fid}/download").status_code == 404
    assert sandbox.store.get_blob(fid) is None


def test_forget_refuses_a_bad_body(sandbox, client) -> None:
    for body in ({}, {"creates": "2"}, {"creates": -1}, {"creates": 1, "kind": "widgets"}, {"creates": 1, "x": 1}):
        r = client.post("/_sandbox/forget", json=body)
        assert r.status_code == 400, body
        assert r.json()["success"] is False
    assert httpx.post(sandbox.base_url + "/_sandbox/forget", json={"creates": 1}).status_code == 401


def test_forget_without_a_state_database(tmp_path) -> None:
    with SandboxServer(state_path=None, plan="ultimate") as sb, _client(sb) as c:
        a = _create(c, "organizations", {"name": "A"})
        b = _create(c, "organizations", {"name": "B"})
        assert sb.forget_creates(1) == [{"kind": "organizations", "id": b}]
        assert _create(c, "organizations", {"name": "C"}) == b
        assert c.get(f"/api/v2/organizations/{a}").status_code == 200
