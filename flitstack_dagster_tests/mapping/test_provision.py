"""Provisioning and the account audit against the local sandbox, over HTTP."""

from __future__ import annotations

import json

import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.audit import audit_account, count_pages
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.provision import field_registry, provision_schema
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.sandbox.server import SandboxServer

CREATE_OPS = ("addDealField", "addPersonField", "addOrganizationField", "addPipeline", "addStage",
              "addActivityType", "addDealFieldOptions", "addPersonFieldOptions")


def _creates(server) -> dict[str, int]:
    ops = server.usage()["operations"]
    out = {}
    for k in CREATE_OPS:
        v = ops.get(k)
        out[k] = (v.get("requests", v.get("count", 0)) if isinstance(v, dict) else int(v or 0))
    return out


@pytest.fixture
def sandbox():
    with SandboxServer(plan="growth", seats=3) as s:
        c = PipedriveClient(s.base_url, s.api_token, plan="growth", seats=3)
        yield s, c
        c.close()


def test_audit_reads_the_account(sandbox, source):
    _s, c = sandbox
    c.create_field("deal", {"field_name": "Council District", "field_type": "enum", "options": [{"label": "North"}]})
    a = audit_account(c)
    assert a.errors == []
    assert a.plan == "growth" and a.seats == 3 and a.daily_token_budget == 30000 * 2 * 3
    assert a.custom_field_cap == 100 and a.custom_field_count == 1 and a.headroom == 99
    assert a.users and all(u.email for u in a.users) and a.admin() is not None
    assert a.pipelines and a.pipelines[0].stages
    assert a.find_field("deal", "council district").options[0].label == "North"
    assert a.find_field("deal", "title").custom is False
    assert a.record_counts == {"organizations": 0, "persons": 0, "deals": 0, "activities": 0}
    assert a.activity_type("call") is not None


@pytest.mark.slow
def test_a_deltas_audit_counts_one_page_of_an_account_the_earlier_runs_filled():
    with SandboxServer(plan="ultimate", seats=5) as s, PipedriveClient(s.base_url, s.api_token) as c:
        c.map_concurrent(lambda i: c.create_organization({"name": f"Account {i}"}), range(501))
        before = s.usage()["operations"].get("getOrganizations", {}).get("count", 0)
        full = audit_account(c, max_pages=count_pages("full"))
        delta = audit_account(c, max_pages=count_pages("delta"))
        pages = s.usage()["operations"]["getOrganizations"]["count"] - before
    assert (full.record_counts["organizations"], full.record_counts_capped["organizations"]) == (501, False)
    assert (delta.record_counts["organizations"], delta.record_counts_capped["organizations"]) == (500, True)
    assert pages == 2 + 1  # the full run's count pages on, the delta's stops at "500 or more"


@pytest.mark.slow
def test_provision_creates_then_is_idempotent(sandbox, source):
    s, c = sandbox
    profile = profile_source(source, "full-1")
    c.create_field("deal", {"field_name": "Council District", "field_type": "enum", "options": [{"label": "North"}]})
    m = propose_mapping(profile, audit_account(c))
    before = _creates(s)
    r1 = provision_schema(c, m, source)
    after1 = _creates(s)
    assert r1.created_anything
    assert "deal.Novo_Priority__c" in r1.created_fields and "deal.Council District" not in r1.created_fields
    assert r1.added_options["deal.Council District"] == ["South", "East", "Downtown"]
    assert r1.created_pipeline == "Novo Work Orders"
    assert r1.created_stages == ["New", "Open", "Scheduled", "In Progress", "On Hold", "Completed"]
    assert r1.created_activity_types == ["Work Order Labor", "Work Order Parts"]
    assert after1["addDealField"] - before["addDealField"] == sum(1 for f in r1.created_fields if f.startswith("deal."))
    # the registry has the account's keys and option ids
    reg = field_registry(source)
    pr = reg[("deal", "Novo_Priority__c")]
    assert len(pr["key"]) == 40 and set(pr["options"]) == {"Emergency", "High", "Medium", "Low"}
    assert all(isinstance(i, int) for i in pr["options"].values())
    snap = s.snapshot()
    keys = {f["field_code"]: f for f in snap["fields"]["deal"]}
    assert keys[pr["key"]]["field_name"] == "Novo_Priority__c" and keys[pr["key"]]["field_type"] == "enum"
    stages = source.execute("SELECT count(*) FROM meta.pipeline_registry WHERE kind = 'stage'").fetchone()[0]
    assert stages == 6

    # second run: nothing created, compared on the sandbox's own counters
    r2 = provision_schema(c, m, source)
    assert not r2.created_anything and r2.created_fields == [] and r2.added_options == {}
    assert _creates(s) == after1
    assert len(s.snapshot()["fields"]["deal"]) == len(snap["fields"]["deal"])

    # a field renamed in Pipedrive is still found through the registry's key
    with s.store.lock:
        for f in s.sandbox.state["fields"]["deal"]:
            if f["field_code"] == pr["key"]:
                f["field_name"] = "Priority (renamed by admin)"
    r3 = provision_schema(c, m, source)
    assert r3.created_fields == [] and _creates(s) == after1


