"""End-to-end tests of the Pipedrive client over real HTTP against the project's sandbox server."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from flitstack_dagster.pipedrive import (
    DailyBudgetSpent,
    NotFound,
    PipedriveClient,
    PipedriveError,
)
from flitstack_dagster.pipedrive.errors import AmbiguousWriteError
from flitstack_dagster.sandbox.server import Clock, FaultConfig, SandboxServer

pytestmark = pytest.mark.slow


def _spend_sandbox_tokens(sb: SandboxServer, tokens_today: int) -> None:
    """Set the sandbox's tokens spent today (the sandbox has no admin route for it; spending 30,000
    tokens for real would take minutes at the burst limit)."""
    with sb.store.lock:
        sb.store.state["usage"]["tokens_today"] = tokens_today
        sb.store.mark_dirty()


def _live_orgs(sb: SandboxServer) -> list[dict]:
    recs = sb.snapshot()["records"]["organizations"]
    return [r for r in recs.values() if not r.get("is_deleted")]


# --- (1) burst: raw load gets 429s; the client gets none and uses >= 90% of the allowance ----------


def test_raw_burst_gets_429_but_client_stays_under_and_uses_the_allowance():
    with SandboxServer(plan="growth", seats=5, faults=FaultConfig(latency_ms=150), block_after=10_000) as sb:
        client = PipedriveClient(sb.base_url, sb.api_token, plan="growth", seats=5, max_concurrency=8)
        org = client.create_organization({"name": "Burst target"})
        sb.advance_clock(3)  # empty the server's 2-s window

        # raw: 100 requests, 25 in flight, no limiter
        url = f"{sb.base_url}/api/v2/organizations/{org.id}"
        with httpx.Client(headers={"x-api-token": sb.api_token}, timeout=10,
                          limits=httpx.Limits(max_connections=25)) as raw, ThreadPoolExecutor(25) as pool:
            statuses = list(pool.map(lambda _: raw.get(url).status_code, range(100)))
        assert statuses.count(429) >= 40, statuses
        assert statuses.count(200) <= 40

        sb.reset()  # clears the server's window and any block
        client = PipedriveClient(sb.base_url, sb.api_token, plan="growth", seats=5, max_concurrency=8)
        org = client.create_organization({"name": "Burst target"})
        sb.advance_clock(3)
        client.limiter.general.slots.clear()  # the server window was emptied by the clock jump
        n = 40 * 4  # four windows' worth
        done: list[float] = []
        lock = threading.Lock()

        def one(_):
            client.get_organization(org.id)
            with lock:
                done.append(time.monotonic())

        client.map_concurrent(one, range(n))
        assert client.rate_limited_responses == 0
        assert client.usage["GET /api/v2/organizations/{id}"]["requests"] == n  # no retries either
        done.sort()
        # steady state, after the first window's burst: the 80 requests from the 41st to the 120th
        # complete over two windows (each window's batch completes together)
        steady = 80 / (done[120] - done[40]) * 2.0
        assert steady >= 0.9 * 40, f"{steady:.1f} requests per 2 s"
        assert steady <= 40.5
        # never more than 40 completions in any 2 s either
        j = 0
        for i, t in enumerate(done):
            while done[j] <= t - 2.0:
                j += 1
            assert i - j + 1 <= 40 + 8  # completions lag sends by the latency; bounded by in-flight
        print(f"client throughput: {steady:.1f} requests / 2 s of 40 ({steady / 40:.0%})")


# --- (2) daily budget ------------------------------------------------------------------------------


def test_spent_daily_budget_stops_the_client_and_next_day_resumes():
    clock = Clock()
    with SandboxServer(plan="lite", seats=1, clock=clock) as sb:
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, wall_clock=clock.now)
        budget = 30_000
        list(client.list_organizations())  # 10 tokens: fine
        _spend_sandbox_tokens(sb, budget - 5)  # other integrations spend the rest: 5 tokens left
        with pytest.raises(DailyBudgetSpent) as err:
            list(client.list_organizations())  # 10 > 5 left: the server answers 429
        msg = str(err.value)
        assert err.value.source == "server"
        assert "daily API token budget is spent" in msg and "HTTP 429" in msg
        assert "This client spent 10 tokens today" in msg
        assert "30,000" in msg and "reserve kept for other integrations: 0 tokens" in msg
        assert "resets at" in msg and "UTC" in msg
        assert sb.usage()["tokens_today"] == budget - 5

        # later requests stop in the client, without another 429 from the server
        sent = client.usage["GET /api/v2/organizations"]["requests"]
        with pytest.raises(DailyBudgetSpent):
            client.get_organization(1)
        assert client.usage["GET /api/v2/organizations"]["requests"] == sent
        assert "GET /api/v2/organizations/{id}" not in client.usage

        sb.next_day()
        orgs = list(client.list_organizations())
        assert orgs == []
        assert sb.usage()["tokens_today"] == 10


def test_reserve_stops_the_client_before_the_server_would():
    """With the sandbox's extended signals the client also sees what the other integrations spent."""
    clock = Clock()
    with SandboxServer(plan="lite", seats=1, clock=clock, signals="extended") as sb:
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, wall_clock=clock.now,
                                 daily_reserve_fraction=0.5)  # keep 15,000 tokens for others
        _spend_sandbox_tokens(sb, 15_000 - 15)  # other integrations spent almost everything else
        list(client.list_organizations())  # the answer says 15,005 tokens are left
        with pytest.raises(DailyBudgetSpent) as err:
            list(client.list_organizations())
        msg = str(err.value)
        assert "Stopped before spending into the reserved part" in msg
        assert "15,000" in msg and "15,005" in msg and "resets at" in msg
        assert sb.usage()["tokens_today"] == 15_000 - 5  # nothing spent into the reserve


