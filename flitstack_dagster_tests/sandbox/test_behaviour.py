"""Behaviour of the sandbox over real HTTP: auth, routing, validation, custom fields and their cap,
rate limits, faults, persistence, soft delete, admin channel, CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing

import httpx
import pytest

from flitstack_dagster.sandbox.faults import FaultConfig
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.kit import start_sandbox_cli



def _client(sb: SandboxServer, **kw) -> httpx.Client:
    return httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10, **kw)


# -- auth & routing ---------------------------------------------------------------------------------------
def test_auth_missing_or_wrong_token_is_401(sandbox) -> None:
    for headers in ({}, {"x-api-token": "0" * 40}):
        r = httpx.get(sandbox.base_url + "/api/v2/deals", headers=headers)
        assert r.status_code == 401
        b = r.json()
        assert b["success"] is False and b["error"] and b["data"] is None
    ok = httpx.get(sandbox.base_url + "/api/v2/deals", params={"api_token": sandbox.api_token})
    assert ok.status_code == 200
    assert len(sandbox.api_token) == 40 and int(sandbox.api_token, 16) >= 0


def test_unknown_routes_are_pipedrive_404(client) -> None:
    for method, path in (("GET", "/api/v2/nothing"), ("GET", "/v1/deals"), ("POST", "/api/v2/pipelines/1"),
                         ("GET", "/"), ("PUT", "/api/v2/deals/1")):
        r = client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert r.json()["success"] is False


def test_unknown_route_costs_nothing(sandbox, client) -> None:
    client.get("/api/v2/nothing")
    assert sandbox.usage()["tokens_today"] == 0
    client.get("/api/v2/deals")
    u = sandbox.usage()
    assert u["tokens_today"] == 10 and u["operations"]["getDeals"] == {"count": 1, "tokens": 10}


@pytest.mark.slow
def test_token_costs_follow_the_spec(specs, sandbox, client) -> None:
    org = client.post("/api/v2/organizations", json={"name": "A"}).json()["data"]["id"]
    client.get(f"/api/v2/organizations/{org}")
    client.post("/v1/notes", json={"content": "x", "org_id": org})
    ops = sandbox.usage()["operations"]
    assert ops["addOrganization"]["tokens"] == specs["v2"].token_cost("/organizations", "post")
    assert ops["getOrganization"]["tokens"] == specs["v2"].token_cost("/organizations/{id}", "get")
    assert ops["addNote"]["tokens"] == specs["v1"].token_cost("/notes", "post")


# -- validation ----------------------------------------------------------------------------------------------
def test_required_fields_types_and_references(client) -> None:
    assert client.post("/api/v2/deals", json={}).status_code == 400
    assert client.post("/api/v2/organizations", json={"name": 5}).status_code == 400
    assert client.post("/api/v2/persons", json={"name": "P", "org_id": 999}).status_code == 404
    assert client.post("/api/v2/deals", json={"title": "D", "stage_id": 999}).status_code == 404
    assert client.post("/api/v2/deals", json={"title": "D", "owner_id": 42}).status_code == 400
    assert client.post("/api/v2/activities", json={"type": "no_such_type"}).status_code == 400
    assert client.post("/api/v2/organizations", json={"name": "A", "bogus": 1}).status_code == 400
    r = client.post("/api/v2/organizations", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert client.get("/api/v2/deals", params={"limit": 501}).status_code == 400
    assert client.get("/api/v2/deals", params={"cursor": "garbage!"}).status_code == 400


def test_add_time_allowed_on_orgs_persons_notes_not_on_deals_activities(client) -> None:
    o = client.post("/api/v2/organizations", json={"name": "Old", "add_time": "2019-04-01T10:00:00Z"})
    assert o.json()["data"]["add_time"] == "2019-04-01T10:00:00Z"
    p = client.post("/api/v2/persons", json={"name": "Old P", "add_time": "2019-04-01 10:00:00"})
    assert p.json()["data"]["add_time"] == "2019-04-01T10:00:00Z"
    assert client.post("/api/v2/deals", json={"title": "D", "add_time": "2019-04-01T10:00:00Z"}).status_code == 400
    assert client.post("/api/v2/activities", json={"subject": "A", "add_time": "2019-04-01T10:00:00Z"}).status_code == 400
    users = client.get("/v1/users").json()["data"]
    d = client.post("/api/v2/deals", json={"title": "D", "owner_id": users[1]["id"]})
    assert d.status_code == 200 and d.json()["data"]["owner_id"] == users[1]["id"]


FIELD_CASES = [
    ("enum", "good_enum", "bad", "not an id"),
    ("set", "good_set", "bad", 3),
    ("monetary", {"value": 120.5, "currency": "EUR"}, "bad", 120.5),
    ("date", "2025-02-28", "bad", "2025-02-30"),
    ("double", 12.25, "bad", "12.25"),
    ("varchar", "x" * 255, "bad", "x" * 256),
    ("text", "x" * 5000, "bad", 17),
    ("org", "good_org", "bad", 9999),
    ("people", "good_person", "bad", 9999),
]


@pytest.mark.parametrize("ftype,good,_,bad", FIELD_CASES)
def test_custom_field_values_are_validated_by_type(client, ftype, good, _, bad) -> None:
    body = {"field_name": f"F {ftype}", "field_type": ftype}
    if ftype in ("enum", "set"):
        body["options"] = [{"label": "A"}, {"label": "B"}]
    f = client.post("/api/v2/dealFields", json=body).json()["data"]
    key = f["field_code"]
    if good == "good_enum":
        good = f["options"][1]["id"]
    elif good == "good_set":
        good = [o["id"] for o in f["options"]]
    elif good == "good_org":
        good = client.post("/api/v2/organizations", json={"name": "O"}).json()["data"]["id"]
    elif good == "good_person":
        good = client.post("/api/v2/persons", json={"name": "P"}).json()["data"]["id"]
    r = client.post("/api/v2/deals", json={"title": "ok", "custom_fields": {key: good}})
    assert r.status_code == 200, r.text
    did = r.json()["data"]["id"]
    assert client.get(f"/api/v2/deals/{did}").json()["data"]["custom_fields"][key] == good
    r = client.post("/api/v2/deals", json={"title": "bad", "custom_fields": {key: bad}})
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False
    r = client.patch(f"/api/v2/deals/{did}", json={"custom_fields": {key: bad}})
    assert r.status_code == 400
    assert client.get(f"/api/v2/deals/{did}").json()["data"]["custom_fields"][key] == good
    assert client.post("/api/v2/deals", json={"title": "x", "custom_fields": {"f" * 40: 1}}).status_code == 400


def test_custom_field_keys_differ_between_accounts(tmp_path) -> None:
    keys = []
    for n in (1, 2):
        with SandboxServer(state_path=tmp_path / f"s{n}.json") as sb, _client(sb) as c:
            keys.append(c.post("/api/v2/organizationFields", json={"field_name": "Novo Source ID",
                                                                   "field_type": "varchar"}).json()["data"]["field_code"])
    assert keys[0] != keys[1] and all(len(k) == 40 for k in keys)


def test_custom_field_cap_per_plan_is_403(tmp_path) -> None:
    with SandboxServer(state_path=None, plan="lite", seats=1) as sb, _client(sb) as c:
        for i in range(30):
            if i % 15 == 14:
                sb.advance_clock(2.5)  # stay inside the lite burst window
            r = c.post("/api/v2/personFields" if i % 2 else "/api/v2/dealFields",
                       json={"field_name": f"F{i}", "field_type": "varchar"})
            assert r.status_code == 200, r.text
        sb.advance_clock(2.5)
        r = c.post("/api/v2/organizationFields", json={"field_name": "one too many", "field_type": "text"})
        assert r.status_code == 403
        b = r.json()
        assert b["success"] is False and b["code"] == "feature_capping_custom_fields"
        assert "feature_capping" in b["error"]


def test_curl_create_and_read_organization_with_custom_field(sandbox, client) -> None:
    """As the Pipedrive docs show it: create the field, then POST with custom_fields, then GET it back."""
    key = client.post("/api/v2/organizationFields", json={"field_name": "Novo Account ID", "field_type": "varchar"}
                      ).json()["data"]["field_code"]
    base = sandbox.base_url
    body = json.dumps({"name": "Springfield Power Plant", "custom_fields": {key: "ACC-0042"}})
    out = subprocess.run(["curl", "-sS", "-X", "POST", f"{base}/api/v2/organizations",
                          "-H", "Content-Type: application/json", "-H", f"x-api-token: {sandbox.api_token}",
                          "-d", body], capture_output=True, text=True, timeout=20, check=True)
    created = json.loads(out.stdout)
    assert created["success"] is True and created["data"]["custom_fields"][key] == "ACC-0042"
    oid = created["data"]["id"]
    out = subprocess.run(["curl", "-sS", f"{base}/api/v2/organizations/{oid}", "-H",
                          f"x-api-token: {sandbox.api_token}"], capture_output=True, text=True, timeout=20, check=True)
    got = json.loads(out.stdout)
    assert got["data"]["name"] == "Springfield Power Plant"
    assert got["data"]["custom_fields"] == {key: "ACC-0042"}


# -- pagination, filters, soft delete ------------------------------------------------------------------------
def test_cursor_pagination_ids_and_updated_since(sandbox, client) -> None:
    ids = [client.post("/api/v2/persons", json={"name": f"P{i}"}).json()["data"]["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        b = client.get("/api/v2/persons", params=params).json()
        seen += [p["id"] for p in b["data"]]
        pages += 1
        cursor = b["additional_data"]["next_cursor"]
        if not cursor:
            break
    assert seen == ids and pages == 3
    b = client.get("/api/v2/persons", params={"ids": f"{ids[1]},{ids[3]}"}).json()
    assert [p["id"] for p in b["data"]] == [ids[1], ids[3]]
    sandbox.advance_clock(60)
    client.get("/v1/users/me")  # any request; the clock moved on
    client.patch(f"/api/v2/persons/{ids[2]}", json={"name": "changed"})
    since = client.get(f"/api/v2/persons/{ids[2]}").json()["data"]["update_time"]
    b = client.get("/api/v2/persons", params={"updated_since": since}).json()
    assert [p["id"] for p in b["data"]] == [ids[2]]


def test_soft_delete(sandbox, client) -> None:
    oid = client.post("/api/v2/organizations", json={"name": "Gone"}).json()["data"]["id"]
    keep = client.post("/api/v2/organizations", json={"name": "Kept"}).json()["data"]["id"]
    assert client.delete(f"/api/v2/organizations/{oid}").status_code == 200
    assert client.get(f"/api/v2/organizations/{oid}").status_code == 404
    assert client.patch(f"/api/v2/organizations/{oid}", json={"name": "x"}).status_code == 404
    assert client.delete(f"/api/v2/organizations/{oid}").status_code == 404
    assert [o["id"] for o in client.get("/api/v2/organizations").json()["data"]] == [keep]
    snap = sandbox.snapshot()["records"]["organizations"]
    assert snap[str(oid)]["is_deleted"] is True and snap[str(keep)]["is_deleted"] is False


def test_file_over_25_mb_is_rejected(client) -> None:
    org = client.post("/api/v2/organizations", json={"name": "A"}).json()["data"]["id"]
    big = b"\0" * (25 * 1024 * 1024 + 1)
    r = client.post("/v1/files", files={"file": ("big.bin", big)}, data={"org_id": str(org)})
    assert r.status_code == 413 and r.json()["success"] is False
    assert client.get("/v1/files").json()["data"] == []


# -- rate limits -----------------------------------------------------------------------------------------------
def test_burst_limit_429_with_headers_then_recovers(tmp_path) -> None:
    with SandboxServer(plan="lite", seats=1) as sb, _client(sb) as c:
        codes = []
        for _ in range(20):
            r = c.get("/v1/users/me")
            codes.append(r.status_code)
            assert r.headers["x-ratelimit-limit"] == "20"
        assert codes == [200] * 20 and r.headers["x-ratelimit-remaining"] == "0"
        r = c.get("/v1/users/me")
        assert r.status_code == 429
        assert r.headers["x-ratelimit-remaining"] == "0" and int(r.headers["x-ratelimit-reset"]) >= 1
        assert r.json()["success"] is False and r.json()["error"] == "Request over limit"
        sb.advance_clock(2.1)
        r = c.get("/v1/users/me")
        assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "19"


def test_search_burst_limit_is_10(client, sandbox) -> None:
    key = client.post("/api/v2/dealFields", json={"field_name": "S", "field_type": "varchar"}).json()["data"]["field_code"]
    sandbox.advance_clock(2.1)
    codes = [client.get("/api/v2/itemSearch/field", params={"term": "x", "entity_type": "deal", "field": key}
                        ).status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    assert client.get("/api/v2/deals").status_code == 200  # the general window still has room


def test_daily_budget_exhaustion_until_next_day() -> None:
    with SandboxServer(plan="lite", seats=2) as sb, _client(sb) as c:
        assert sb.usage()["daily_budget"] == 60_000
        sb.set_tokens_spent(60_000 - 11)
        assert c.get("/api/v2/deals").status_code == 200  # 10 tokens: 1 left
        r = c.get("/api/v2/deals")
        assert r.status_code == 429 and r.json()["success"] is False
        assert int(r.headers["x-ratelimit-reset"]) > 0
        assert c.get("/api/v2/deals/1").status_code == 404  # 1 token still fits
        assert c.get("/api/v2/organizations").status_code == 429
        sb.next_day()
        r = c.get("/api/v2/deals")
        assert r.status_code == 200 and sb.usage()["tokens_today"] == 10


INSIGHT_HEADERS = ("x-daily-token-limit", "x-daily-tokens-left")


def _burst_and_budget_answers(sb: SandboxServer, c: httpx.Client) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
    """(a 200, a burst 429, a daily-budget 429) from a lite, 1-seat sandbox."""
    ok = c.get("/api/v2/deals")
    for _ in range(19):
        c.get("/v1/users/me")
    burst = c.get("/v1/users/me")
    sb.advance_clock(2.1)
    sb.set_tokens_spent(30_000 - 5)
    budget = c.get("/api/v2/deals")  # 10 tokens, 5 left
    assert (ok.status_code, burst.status_code, budget.status_code) == (200, 429, 429)
    return ok, burst, budget


def test_documented_signals_only_by_default() -> None:
    with SandboxServer(plan="lite", seats=1) as sb, _client(sb) as c:
        ok, burst, budget = _burst_and_budget_answers(sb, c)
        for r in (ok, burst, budget):
            assert not any(h in r.headers for h in INSIGHT_HEADERS), dict(r.headers)
            for h in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
                assert int(r.headers[h]) >= 0
        assert "x-daily-requests-left" in ok.headers
        for r in (burst, budget):  # Pipedrive's generic error envelope, the same for both limits
            assert r.json() == {"success": False, "error": "Request over limit", "data": None,
                                "additional_data": None, "errorCode": 429, "error_info": r.json()["error_info"]}
            assert "code" not in r.json()
        assert burst.json() == budget.json()
        assert int(burst.headers["retry-after"]) <= 2
        assert budget.headers["x-daily-requests-left"] == "0"
        assert int(budget.headers["retry-after"]) >= sb.clock.seconds_to_next_day()  # until the next UTC day
        assert budget.headers["x-ratelimit-limit"] == "20"  # the burst window as it is, nothing counted


def test_extended_signals_add_the_token_headers_and_codes() -> None:
    with SandboxServer(plan="lite", seats=1, signals="extended") as sb, _client(sb) as c:
        ok, burst, budget = _burst_and_budget_answers(sb, c)
        assert ok.headers["x-daily-token-limit"] == "30000" and ok.headers["x-daily-tokens-left"] == "29990"
        assert budget.headers["x-daily-tokens-left"] == "5" and budget.headers["x-daily-requests-left"] == "0"
        assert burst.json()["code"] == "rate_limit_exceeded"
        assert budget.json()["code"] == "daily_token_budget_exceeded"


def test_unknown_signal_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="documented, extended"):
        SandboxServer(signals="loud")


def test_block_after_repeated_429s() -> None:
    with SandboxServer(plan="lite", seats=1, block_after=5, block_seconds=30) as sb, _client(sb) as c:
        statuses = [c.get("/v1/users/me").status_code for _ in range(26)]
        assert statuses[:20] == [200] * 20 and statuses[20:25] == [429] * 5
        assert statuses[25] == 403
        sb.advance_clock(2.1)
        r = c.get("/v1/users/me")
        assert r.status_code == 403 and r.json()["success"] is False  # still blocked though the window is free
        sb.advance_clock(30)
        assert c.get("/v1/users/me").status_code == 200


# -- faults ----------------------------------------------------------------------------------------------------------
def test_commit_then_fail_creates_record_but_client_sees_failure(sandbox, client) -> None:
    sandbox.set_faults(commit_then_fail_rate=1.0)
    r = client.post("/api/v2/organizations", json={"name": "Ghost"})
    assert r.status_code in (500, 502, 503)
    sandbox.set_faults(commit_then_fail_rate=1.0, commit_then_fail_mode="drop")
    with pytest.raises(httpx.TransportError):
        client.post("/api/v2/organizations", json={"name": "Ghost 2"})
    sandbox.set_faults(commit_then_fail_rate=0.0)
    names = [o["name"] for o in client.get("/api/v2/organizations").json()["data"]]
    assert names == ["Ghost", "Ghost 2"]
    assert sandbox.usage()["faults_injected"]["commit_then_fail"] == 2


def test_error_faults_write_nothing_and_latency_delays(sandbox, client) -> None:
    sandbox.set_faults(error_rate=1.0, seed=7)
    r = client.post("/api/v2/organizations", json={"name": "Never"})
    assert r.status_code in (500, 502, 503) and r.json()["success"] is False
    sandbox.set_faults(error_rate=0.0, drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        client.post("/api/v2/organizations", json={"name": "Never either"})
    sandbox.set_faults(drop_rate=0.0, latency_ms=150)
    t = time.monotonic()
    assert client.get("/api/v2/organizations").json()["data"] == []
    assert time.monotonic() - t >= 0.15
    # the admin channel changes faults too, and rejects nonsense
    r = client.post("/_sandbox/faults", json={"latency_ms": 0, "error_rate": 0.5})
    assert r.status_code == 200 and r.json()["data"]["error_rate"] == 0.5
    assert client.post("/_sandbox/faults", json={"error_rate": 2}).status_code == 400


def test_seeded_faults_are_reproducible(tmp_path) -> None:
    runs = []
    for _ in range(2):
        with SandboxServer(plan="ultimate", faults=FaultConfig(error_rate=0.5, seed=42)) as sb, _client(sb) as c:
            runs.append([c.get("/v1/users/me").status_code for _ in range(20)])
    assert runs[0] == runs[1] and 200 in runs[0] and any(s >= 500 for s in runs[0])


# -- persistence, admin ------------------------------------------------------------------------------------------
def test_state_survives_restart(tmp_path) -> None:
    state = tmp_path / "state.sqlite"
    with SandboxServer(state_path=state, plan="premium") as sb, _client(sb) as c:
        token = sb.api_token
        key = c.post("/api/v2/organizationFields", json={"field_name": "Novo Source ID", "field_type": "varchar"}
                     ).json()["data"]["field_code"]
        oid = c.post("/api/v2/organizations", json={"name": "Persisted", "custom_fields": {key: "asset:1"}}
                     ).json()["data"]["id"]
        fid = c.post("/v1/files", files={"file": ("a.txt", b"payload")}, data={"org_id": str(oid)}).json()["data"]["id"]
        sb.next_day()
        day = sb.usage()["day"]
    with closing(sqlite3.connect(state)) as db:
        assert json.loads(db.execute("SELECT body FROM docs WHERE name = 'account'").fetchone()[0])["api_token"] == token
    with SandboxServer(state_path=state, plan="premium") as sb, _client(sb) as c:
        assert sb.api_token == token
        got = c.get(f"/api/v2/organizations/{oid}").json()["data"]
        assert got["name"] == "Persisted" and got["custom_fields"][key] == "asset:1"
        assert c.get(f"/v1/files/{fid}/download").content == b"payload"
        assert sb.usage()["day"] == day  # the sandbox clock survived too
        new = c.post("/api/v2/organizations", json={"name": "Next"}).json()["data"]["id"]
        assert new == oid + 1


def test_new_account_token_and_reset_gives_fresh_account(monkeypatch) -> None:
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "cd" * 20)  # the server never reads the environment itself
    with SandboxServer(new_account_token="ab" * 20) as sb, _client(sb) as c:
        assert sb.api_token == "ab" * 20
        c.post("/api/v2/organizations", json={"name": "Before"})
        company = sb.snapshot()["account"]["company_id"]
        assert "api_token" not in sb.snapshot()["account"]
        assert c.post("/_sandbox/reset").status_code == 200
        assert c.get("/api/v2/organizations").json()["data"] == []
        assert sb.snapshot()["account"]["company_id"] != company
        assert sb.api_token == "ab" * 20


def test_admin_channel_guarded_usage_snapshot_and_patch(sandbox, client) -> None:
    assert httpx.get(sandbox.base_url + "/_sandbox/usage").status_code == 401
    oid = client.post("/api/v2/organizations", json={"name": "Right"}).json()["data"]["id"]
    r = client.patch(f"/_sandbox/records/organizations/{oid}", json={"name": "Corrupted"})
    assert r.status_code == 200
    assert client.get(f"/api/v2/organizations/{oid}").json()["data"]["name"] == "Corrupted"
    u = client.get("/_sandbox/usage").json()["data"]
    assert u["operations"]["addOrganization"]["count"] == 1 and u["tokens_today"] == 5 + 1
    snap = client.get("/_sandbox/snapshot").json()["data"]
    assert snap["records"]["organizations"][str(oid)]["name"] == "Corrupted"
    c = client.post("/_sandbox/clock", json={"advance": 3600}).json()["data"]
    assert c["offset"] >= 3600
    assert client.patch("/_sandbox/records/organizations/999", json={"name": "x"}).status_code == 404


def test_token_never_logged(tmp_path, capfd) -> None:
    with SandboxServer(faults=FaultConfig(drop_rate=0.0)) as sb, _client(sb) as c:
        c.get("/api/v2/deals", params={"api_token": sb.api_token})
        c.get("/nowhere", params={"api_token": sb.api_token})
        sb.set_faults(drop_rate=1.0)
        with pytest.raises(httpx.TransportError):
            c.get("/api/v2/deals", params={"api_token": sb.api_token})
        token = sb.api_token
    out, err = capfd.readouterr()
    assert token not in out and token not in err


@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["sigint-default", "sigint-ignored-by-parent"])
def test_cli_prints_url_and_token_file_not_token(tmp_path, sigint) -> None:
    """Also when started by a parent that ignores SIGINT (the child inherits that; Ctrl-C must still stop it)."""
    state = tmp_path / "sb" / "state.sqlite"
    env = dict(os.environ, FLITSTACK_DATA_DIR=str(tmp_path / "data"))
    proc, text, url = start_sandbox_cli(state, "--plan", "lite", env=env,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    try:
        assert url, text
        token_file = state.with_name("api_token")
        token = token_file.read_text().strip()
        assert str(token_file) in text and token not in text
        r = httpx.get(url + "/v1/users/me", headers={"x-api-token": token})
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert token not in out + err
    with closing(sqlite3.connect(state)) as db:
        assert json.loads(db.execute("SELECT body FROM docs WHERE name = 'account'").fetchone()[0])["plan"] == "lite"
