"""What the sandbox refuses the way Pipedrive does (a 400 in Pipedrive's error shape, nothing stored),
what it answers when it has a bug (a logged 500, never a hidden one), the null keys it sends and its
cursors, all over real HTTP."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from flitstack_dagster.sandbox.app import Reply
from flitstack_dagster.sandbox.body import MAX_DEPTH, MAX_JSON_BYTES


def nested(depth: int) -> str:
    return "[" * (depth - 1) + "{}" + "]" * (depth - 1)


def assert_refused(resp, status: int = 400) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["data"] is None and body["errorCode"] == status
    assert isinstance(body["error"], str) and body["error"]
    return body


@pytest.mark.parametrize("path,raw", [
    ("/api/v2/deals", '{"title": "WO-1", "value": NaN}'),
    ("/api/v2/deals", '{"title": "WO-1", "value": Infinity}'),
    ("/api/v2/deals", '{"title": "WO-1", "value": -Infinity}'),
    ("/api/v2/deals", '{"title": "WO-1", "value": 1e999}'),
    ("/api/v2/deals", '{"title": "WO-1", "owner_id": 18446744073709551616}'),
    ("/api/v2/deals", '{"title": "WO-1", "value": ' + "9" * 5000 + "}"),
    ("/api/v2/deals", '{"title": "WO-1", "close_time": "9999-12-31T23:59:59-01:00"}'),
    ("/api/v2/deals", '{"title": "WO-1", "expected_close_date": "2024-02-30"}'),
    ("/api/v2/organizations", '{"name": "Acme", "add_time": "0001-01-01T00:00:00+01:00"}'),
    ("/api/v2/organizations", '{"name": "Acme", "add_time": "2024-13-01T00:00:00Z"}'),
    ("/api/v2/activities", '{"subject": "Labor", "due_time": "25:00"}'),
    ("/api/v2/activities", '{"subject": "Labor", "duration": "01:75"}'),
    ("/api/v2/activities", '{"subject": "Labor", "participants": [' + nested(MAX_DEPTH - 1) + "]}"),
    ("/api/v2/activities", '{"subject": "Labor", "participants": ' + nested(20_000) + "}"),
    ("/api/v2/organizations", '{"name": "Acme", "label_ids": [' + nested(200_000) + "]}"),
    ("/api/v2/organizations", '{"name": "' + "x" * (MAX_JSON_BYTES + 1) + '"}'),
    ("/api/v2/organizations", '{"name": "Acme"'),
    ("/v1/notes", '{"content": "x", "org_id": "9' + "9" * 30 + '"}'),
    ("/v1/notes", '{"content": "x", "org_id": 1, "add_time": "10000-01-01 00:00:00"}'),
])
def test_refused_bodies_are_400s_and_store_nothing(sandbox, client, path, raw) -> None:
    if path == "/v1/notes":
        client.post("/api/v2/organizations", json={"name": "Acme"})
    before = json.dumps(sandbox.snapshot()["records"], sort_keys=True)
    resp = client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
    assert_refused(resp)
    assert json.dumps(sandbox.snapshot()["records"], sort_keys=True) == before
    # and the account keeps answering every list
    for seg in ("deals", "organizations", "activities"):
        assert client.get(f"/api/v2/{seg}").status_code == 200


@pytest.mark.parametrize("ctype,raw", [
    ("multipart/form-data", b"garbage"),
    ("multipart/form-data; boundary=xx", b"--xx\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--xx--"),
])
def test_malformed_uploads_are_400s(sandbox, client, ctype, raw) -> None:
    client.post("/api/v2/deals", json={"title": "WO-1"})
    assert_refused(client.post("/v1/files", content=raw, headers={"content-type": ctype}, params={"deal_id": 1}))
    assert sandbox.snapshot()["records"]["files"] == {}


def test_nesting_up_to_the_limit_is_not_refused_for_its_depth(client) -> None:
    ok = client.post("/api/v2/activities", json={"subject": "Labor", "participants": [{"person_id": 1}]})
    assert ok.status_code == 200, ok.text
    deep = '{"subject": "Labor", "participants": [' + nested(MAX_DEPTH - 2) + "]}"  # MAX_DEPTH levels
    resp = client.post("/api/v2/activities", content=deep.encode(), headers={"content-type": "application/json"})
    assert "nested" not in resp.text


def test_custom_range_values_must_be_real_dates_and_times(client) -> None:
    key = client.post("/api/v2/dealFields", json={"field_name": "Window", "field_type": "timerange"}
                      ).json()["data"]["field_code"]
    bad = client.post("/api/v2/deals", json={"title": "WO-1", "custom_fields": {key: {"start": "08:00",
                                                                                       "end": "24:30"}}})
    assert_refused(bad)
    good = client.post("/api/v2/deals", json={"title": "WO-1", "custom_fields": {key: {"start": "08:00",
                                                                                        "end": "16:30"}}})
    assert good.json()["data"]["custom_fields"][key] == {"start": "08:00", "end": "16:30"}


def test_an_announced_oversized_body_is_refused_before_it_is_read(sandbox) -> None:
    import socket

    with socket.create_connection((sandbox.host, sandbox.port), timeout=10) as s:
        s.sendall(b"POST /api/v2/organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"x-api-token: {sandbox.api_token}\r\nContent-Length: {MAX_JSON_BYTES * 4}\r\n\r\n".encode()
                  + b'{"name": "')
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 400"), head
    assert sandbox.snapshot()["records"]["organizations"] == {}


def test_the_admin_channel_refuses_nan_too(sandbox, client) -> None:
    oid = client.post("/api/v2/organizations", json={"name": "Acme"}).json()["data"]["id"]
    for path, raw in ((f"/_sandbox/records/organizations/{oid}", '{"name": NaN}'),
                      ("/_sandbox/clock", '{"advance": Infinity}')):
        r = client.request("PATCH" if "records" in path else "POST", path, content=raw.encode())
        assert_refused(r)
    assert client.get("/api/v2/organizations").json()["data"][0]["name"] == "Acme"


def test_an_id_no_database_holds_is_a_404_and_writes_go_on(client) -> None:
    huge = str(2**70)
    for method in ("GET", "PATCH", "DELETE"):
        resp = client.request(method, f"/api/v2/deals/{huge}", json={"title": "x"} if method == "PATCH" else None)
        assert_refused(resp, 404)
    assert_refused(client.put(f"/v1/notes/{huge}", json={"content": "x"}), 404)
    assert client.post("/api/v2/deals", json={"title": "WO-1"}).status_code == 200
    assert [d["title"] for d in client.get("/api/v2/deals").json()["data"]] == ["WO-1"]


def test_a_bug_in_a_handler_is_a_logged_500_in_pipedrives_shape(sandbox, client, caplog) -> None:
    def broken(ctx) -> Reply:
        raise KeyError("a bug")

    sandbox.sandbox.router.add("GET", "/api/v2/broken", broken)
    with caplog.at_level(logging.ERROR, logger="flitstack.sandbox"):
        resp = client.get("/api/v2/broken")
    assert_refused(resp, 500)
    assert any("sandbox bug" in r.getMessage() and r.exc_info for r in caplog.records)
    assert sandbox.api_token not in caplog.text
    assert client.get("/api/v2/deals").status_code == 200


# -- nulls ------------------------------------------------------------------------------------------------
def test_unset_keys_are_sent_as_null(client) -> None:
    deal = client.post("/api/v2/deals", json={"title": "WO-1"}).json()["data"]
    for k in ("person_id", "org_id", "won_time", "lost_time", "expected_close_date", "probability"):
        assert k in deal and deal[k] is None, k
    person = client.get("/api/v2/persons/" + str(client.post("/api/v2/persons", json={"name": "Dana"}
                                                              ).json()["data"]["id"])).json()["data"]
    for k in ("org_id", "picture_id", "birthday", "job_title", "postal_address"):
        assert k in person and person[k] is None, k
    act = client.get("/api/v2/activities").json()["data"]
    assert act == []
    act = client.post("/api/v2/activities", json={"subject": "Labor"}).json()["data"]
    for k in ("deal_id", "due_date", "due_time", "location", "conference_meeting_url"):
        assert k in act and act[k] is None, k
    note = client.post("/v1/notes", json={"content": "x", "deal_id": deal["id"]}).json()["data"]
    for k in ("org_id", "person_id", "lead_id", "organization", "person"):
        assert k in note and note[k] is None, k


# -- cursors ----------------------------------------------------------------------------------------------
def _ids_by_pages(client, path: str, limit: int, between_pages=None, **params) -> list[int]:
    seen, cursor = [], None
    while True:
        q = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        b = client.get(path, params=q).json()
        seen += [r["id"] for r in b["data"]]
        cursor = b["additional_data"]["next_cursor"]
        if cursor is None:
            return seen
        if between_pages:
            between_pages(seen)


def test_cursor_skips_nothing_when_records_are_deleted_between_pages(client) -> None:
    ids = [client.post("/api/v2/deals", json={"title": f"WO-{n}"}).json()["data"]["id"] for n in range(10)]
    deleted: list[int] = []

    def delete_seen(seen: list[int]) -> None:  # another client deletes what this one already read
        for rid in seen:
            if rid not in deleted:
                assert client.delete(f"/api/v2/deals/{rid}").status_code == 200
                deleted.append(rid)

    assert _ids_by_pages(client, "/api/v2/deals", 3, delete_seen) == ids


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_cursor_survives_the_deletion_of_the_last_record_seen(client, direction) -> None:
    ids = [client.post("/api/v2/organizations", json={"name": f"Org {n}"}).json()["data"]["id"] for n in range(7)]
    expected = ids if direction == "asc" else ids[::-1]
    first = client.get("/api/v2/organizations", params={"limit": 2, "sort_direction": direction}).json()
    assert [r["id"] for r in first["data"]] == expected[:2]
    client.delete(f"/api/v2/organizations/{expected[1]}")
    rest = client.get("/api/v2/organizations", params={
        "limit": 100, "sort_direction": direction, "cursor": first["additional_data"]["next_cursor"]}).json()
    assert [r["id"] for r in rest["data"]] == expected[2:]


def test_cursors_are_opaque_and_checked(client) -> None:
    for n in range(3):
        client.post("/api/v2/deals", json={"title": f"WO-{n}"})
    page = client.get("/api/v2/deals", params={"limit": 1, "sort_by": "update_time"}).json()
    cursor = page["additional_data"]["next_cursor"]
    assert cursor and "WO" not in cursor
    assert_refused(client.get("/api/v2/deals", params={"cursor": cursor}))  # made for another sort order
    assert_refused(client.get("/api/v2/deals", params={"cursor": "not a cursor"}))
    offset = base64.urlsafe_b64encode(json.dumps({"o": 1}).encode()).decode()
    assert_refused(client.get("/api/v2/deals", params={"cursor": offset}))