def test_reserve_is_kept_by_the_clients_own_count_with_documented_signals():
    clock = Clock()
    with SandboxServer(plan="lite", seats=1, clock=clock) as sb:
        # of 30,000 tokens keep all but 30 for others: three lists (10 tokens each) fit, a fourth does not
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, wall_clock=clock.now,
                                 daily_reserve_fraction=0.999)
        for _ in range(3):
            list(client.list_organizations())
        with pytest.raises(DailyBudgetSpent) as err:
            list(client.list_organizations())
        assert err.value.source == "client"
        assert "Stopped before spending into the reserved part" in str(err.value)
        assert "resets at" in str(err.value)
        assert sb.usage()["tokens_today"] == 30  # the fourth never left
        assert client.rate_limited_responses == 0


def test_burst_429_from_the_sandbox_is_retried_not_taken_for_a_spent_budget():
    clock = Clock()
    with SandboxServer(plan="lite", seats=1, clock=clock) as sb:
        with httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as raw:
            for _ in range(20):  # another process with the same token fills the 2-s window
                raw.get("/v1/users/me")
            refused = raw.get("/v1/users/me")
        assert refused.status_code == 429 and "retry-after" in refused.headers
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, wall_clock=clock.now,
                                 sleep=lambda s: clock.advance(s), clock=clock.monotonic)
        started = clock.monotonic()
        assert list(client.list_organizations()) == []  # answered after waiting the burst out
        assert client.rate_limited_responses == 1
        assert clock.monotonic() - started >= float(refused.headers["retry-after"])
        assert client.limiter.spent_today == 10  # the refused attempt cost nothing


# --- (3) commit-then-fail never duplicates -------------------------------------------------------


@pytest.mark.parametrize("mode", ["error", "drop"])
def test_create_idempotent_under_faults_creates_exactly_n(mode):
    n = 60
    with SandboxServer(plan="growth", seats=5) as sb:
        client = PipedriveClient(sb.base_url, sb.api_token, plan="growth", seats=5, max_concurrency=8,
                                 backoff_base=0.05)
        field = client.create_field("organization", {"field_name": "Novo Source ID", "field_type": "varchar"})
        sb.set_faults(error_rate=0.1, commit_then_fail_rate=0.1, commit_then_fail_mode=mode, seed=11)

        def create(i: int):
            source_id = f"asset:{i:05d}"
            return client.create_idempotent(
                "organization",
                {"name": f"Asset {i}", "custom_fields": {field.field_code: source_id}},
                find_existing=client.finder("organization", field.field_code, source_id),
            )

        results = client.map_concurrent(create, range(n))
        sb.set_faults(error_rate=0.0, commit_then_fail_rate=0.0)

        injected = sb.usage()["faults_injected"]
        assert injected["commit_then_fail"] > 0 and injected["error"] > 0
        orgs = _live_orgs(sb)
        source_ids = [o["custom_fields"].get(field.field_code) for o in orgs]
        assert len(orgs) == n
        assert sorted(source_ids) == [f"asset:{i:05d}" for i in range(n)]
        ids = [rid for rid, _created in results]
        assert sorted(ids) == sorted(o["id"] for o in orgs)
        assert any(not created for _rid, created in results)  # some were found after a lost answer


def test_plain_create_does_not_retry_an_ambiguous_failure():
    with SandboxServer(plan="growth", seats=5) as sb:
        client = PipedriveClient(sb.base_url, sb.api_token, backoff_base=0.01)
        sb.set_faults(commit_then_fail_rate=1.0, commit_then_fail_mode="error")
        with pytest.raises(AmbiguousWriteError):
            client.create_organization({"name": "Once"})
        sb.set_faults(commit_then_fail_rate=0.0)
        assert [o["name"] for o in _live_orgs(sb)] == ["Once"]
        assert client.usage["POST /api/v2/organizations"]["requests"] == 1


