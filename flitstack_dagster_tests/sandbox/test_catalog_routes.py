"""Pipeline and stage update and delete: answers that validate against the pinned official v2 spec, the
spec's token costs, and refusals that lose no deal."""

from __future__ import annotations

from .test_contract import V2, check
from .test_field_routes import assert_refused, tokens_of


def _pipeline_with_stages(client, name: str = "Novo Work Orders", stages=("New", "Done")) -> tuple[int, list[int]]:
    pid = client.post("/api/v2/pipelines", json={"name": name}).json()["data"]["id"]
    ids = [client.post("/api/v2/stages", json={"name": s, "pipeline_id": pid}).json()["data"]["id"] for s in stages]
    return pid, ids


def test_pipeline_update_and_delete_match_spec(specs, client) -> None:
    pid, (new, done) = _pipeline_with_stages(client)
    upd = check(specs, client.patch(f"/api/v2/pipelines/{pid}", json={
        "name": "Work Orders", "is_deal_probability_enabled": True}), V2, "/pipelines/{id}", "patch")
    assert upd["data"]["name"] == "Work Orders" and upd["data"]["is_deal_probability_enabled"] is True
    assert client.get(f"/api/v2/pipelines/{pid}").json()["data"]["name"] == "Work Orders"
    gone = check(specs, client.delete(f"/api/v2/pipelines/{pid}"), V2, "/pipelines/{id}", "delete")
    assert gone["data"] == {"id": pid}
    assert client.get(f"/api/v2/pipelines/{pid}").status_code == 404
    assert client.get(f"/api/v2/stages/{new}").status_code == 404  # its stages went with it
    assert pid not in {p["id"] for p in client.get("/api/v2/pipelines").json()["data"]}
    assert tokens_of(client, "updatePipeline") == specs[V2].token_cost("/pipelines/{id}", "patch")
    assert tokens_of(client, "deletePipeline") == specs[V2].token_cost("/pipelines/{id}", "delete")


def test_stage_update_and_delete_match_spec(specs, client) -> None:
    pid, (new, done) = _pipeline_with_stages(client)
    upd = check(specs, client.patch(f"/api/v2/stages/{new}", json={
        "name": "Opened", "deal_probability": 40, "is_deal_rot_enabled": True, "days_to_rotten": 7}),
        V2, "/stages/{id}", "patch")
    assert (upd["data"]["name"], upd["data"]["deal_probability"], upd["data"]["days_to_rotten"]) == ("Opened", 40, 7)
    gone = check(specs, client.delete(f"/api/v2/stages/{done}"), V2, "/stages/{id}", "delete")
    assert gone["data"] == {"id": done}
    left = client.get("/api/v2/stages", params={"pipeline_id": pid}).json()["data"]
    assert [s["id"] for s in left] == [new]
    assert tokens_of(client, "updateStage") == specs[V2].token_cost("/stages/{id}", "patch")
    assert tokens_of(client, "deleteStage") == specs[V2].token_cost("/stages/{id}", "delete")


def test_a_stage_or_pipeline_with_deals_is_not_deleted(client) -> None:
    pid, (new, done) = _pipeline_with_stages(client)
    deal = client.post("/api/v2/deals", json={"title": "WO-1", "stage_id": new}).json()["data"]
    assert_refused(client.delete(f"/api/v2/stages/{new}"))
    assert_refused(client.delete(f"/api/v2/pipelines/{pid}"))
    other, (elsewhere,) = _pipeline_with_stages(client, "Other", ("Only",))
    assert_refused(client.patch(f"/api/v2/stages/{new}", json={"pipeline_id": other}))
    assert client.get(f"/api/v2/stages/{new}").json()["data"]["pipeline_id"] == pid
    # once the deal moves on, the stage can go
    client.patch(f"/api/v2/deals/{deal['id']}", json={"stage_id": done})
    assert client.delete(f"/api/v2/stages/{new}").status_code == 200
    assert client.get(f"/api/v2/deals/{deal['id']}").json()["data"]["stage_id"] == done


def test_the_last_stage_and_the_last_pipeline_stay(client) -> None:
    pid, (only,) = _pipeline_with_stages(client, stages=("Only",))
    assert_refused(client.delete(f"/api/v2/stages/{only}"))
    for p in client.get("/api/v2/pipelines").json()["data"]:
        if p["id"] != pid:
            for s in client.get("/api/v2/stages", params={"pipeline_id": p["id"]}).json()["data"]:
                for d in client.get("/api/v2/deals", params={"stage_id": s["id"]}).json()["data"]:
                    client.delete(f"/api/v2/deals/{d['id']}")
            assert client.delete(f"/api/v2/pipelines/{p['id']}").status_code == 200
    assert_refused(client.delete(f"/api/v2/pipelines/{pid}"))


def test_update_refusals(client) -> None:
    pid, (new, _done) = _pipeline_with_stages(client)
    assert_refused(client.patch(f"/api/v2/pipelines/{pid}", json={"name": ""}))
    assert_refused(client.patch(f"/api/v2/pipelines/{pid}", json={"order_nr": 3}))
    assert_refused(client.patch(f"/api/v2/stages/{new}", json={"deal_probability": 101}))
    assert_refused(client.patch(f"/api/v2/stages/{new}", json={"name": 5}))
    assert client.patch(f"/api/v2/stages/{new}", json={"pipeline_id": 987654}).status_code == 404
    assert client.patch("/api/v2/pipelines/987654", json={"name": "x"}).status_code == 404
    assert client.delete("/api/v2/stages/987654").status_code == 404


def test_a_stage_without_deals_moves_to_another_pipeline_at_its_end(client) -> None:
    pid, (new, done) = _pipeline_with_stages(client)
    other, (first,) = _pipeline_with_stages(client, "Other", ("First",))
    moved = client.patch(f"/api/v2/stages/{done}", json={"pipeline_id": other}).json()["data"]
    assert moved["pipeline_id"] == other
    assert [s["id"] for s in client.get("/api/v2/stages", params={"pipeline_id": other, "sort_by": "order_nr"}
                                        ).json()["data"]] == [first, done]