def test_headroom_refusal_creates_nothing(source):
    with SandboxServer(plan="lite", seats=1) as s:
        with PipedriveClient(s.base_url, s.api_token, plan="lite", seats=1) as c:
            m = propose_mapping(profile_source(source, "full-1"))
            assert len(m.custom_fields()) > 30
            before = _creates(s)
            fields_before = json.dumps(s.snapshot()["fields"], sort_keys=True)
            with pytest.raises(UserError, match=r"lite plan allows 30 .* already has 0 \(headroom 30\)"):
                provision_schema(c, m, source)
            assert _creates(s) == before
            assert json.dumps(s.snapshot()["fields"], sort_keys=True) == fields_before
            assert source.execute("SELECT count(*) FROM meta.pipeline_registry").fetchone()[0] == 0


def test_type_conflict_refused(sandbox, source):
    s, c = sandbox
    c.create_field("deal", {"field_name": "Novo_Priority__c", "field_type": "varchar"})
    m = propose_mapping(profile_source(source, "full-1"))  # proposed without the audit: no rename
    before = _creates(s)
    with pytest.raises(UserError, match="Novo_Priority__c.*varchar in Pipedrive but the mapping needs enum"):
        provision_schema(c, m, source)
    assert _creates(s) == before


@pytest.mark.parametrize("record_plan, types", [
    ("complete", ["Work Order Labor", "Work Order Parts"]),
    ("balanced", ["Work Order Labor"]),  # parts lines are timeline lines
    ("compact", []),  # labor and parts lines are deal fields: no activity type of theirs
])
def test_provision_creates_only_the_activity_types_the_record_plan_uses(sandbox, source, record_plan, types):
    s, c = sandbox
    m = propose_mapping(profile_source(source, "full-1"), audit_account(c)).model_copy(update={"record_plan": record_plan})
    before = _creates(s)["addActivityType"]
    r = provision_schema(c, m, source)
    assert r.created_activity_types == types
    assert _creates(s)["addActivityType"] - before == len(types)
    named = {n for (n,) in source.execute("SELECT name FROM meta.pipeline_registry WHERE kind = 'activity_type'").fetchall()}
    assert named.isdisjoint({"Work Order Labor", "Work Order Parts"} - set(types))


@pytest.mark.slow
def test_provisioning_trusts_the_runs_audit_only_to_skip_reading_again(sandbox, source):
    """Once everything exists, the run's audit spares provisioning its reads; an audit taken before the
    fields existed is not trusted: the account is read again and nothing is created twice."""
    s, c = sandbox
    m = propose_mapping(profile_source(source, "full-1"), audit_account(c))
    stale = audit_account(c)
    provision_schema(c, m, source)
    def reads() -> int:
        return sum(v.get("requests", v.get("count", 0)) for k, v in s.usage()["operations"].items() if k.startswith("get"))

    before_creates, before_reads = _creates(s), reads()
    again = provision_schema(c, m, source, audit=stale)  # says everything is missing: read again, nothing made
    assert not again.created_anything and _creates(s) == before_creates and reads() > before_reads

    fresh = audit_account(c)
    before_reads = reads()
    r = provision_schema(c, m, source, audit=fresh)
    assert not r.created_anything and _creates(s) == before_creates
    assert reads() - before_reads <= 1  # at most the account's identity, no field, pipeline or type list
    assert {n for (n,) in source.execute("SELECT name FROM meta.pipeline_registry WHERE kind = 'activity_type'")
            .fetchall()} >= {"Work Order Labor", "Work Order Parts"}  # the types are recorded from the audit too

    elsewhere = fresh.model_copy(update={"account": "another-company"})  # the settings changed since the audit
    before_reads = reads()
    provision_schema(c, m, source, audit=elsewhere)
    assert reads() - before_reads > 1  # its fields are not this account's: read again