def test_safe_operations_retry_through_5xx_and_drops():
    with SandboxServer(plan="growth", seats=5) as sb:
        client = PipedriveClient(sb.base_url, sb.api_token, backoff_base=0.01, max_retries=8)
        org = client.create_organization({"name": "Steady"})
        sb.set_faults(error_rate=0.3, drop_rate=0.2, seed=3)
        for _ in range(20):
            assert client.get_organization(org.id).name == "Steady"
        updated = client.update_organization(org.id, {"name": "Renamed"})
        assert updated.name == "Renamed"
        sb.set_faults(error_rate=0.0, drop_rate=0.0)
        assert client.usage["GET /api/v2/organizations/{id}"]["requests"] > 20  # retries happened


# --- (4) the token never leaks -------------------------------------------------------------------


def test_token_never_appears_in_logs_errors_or_repr(caplog, capsys):
    token = "tok-SECRET-7f3a9c2e-dont-leak"
    wrong = "tok-WRONG-55aa77-dont-leak"
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "flitstack_dagster", "flitstack_dagster.pipedrive"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test
    texts: list[str] = []

    def keep(exc: BaseException) -> None:
        texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])

    with SandboxServer(plan="growth", seats=5, api_token=token) as sb:
        client = PipedriveClient(sb.base_url, token, backoff_base=0.01, max_retries=2)
        texts.extend([repr(client), str(client), str(client.usage), str(client.limiter.snapshot())])
        org = client.create_organization({"name": "Secure"})
        texts.append(org.model_dump_json())
        texts.append(str(client.me()))
        for bad in (
            lambda: client.get_organization(999_999),  # 404
            lambda: client.create_organization({"name": "x", "custom_fields": {"nope": 1}}),  # 400
        ):
            with pytest.raises(PipedriveError) as e:
                bad()
            keep(e.value)
        # faults: drops and 5xx on reads (retried until exhausted) and on a create (ambiguous)
        sb.set_faults(error_rate=0.5, drop_rate=0.5, seed=1)
        for _ in range(3):
            try:
                client.get_organization(org.id)
            except PipedriveError as exc:
                keep(exc)
        with pytest.raises(PipedriveError) as e:
            for _ in range(10):
                client.create_organization({"name": "Flaky"})
        keep(e.value)
        sb.set_faults(error_rate=0.0, drop_rate=0.0)
        # wrong token: 401
        other = PipedriveClient(sb.base_url, wrong)
        with pytest.raises(PipedriveError) as e:
            other.me()
        assert e.value.status == 401
        keep(e.value)
        texts.append(repr(other))
        port = sb.port
    # server gone: connection refused, retried then reported
    gone = PipedriveClient(f"http://127.0.0.1:{port}", token, max_retries=1, backoff_base=0.01)
    with pytest.raises(PipedriveError) as e:
        gone.me()
    keep(e.value)
    assert e.value.status is None

    captured = capsys.readouterr()
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logs or "Pipedrive" in logs  # logging really was captured
    for secret in (token, wrong):
        assert secret not in logs
        assert secret not in captured.out and secret not in captured.err
        for t in texts:
            assert secret not in t
    assert repr(client) == f"PipedriveClient(base_url='{sb.base_url}')"


def test_from_env(monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_BASE_URL", "https://acme.pipedrive.com/api/v2")
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "env-token-123456")
    c = PipedriveClient.from_env(seats=3)
    assert c.base_url == "https://acme.pipedrive.com"
    assert "env-token" not in repr(c)
    assert c.limiter.daily_budget == 30_000 * 2 * 3
    monkeypatch.delenv("PIPEDRIVE_API_TOKEN")
    from flitstack_dagster.core.errors import UserError

    with pytest.raises(UserError, match="PIPEDRIVE_API_TOKEN"):
        PipedriveClient.from_env()


def test_not_found_is_typed():
    with SandboxServer() as sb:
        client = PipedriveClient(sb.base_url, sb.api_token)
        with pytest.raises(NotFound) as e:
            client.get_deal(424242)
        assert e.value.status == 404 and e.value.operation == "GET /api/v2/deals/{id}"
        assert "GET /api/v2/deals/{id}" in str(e.value)


# --- every typed method, against the sandbox's implementation of the same spec paths --------------


