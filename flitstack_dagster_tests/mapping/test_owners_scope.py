from __future__ import annotations

import math

import polars as pl
import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.audit import AccountAudit, PdField, PdUser
from flitstack_dagster.mapping.model import StatusTarget
from flitstack_dagster.mapping.owners import resolve_owners
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.scope import complexity, estimate_requests, pm_occurrences, scope_document

USERS = [PdUser(id=1, name="Admin", email="admin@city.gov", is_admin=True),
         PdUser(id=2, name="Ann", email="Ann@City.gov"),
         PdUser(id=3, name="Gone", email="gone@city.gov", active=False),
         {"id": 4, "name": "Fallback", "email": "fb@city.gov", "active_flag": True}]


def test_owner_matching_trimmed_case_insensitive():
    df = pl.DataFrame({"contact_id": ["C1", "C2", "C3", "C4"], "first_name": ["Ann", "Bob", "G", "N"],
                       "last_name": ["T", "R", "X", None],
                       "email": ["  ANN@city.GOV ", "bob@else.org", "gone@city.gov", None],
                       "role": ["Technician", "Requester", "Technician", "Requester"]})
    r = resolve_owners(df, None, USERS, fallback_email=" FB@city.gov")
    assert r.by_contact() == {"C1": 2}  # resolved by email only; the rest are fallback-owned
    assert [x.contact_id for x in r.unmatched()] == ["C2", "C3", "C4"]
    assert all(x.owner_user_id == 4 and x.match == "fallback" for x in r.unmatched())
    reasons = {x.contact_id: x.reason for x in r.rows}
    assert "no Pipedrive user with email bob@else.org" in reasons["C2"]
    assert "inactive" in reasons["C3"] and "no email" in reasons["C4"]
    assert r.to_polars().height == 4 and r.owner_of("nope") == 4


def test_owner_default_fallback_is_admin_and_bad_fallback_refused(source):
    r = resolve_owners(source, "full-1", USERS)
    assert r.fallback_user_id == 1
    # staged ann@city.gov matches user Ann@City.gov; C2 has no email, cy@city.gov is no user
    assert r.by_contact() == {"C1": 2}
    assert [x.match for x in r.rows] == ["email", "fallback", "fallback"]
    with pytest.raises(UserError, match="not an active Pipedrive user"):
        resolve_owners(source, "full-1", USERS, fallback_email="gone@city.gov")


def test_estimate_arithmetic(source):
    p = profile_source(source, "full-1")
    m = propose_mapping(p)
    est = estimate_requests(p, m, plan="growth", seats=3)
    by = est.by_entity()
    assert by["organization"] == {"records": 2 + 9 + 1, "requests": 12, "tokens": 60}
    assert by["org_relationship"]["tokens"] == 9 * 10
    assert by["person"]["tokens"] == 15 and by["deal"]["tokens"] == 25
    # activities: 2 labor + 1 part + 1 call + PM: weekly 13 + monthly 3 + every 2 weeks 7 + meter 1
    assert pm_occurrences(p, 90) == 13 + 3 + 7 + 1
    assert by["activity"]["requests"] == 2 + 1 + 1 + 24
    # notes: 2 status changes + 1 logged note + 1 PM history + 2 parts notes + 1 long description; 10 tokens
    assert by["note"] == {"records": 7, "requests": 7, "tokens": 70}
    assert by["file"]["requests"] == 3  # the 30 MB file is flagged, not sent
    prov = [r for r in est.rows if r.entity == "provisioning"]
    assert sum(r.tokens for r in prov) == 3 * 10 + 5 + 5 + 20 + len(m.custom_fields()) * 5 + 5 + 6 * 5 + 2 * 10 \
        + 5  # + options for the organization label field
    assert est.daily_budget == 30000 * 2 * 3 and est.usable_daily == 144000
    assert est.days == pytest.approx(est.tokens / 144000)
    assert est.hours == pytest.approx(est.requests / 40 * 2 / 3600)


def test_estimate_with_audit_counts_only_missing(source):
    p = profile_source(source, "full-1")
    m = propose_mapping(p)
    audit = AccountAudit(plan="lite", seats=1, fields={"deal": [PdField(key="a" * 40, name="Novo WO Number",
                                                                         field_type="varchar", custom=True)]})
    est = estimate_requests(p, m, audit)
    fields_row = next(r for r in est.rows if r.what == "custom fields")
    assert fields_row.requests == len(m.custom_fields()) - 1
    assert est.daily_budget == 30000 and est.burst_per_2s == 20


def test_scope_document_and_grade(source):
    p = profile_source(source, "full-1")
    audit = AccountAudit(plan="lite", seats=1, users=[PdUser(id=1, name="A", email="ann@city.gov", is_admin=True)])
    m = propose_mapping(p, audit)
    owners = resolve_owners(source, "full-1", audit.users)
    doc = scope_document(p, m, audit, owners)
    for heading in ("## Inventory", "### Asset hierarchy", "## Custom fields to create vs headroom", "## Owners",
                    "## What will not migrate", "## API requests and token budget"):
        assert heading in doc
    assert "X1 → X2 → X1" in doc and "**does not fit**" in doc  # 33 fields > lite's 30
    assert "| C2 | Bob Req |" in doc  # unmatched contact and who owns their records
    grade, reasons = complexity(p, m, audit, owners, estimate_requests(p, m, audit))
    assert grade == "D" and any("do not fit" in r for r in reasons)
    assert f"**Complexity grade: {grade}**" in doc
    # the proposal report: what was proposed from which evidence, and what the lead decided
    assert "### Value proposals" in doc
    assert "| work_orders.Priority | Urgent | Emergency | 0.92 | Emergency | as proposed |" in doc
    m.status_map["Awaiting Parts"] = StatusTarget(stage="In Progress")
    assert "| work_orders.Status | Awaiting Parts | On Hold | 0.86 | In Progress | by hand |" in scope_document(
        p, m, audit, owners)
    small = AccountAudit(plan="ultimate", seats=10)
    g2, _ = complexity(p, m, small, None, estimate_requests(p, m, small))
    assert g2 < grade  # more room, fewer points
    assert math.isfinite(estimate_requests(p, m, small).days)


def test_fallback_owned_contacts_raise_the_fallback_owner_warning():
    from flitstack_dagster.shaping.common import Owners, owner_lookup

    df = pl.DataFrame({"contact_id": ["C1", "C2"], "first_name": ["Ann", "Bob"], "last_name": ["T", "R"],
                       "email": ["ann@city.gov", "bob@else.org"], "role": ["Technician", "Technician"]})
    r = resolve_owners(df, None, USERS, fallback_email="fb@city.gov")
    owners = Owners.of(r.by_contact(), r.fallback_user_id)  # what the run hands to shaping
    work = pl.DataFrame({"wo": ["W1", "W2", "W3"], "assigned_to_id": ["C1", "C2", None]})
    out = owner_lookup(work, "assigned_to_id", owners)
    assert out["owner_id"].to_list() == [2, 4, 4]
    assert out["_fallback_owner"].to_list() == [False, True, False]  # Bob's work order warns; unassigned does not
