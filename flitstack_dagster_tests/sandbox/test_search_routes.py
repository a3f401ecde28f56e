"""itemSearch and the deals/persons/organizations search routes: answers that validate against the pinned
official v2 spec, the spec's token costs, and searches that find by term, field and filter."""

from __future__ import annotations

import pytest

from flitstack_dagster.sandbox.routing import Router

from .test_contract import V2, check
from .test_field_routes import assert_refused, send, tokens_of


@pytest.fixture
def city(client) -> dict:
    """An organization, a person in it, and deals; one with a note and a custom field value."""
    key = client.post("/api/v2/dealFields", json={"field_name": "Novo Source ID", "field_type": "varchar"}
                      ).json()["data"]["field_code"]
    org = client.post("/api/v2/organizations", json={"name": "Springfield Water Plant",
                                                     "address": {"value": "742 Evergreen Terrace"}}).json()["data"]
    person = client.post("/api/v2/persons", json={"name": "Dana Boiler", "org_id": org["id"],
                                                  "emails": [{"value": "dana@springfield.gov"}],
                                                  "phones": [{"value": "+1 555 0100"}]}).json()["data"]
    pump = client.post("/api/v2/deals", json={"title": "WO-4211 Replace pump", "value": 1250, "person_id": person["id"],
                                              "org_id": org["id"], "custom_fields": {key: "work_order:WO-4211"}}
                       ).json()["data"]
    valve = client.post("/api/v2/deals", json={"title": "WO-4212 Valve check", "value": 90, "status": "won"}
                        ).json()["data"]
    client.post("/v1/notes", json={"content": "Seal leaking near the boiler", "deal_id": valve["id"]})
    return {"key": key, "org": org, "person": person, "pump": pump, "valve": valve}


def found(body: dict) -> list[tuple[str, int]]:
    return [(x["item"]["type"], x["item"]["id"]) for x in body["data"]["items"]]


def test_deals_search_matches_spec_and_is_no_deal_named_search(specs, client, city) -> None:
    b = check(specs, client.get("/api/v2/deals/search", params={"term": "pump"}), V2, "/deals/search", "get")
    assert found(b) == [("deal", city["pump"]["id"])]
    item = b["data"]["items"][0]["item"]
    assert item["person"] == {"id": city["person"]["id"], "name": "Dana Boiler"}
    assert item["stage"]["id"] == city["pump"]["stage_id"] and item["owner"] == {"id": city["pump"]["owner_id"]}
    assert tokens_of(client, "searchDeals") == specs[V2].token_cost("/deals/search", "get")
    assert "getDeal" not in client.get("/_sandbox/usage").json()["data"]["operations"]


def test_persons_and_organizations_search_match_spec(specs, client, city) -> None:
    b = check(specs, client.get("/api/v2/persons/search", params={"term": "dana@springfield.gov",
                                                                   "exact_match": "true"}),
              V2, "/persons/search", "get")
    assert found(b) == [("person", city["person"]["id"])]
    assert b["data"]["items"][0]["item"]["emails"] == ["dana@springfield.gov"]
    b = check(specs, client.get("/api/v2/organizations/search", params={"term": "evergreen", "fields": "address"}),
              V2, "/organizations/search", "get")
    assert found(b) == [("organization", city["org"]["id"])]
    assert b["data"]["items"][0]["item"]["address"] == "742 Evergreen Terrace"
    assert tokens_of(client, "searchPersons") == specs[V2].token_cost("/persons/search", "get")
    assert tokens_of(client, "searchOrganization") == specs[V2].token_cost("/organizations/search", "get")


def test_item_search_matches_spec_across_types(specs, client, city) -> None:
    b = check(specs, client.get("/api/v2/itemSearch", params={"term": "boiler"}), V2, "/itemSearch", "get")
    # the person by name, the valve deal by its note; nothing else mentions a boiler
    assert sorted(found(b)) == sorted([("person", city["person"]["id"]), ("deal", city["valve"]["id"])])
    valve = next(x["item"] for x in b["data"]["items"] if x["item"]["type"] == "deal")
    assert valve["notes"] == ["Seal leaking near the boiler"]
    b = check(specs, client.get("/api/v2/itemSearch", params={"term": "boiler", "item_types": "person"}),
              V2, "/itemSearch", "get")
    assert found(b) == [("person", city["person"]["id"])]
    b = check(specs, client.get("/api/v2/itemSearch", params={"term": "Springfield Water Plant",
                                                               "item_types": "organization",
                                                               "search_for_related_items": "true"}),
              V2, "/itemSearch", "get")
    related = {(x["item"]["type"], x["item"]["id"]) for x in b["data"]["related_items"]}
    assert related == {("deal", city["pump"]["id"]), ("person", city["person"]["id"])}
    assert tokens_of(client, "searchItem") == 3 * specs[V2].token_cost("/itemSearch", "get")