def test_every_typed_method_round_trips():
    with SandboxServer(plan="growth", seats=5) as sb:
        c = PipedriveClient(sb.base_url, sb.api_token)
        me = c.me()
        assert me.id in {u.id for u in c.list_users()}

        # fields
        src = c.create_field("organization", {"field_name": "Novo Source ID", "field_type": "varchar"})
        prio = c.create_field("deal", {"field_name": "Novo_Priority__c", "field_type": "enum",
                                       "options": [{"label": "High"}, {"label": "Low"}]})
        role = c.create_field("person", {"field_name": "Novo_Role__c", "field_type": "set",
                                         "options": [{"label": "Technician"}]})
        added = c.add_field_options("person", role.field_code, ["Requester"])
        assert [o.label for o in added] == ["Requester"]
        pf = {f.field_code: f for f in c.list_person_fields()}[role.field_code]
        assert {o.label for o in pf.options} == {"Technician", "Requester"}
        assert prio.field_code in {f.field_code for f in c.list_deal_fields()}
        assert src.field_code in {f.field_code for f in c.list_organization_fields()}
        assert c.list_activity_fields()

        # pipelines & stages
        pipe = c.create_pipeline({"name": "Novo Work Orders"})
        stage = c.create_stage({"name": "New", "pipeline_id": pipe.id})
        assert pipe.id in {p.id for p in c.list_pipelines()}
        assert [s.id for s in c.list_stages(pipe.id)] == [stage.id]

        # organizations, persons, deals, activities
        org = c.create_organization({"name": "Plant", "add_time": "2020-05-01T08:00:00Z",
                                     "custom_fields": {src.field_code: "asset:00042"}})
        assert c.find_id_by_field("organization", src.field_code, "asset:00042") == org.id
        assert c.find_id_by_field("organization", src.field_code, "asset:99999") is None
        child = c.create_organization({"name": "Pump"})
        person = c.create_person({"name": "Dana Tech", "org_id": org.id,
                                  "emails": [{"value": "dana@example.com", "primary": True}]})
        deal = c.create_deal({"title": "WO-004211 · Fix pump", "org_id": org.id, "person_id": person.id,
                              "stage_id": stage.id, "custom_fields": {prio.field_code: prio.option_id("High")}})
        assert deal.pipeline_id == pipe.id
        act = c.create_activity({"subject": "Labor", "deal_id": deal.id, "due_date": "2024-03-01", "done": True})
        assert c.get_deal(deal.id).custom_fields[prio.field_code] == prio.option_id("High")
        assert c.update_person(person.id, {"name": "Dana T."}).name == "Dana T."
        assert c.update_deal(deal.id, {"status": "won"}).status == "won"
        assert c.update_activity(act.id, {"note": "2 h"}).note == "2 h"
        assert c.get_person(person.id).org_id == org.id
        assert c.get_activity(act.id).deal_id == deal.id
        assert [p.id for p in c.list_persons(org_id=org.id)] == [person.id]
        assert [d.id for d in c.list_deals(ids=[deal.id])] == [deal.id]
        assert [a.id for a in c.list_activities(deal_id=deal.id)] == [act.id]
        assert {o.id for o in c.list_organizations(updated_since="2000-01-01T00:00:00Z")} == {org.id, child.id}

        # v1: activity types, notes, files, relationships
        at = c.create_activity_type({"name": "Work Order Labor", "icon_key": "cogs"})
        assert at.key_string in {t.key_string for t in c.list_activity_types()}
        note = c.create_note({"content": "Status New → Open", "deal_id": deal.id, "add_time": "2021-02-03 04:05:06"})
        assert c.get_note(note.id).add_time == "2021-02-03 04:05:06"
        assert c.update_note(note.id, {"content": "edited"}).content == "edited"
        assert [n.id for n in c.list_notes(deal_id=deal.id)] == [note.id]
        f, fid, created = c.upload_file(b"%PDF-1.4 demo", file_name="wo.pdf", content_type="application/pdf",
                                        deal_id=deal.id)
        assert created and f is not None and f.deal_id == deal.id
        assert c.get_file(fid).file_name == "wo.pdf"
        assert c.download_file(fid) == b"%PDF-1.4 demo"
        assert fid in {x.id for x in c.list_files()}
        rel = c.create_organization_relationship({"type": "parent", "rel_owner_org_id": org.id,
                                                  "rel_linked_org_id": child.id})
        rels = c.list_organization_relationships(child.id)
        assert [(r.owner_org_id, r.linked_org_id) for r in rels] == [(org.id, child.id)]

        # deletes
        c.delete_organization_relationship(rel.id)
        c.delete_file(fid)
        c.delete_note(note.id)
        c.delete_activity(act.id)
        c.delete_deal(deal.id)
        c.delete_person(person.id)
        c.delete_organization(child.id)
        with pytest.raises(NotFound):
            c.get_organization(child.id)
        assert c.list_organization_relationships(org.id) == []

        # the client's token count matches what the sandbox charged
        assert c.tokens_spent == sb.usage()["tokens_today"]
