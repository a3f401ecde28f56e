"""Field update and delete, option add/edit/delete, and field metadata: each answer validates against
the pinned official v2 spec, costs the spec's tokens, and behaves as Pipedrive documents."""

from __future__ import annotations

import time

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flitstack_dagster.sandbox.server import SandboxServer

from .test_contract import V2, check

SEGMENTS = [("dealFields", "deal"), ("personFields", "person"), ("organizationFields", "organization")]


def send(client: httpx.Client, method: str, url: str, **kw) -> httpx.Response:
    """One request, waiting out the burst limit (a 429 is the limiter doing its job, not the answer)."""
    for _ in range(20):
        resp = client.request(method, url, **kw)
        if resp.status_code != 429:
            return resp
        time.sleep(float(resp.headers.get("retry-after", "1")))
    raise AssertionError(f"{method} {url}: still rate limited")


def new_field(client: httpx.Client, seg: str, **extra) -> dict:
    body = {"field_name": "Novo Priority", "field_type": "enum",
            "options": [{"label": "Low"}, {"label": "High"}], **extra}
    resp = client.post(f"/api/v2/{seg}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def tokens_of(client: httpx.Client, operation_id: str) -> int:
    return client.get("/_sandbox/usage").json()["data"]["operations"][operation_id]["tokens"]


def assert_refused(resp: httpx.Response, status: int = 400) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["errorCode"] == status and body["error"]
    return body


@pytest.mark.parametrize("seg,entity", SEGMENTS)
def test_field_update_and_delete_match_spec(specs, client, seg, entity) -> None:
    key = new_field(client, seg)["field_code"]
    upd = check(specs, client.patch(f"/api/v2/{seg}/{key}", json={
        "field_name": "Novo Urgency", "ui_visibility": {"details_visible_flag": False}}),
        V2, f"/{seg}/{{field_code}}", "patch")
    assert upd["data"]["field_name"] == "Novo Urgency" and upd["data"]["field_code"] == key
    assert upd["data"]["ui_visibility"]["details_visible_flag"] is False
    one = client.get(f"/api/v2/{seg}/{key}", params={"include_fields": "ui_visibility"}).json()["data"]
    assert one["field_name"] == "Novo Urgency" and one["ui_visibility"]["details_visible_flag"] is False
    gone = check(specs, client.delete(f"/api/v2/{seg}/{key}"), V2, f"/{seg}/{{field_code}}", "delete")
    assert gone["data"]["field_code"] == key
    assert client.get(f"/api/v2/{seg}/{key}").status_code == 404
    listed = client.get(f"/api/v2/{seg}", params={"limit": 500}).json()["data"]
    assert key not in {f["field_code"] for f in listed}
    op = seg[:-1][0].upper() + seg[1:-1]  # dealFields -> DealField
    assert tokens_of(client, f"update{op}") == specs[V2].token_cost(f"/{seg}/{{field_code}}", "patch")
    assert tokens_of(client, f"delete{op}") == specs[V2].token_cost(f"/{seg}/{{field_code}}", "delete")


@pytest.mark.parametrize("seg,entity", SEGMENTS)
def test_field_options_edit_and_delete_match_spec(specs, client, seg, entity) -> None:
    field = new_field(client, seg)
    key = field["field_code"]
    low, high = (o["id"] for o in field["options"])
    path = f"/{seg}/{{field_code}}/options"
    edited = check(specs, client.patch(f"/api/v2/{seg}/{key}/options", json=[{"id": low, "label": "Routine"}]),
                   V2, path, "patch")
    assert edited["data"] == [{"id": low, "label": "Routine"}]
    added = check(specs, client.post(f"/api/v2/{seg}/{key}/options", json=[{"label": "Emergency"}]), V2, path,
                  "post")
    deleted = check(specs, client.request("DELETE", f"/api/v2/{seg}/{key}/options", json=[{"id": high}]),
                    V2, path, "delete")
    assert deleted["data"] == [{"id": high, "label": "High"}]
    options = client.get(f"/api/v2/{seg}/{key}").json()["data"]["options"]
    assert [(o["id"], o["label"]) for o in options] == [(low, "Routine"), (added["data"][0]["id"], "Emergency")]
    op = seg[:-1][0].upper() + seg[1:-1]
    assert tokens_of(client, f"update{op}Options") == specs[V2].token_cost(path, "patch")
    assert tokens_of(client, f"delete{op}Options") == specs[V2].token_cost(path, "delete")


def test_option_changes_fail_whole_when_one_option_does_not_exist(client) -> None:
    field = new_field(client, "dealFields")
    key, (low, high) = field["field_code"], [o["id"] for o in field["options"]]
    assert_refused(client.patch(f"/api/v2/dealFields/{key}/options",
                                json=[{"id": low, "label": "Routine"}, {"id": 999_999, "label": "Nope"}]))
    assert_refused(client.request("DELETE", f"/api/v2/dealFields/{key}/options", json=[{"id": high}, {"id": 999_999}]))
    options = client.get(f"/api/v2/dealFields/{key}").json()["data"]["options"]
    assert [o["label"] for o in options] == ["Low", "High"]  # nothing half-applied


def test_option_refusals(client) -> None:
    field = new_field(client, "dealFields")
    key, (low, high) = field["field_code"], [o["id"] for o in field["options"]]
    assert_refused(client.patch(f"/api/v2/dealFields/{key}/options", json=[{"id": low, "label": "High"}]))  # dup
    assert_refused(client.patch(f"/api/v2/dealFields/{key}/options", json=[{"id": low, "label": ""}]))
    assert_refused(client.patch(f"/api/v2/dealFields/{key}/options", json=[]))
    assert_refused(client.request("DELETE", f"/api/v2/dealFields/{key}/options", json=[{"id": low}, {"id": high}]))
    text = client.post("/api/v2/dealFields", json={"field_name": "Notes", "field_type": "varchar"}).json()["data"]
    assert_refused(client.request("DELETE", f"/api/v2/dealFields/{text['field_code']}/options", json=[{"id": low}]))


def test_deleted_field_is_gone_from_records_and_refused_in_writes(client) -> None:
    key = client.post("/api/v2/dealFields", json={"field_name": "Novo Source ID", "field_type": "varchar"}
                      ).json()["data"]["field_code"]
    deal = client.post("/api/v2/deals", json={"title": "WO-1", "custom_fields": {key: "WO-1"}}).json()["data"]
    assert deal["custom_fields"][key] == "WO-1"
    assert client.delete(f"/api/v2/dealFields/{key}").status_code == 200
    assert key not in client.get(f"/api/v2/deals/{deal['id']}").json()["data"]["custom_fields"]
    assert_refused(client.patch(f"/api/v2/deals/{deal['id']}", json={"custom_fields": {key: "WO-2"}}))
    assert client.delete(f"/api/v2/dealFields/{key}").status_code == 404


def test_system_fields_keep_their_name_and_cannot_be_deleted(client) -> None:
    assert_refused(client.patch("/api/v2/dealFields/title", json={"field_name": "Name"}))
    assert_refused(client.delete("/api/v2/dealFields/title"))
    assert_refused(client.patch("/api/v2/dealFields/title", json={"ui_visibility": {"add_visible_flag": False}}))
    ok = client.patch("/api/v2/dealFields/title", json={"ui_visibility": {"details_visible_flag": True}})
    assert ok.status_code == 200, ok.text
    assert client.get("/api/v2/dealFields/title").json()["data"]["field_name"] == "Title"


def test_field_update_needs_a_property_and_knows_only_its_own(client) -> None:
    key = new_field(client, "personFields")["field_code"]
    assert_refused(client.patch(f"/api/v2/personFields/{key}", json={}))
    assert_refused(client.patch(f"/api/v2/personFields/{key}", json={"field_type": "varchar"}))
    # only deal fields have a description
    assert_refused(client.patch(f"/api/v2/personFields/{key}", json={"description": "x"}))
    assert client.patch("/api/v2/dealFields/title", json={"description": "The deal's name"}).status_code == 200
    assert_refused(client.patch(f"/api/v2/personFields/{key}", json={"field_name": "x" * 256}))
    assert client.patch("/api/v2/personFields/0000", json={"field_name": "x"}).status_code == 404


def test_metadata_must_name_live_pipelines_and_stages(client) -> None:
    key = new_field(client, "dealFields")["field_code"]
    stage = client.get("/api/v2/stages").json()["data"][0]
    ok = client.patch(f"/api/v2/dealFields/{key}", json={
        "important_fields": {"enabled": True, "stage_ids": [stage["id"]]},
        "required_fields": {"enabled": True, "statuses": {str(stage["pipeline_id"]): ["won"]}},
        "ui_visibility": {"show_in_pipelines": {"show_in_all": False, "pipeline_ids": [stage["pipeline_id"]]}}})
    assert ok.status_code == 200, ok.text
    meta = client.get(f"/api/v2/dealFields/{key}", params={
        "include_fields": "ui_visibility,important_fields,required_fields"}).json()["data"]
    assert meta["important_fields"] == {"enabled": True, "stage_ids": [stage["id"]]}
    assert meta["required_fields"]["statuses"] == {str(stage["pipeline_id"]): ["won"]}
    assert meta["ui_visibility"]["show_in_pipelines"] == {"show_in_all": False, "pipeline_ids": [stage["pipeline_id"]]}
    for bad in ({"important_fields": {"enabled": True, "stage_ids": [987654]}},
                {"required_fields": {"statuses": {"987654": ["lost"]}}},
                {"required_fields": {"statuses": {"main": ["lost"]}}},
                {"ui_visibility": {"show_in_pipelines": {"pipeline_ids": [987654]}}}):
        assert_refused(client.patch(f"/api/v2/dealFields/{key}", json=bad))
    again = client.get(f"/api/v2/dealFields/{key}", params={"include_fields": "important_fields"}).json()["data"]
    assert again["important_fields"] == {"enabled": True, "stage_ids": [stage["id"]]}  # refusals stored nothing


def test_metadata_update_keeps_what_it_does_not_name_and_drops_unknown_keys(client) -> None:
    key = new_field(client, "organizationFields", ui_visibility={"add_visible_flag": True, "x_unknown": 1})["field_code"]
    client.patch(f"/api/v2/organizationFields/{key}", json={
        "ui_visibility": {"show_in_add_person_dialog": {"show": True, "order": 3}}})
    ui = client.get(f"/api/v2/organizationFields/{key}", params={"include_fields": "ui_visibility"}
                    ).json()["data"]["ui_visibility"]
    assert ui["add_visible_flag"] is True and ui["show_in_add_person_dialog"] == {"show": True, "order": 3}
    assert "x_unknown" not in ui


def test_field_changes_survive_a_restart(tmp_path) -> None:
    state = tmp_path / "state.json"
    with SandboxServer(state_path=state, plan="ultimate", seats=5) as sb:
        with httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
            field = new_field(c, "dealFields")
            key, low = field["field_code"], field["options"][0]["id"]
            c.patch(f"/api/v2/dealFields/{key}", json={"field_name": "Renamed"})
            c.patch(f"/api/v2/dealFields/{key}/options", json=[{"id": low, "label": "Routine"}])
            gone = c.post("/api/v2/dealFields", json={"field_name": "Temp", "field_type": "text"}).json()["data"]
            c.delete(f"/api/v2/dealFields/{gone['field_code']}")
    with SandboxServer(state_path=state, plan="ultimate", seats=5) as sb:
        with httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
            one = c.get(f"/api/v2/dealFields/{key}").json()["data"]
            assert one["field_name"] == "Renamed" and one["options"][0]["label"] == "Routine"
            assert c.get(f"/api/v2/dealFields/{gone['field_code']}").status_code == 404


# -- metadata validation against the spec's request schema, property-based --------------------------------
_ANY = st.one_of(st.booleans(), st.integers(-2, 2), st.text(max_size=3), st.none(),
                 st.lists(st.integers(1, 3), max_size=2), st.just({}))


def _flag():
    return st.one_of(st.booleans(), _ANY)


def _meta_strategy(entity: str, pipelines: list[int], stages: list[int]):
    stage_ids = st.one_of(st.lists(st.sampled_from(stages), max_size=2), _ANY)
    dialog = st.one_of(st.fixed_dictionaries({}, optional={"show": _flag(), "order": st.one_of(
        st.integers(0, 5), st.none(), _ANY)}), _ANY)
    ui = {"add_visible_flag": _flag(), "details_visible_flag": _flag(), "x_extra": _ANY}
    required = {"enabled": _flag()}
    if entity == "deal":
        ui["projects_detail_visible_flag"] = _flag()
        ui["show_in_pipelines"] = st.one_of(st.fixed_dictionaries({}, optional={
            "show_in_all": _flag(), "pipeline_ids": st.one_of(st.lists(st.sampled_from(pipelines), max_size=2),
                                                              _ANY)}), _ANY)
        required["stage_ids"] = stage_ids
        required["statuses"] = st.one_of(st.dictionaries(st.sampled_from([str(p) for p in pipelines]), st.one_of(
            st.lists(st.sampled_from(["won", "lost", "open"]), max_size=2), _ANY), max_size=2), _ANY)
    else:
        ui["show_in_add_deal_dialog"] = dialog
        if entity == "organization":
            ui["show_in_add_person_dialog"] = dialog
    return st.fixed_dictionaries({}, optional={
        "ui_visibility": st.one_of(st.fixed_dictionaries({}, optional=ui), _ANY),
        "important_fields": st.one_of(st.fixed_dictionaries({}, optional={"enabled": _flag(),
                                                                            "stage_ids": stage_ids}), _ANY),
        "required_fields": st.one_of(st.fixed_dictionaries({}, optional=required), _ANY)})


@pytest.mark.parametrize("seg,entity", SEGMENTS)
def test_metadata_is_accepted_exactly_when_the_spec_schema_accepts_it(specs, sandbox: SandboxServer, seg,
                                                                      entity) -> None:
    request_schema = specs[V2].convert(specs[V2].doc["paths"][f"/{seg}/{{field_code}}"]["patch"]["requestBody"]
                                       ["content"]["application/json"]["schema"])
    with httpx.Client(base_url=sandbox.base_url, headers={"x-api-token": sandbox.api_token}, timeout=10) as c:
        key = new_field(c, seg)["field_code"]
        pipelines = [p["id"] for p in c.get("/api/v2/pipelines").json()["data"]]
        stages = [s["id"] for s in c.get("/api/v2/stages").json()["data"]]
        outcomes = set()

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(body=_meta_strategy(entity, pipelines, stages))
        def run(body: dict) -> None:
            valid = jsonschema.Draft7Validator(request_schema).is_valid(body)
            resp = send(c, "PATCH", f"/api/v2/{seg}/{key}", json=body)
            outcomes.add(valid)
            if valid:
                assert resp.status_code == 200, (body, resp.text)
            else:
                assert_refused(resp)

        run()
        assert outcomes == {True, False}  # both sides were exercised