def test_search_by_field_and_custom_field(client, city) -> None:
    pump = city["pump"]["id"]
    assert found(client.get("/api/v2/deals/search", params={"term": "work_order:WO-4211"}).json()) == [("deal", pump)]
    assert found(client.get("/api/v2/deals/search", params={"term": "WO-4211", "fields": "custom_fields"}
                            ).json()) == [("deal", pump)]
    hit = client.get("/api/v2/deals/search", params={"term": "WO-4211", "fields": "custom_fields"}).json()
    assert hit["data"]["items"][0]["item"]["custom_fields"] == ["work_order:WO-4211"]
    # restricted to titles, a term found only in a note finds nothing
    assert found(client.get("/api/v2/deals/search", params={"term": "leaking", "fields": "title"}).json()) == []
    assert found(client.get("/api/v2/deals/search", params={"term": "leaking", "fields": "notes"}).json()) == [
        ("deal", city["valve"]["id"])]


def test_exact_match_is_whole_and_not_case_sensitive(client, city) -> None:
    q = {"term": "wo-4211 replace PUMP", "exact_match": "true"}
    assert found(client.get("/api/v2/deals/search", params=q).json()) == [("deal", city["pump"]["id"])]
    assert found(client.get("/api/v2/deals/search", params={"term": "replace", "exact_match": "true"}).json()) == []
    scores = client.get("/api/v2/deals/search", params={"term": "WO-421"}).json()["data"]["items"]
    assert len(scores) == 2 and all(0 < x["result_score"] < 1 for x in scores)


def test_filters_narrow_the_search(client, city) -> None:
    assert found(client.get("/api/v2/deals/search", params={"term": "WO-42", "status": "won"}).json()) == [
        ("deal", city["valve"]["id"])]
    assert found(client.get("/api/v2/deals/search", params={"term": "WO-42", "person_id": city["person"]["id"]}
                            ).json()) == [("deal", city["pump"]["id"])]
    assert found(client.get("/api/v2/deals/search", params={"term": "WO-42", "organization_id": city["org"]["id"]}
                            ).json()) == [("deal", city["pump"]["id"])]
    assert found(client.get("/api/v2/persons/search", params={"term": "Dana", "organization_id": 987654}
                            ).json()) == []


def test_deleted_records_are_not_found(client, city) -> None:
    client.delete(f"/api/v2/deals/{city['pump']['id']}")
    assert found(client.get("/api/v2/deals/search", params={"term": "pump"}).json()) == []


def test_pages_follow_the_cursor(client, city) -> None:
    for n in range(5):
        client.post("/api/v2/deals", json={"title": f"Hydrant {n}"})
    seen, cursor = [], None
    while True:
        params = {"term": "hydrant", "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = send(client, "GET", "/api/v2/deals/search", params=params).json()
        seen += found(body)
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5


def test_search_refusals(client, city) -> None:
    assert_refused(client.get("/api/v2/deals/search"))
    assert_refused(client.get("/api/v2/deals/search", params={"term": "w"}))  # 2 characters, or 1 if exact
    assert client.get("/api/v2/deals/search", params={"term": "w", "exact_match": "true"}).status_code == 200
    assert_refused(client.get("/api/v2/deals/search", params={"term": "pump", "fields": "email"}))
    assert_refused(client.get("/api/v2/deals/search", params={"term": "pump", "status": "deleted"}))
    assert_refused(client.get("/api/v2/itemSearch", params={"term": "pump", "item_types": "invoice"}))
    assert_refused(client.get("/api/v2/itemSearch", params={"term": "pump", "limit": 101}))
    assert client.get("/api/v2/deals/search", params={"term": "pump", "limit": 500}).status_code == 200


def test_a_literal_path_beats_a_placeholder_whatever_the_order_routes_were_added() -> None:
    router = Router()
    router.add("GET", "/api/v2/deals/{id}", "get_deal")
    router.add("GET", "/api/v2/deals/search", "search_deals")
    assert router.match("GET", "/api/v2/deals/search")[0] == "search_deals"
    assert router.match("GET", "/api/v2/deals/7") == ("get_deal", {"id": "7"}, "json")
