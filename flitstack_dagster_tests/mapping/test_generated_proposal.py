"""A generated, messy bundle (tenant statuses, values outside the documented lists) is approved after
one review pass: the proposal covers every value seen, and the lead only decides what it flags."""

from __future__ import annotations

import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.mapping.approval import approve, check_approval
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.value_proposals import CONFIDENT
from flitstack_dagster.mapping.yamlio import decisions_needed, load_mapping, needs_decision, write_mapping, write_proposal
from flitstack_dagster.shaping.checks import unmapped_values
from flitstack_dagster.staging.frames import read_staged
from flitstack_dagster_tests.reliability import kit

pytestmark = pytest.mark.slow


def test_messy_generated_bundle_is_approved_after_one_review_pass(tmp_path):
    paths, run_key = kit.staged_run(tmp_path, 150, 7, 0.08)
    with duck.connect(paths.duckdb) as con:
        profile = profile_source(con, run_key)
        inputs = read_staged(con, run_key)
    proposal = propose_mapping(profile)
    pp = write_proposal(tmp_path / "proposed.yaml", proposal)
    statuses = profile.value_sets["work_orders.Status"]
    assert set(statuses) - {"New", "Open", "Scheduled", "In Progress", "On Hold", "Reassigned", "Completed", "Closed",
                            "Cancelled"}, "the bundle should hold tenant statuses"
    assert proposal.unmapped() == []  # every value seen is proposed
    for key, seen in profile.value_sets.items():  # ... with its evidence, those outside the declared choices too
        if key in proposal.value_maps or key == "work_orders.Status":
            assert set(seen) <= set(proposal.value_proposals.get(key, {})), key
    assert {"Text Message", "Visit", "Fax"} & set(profile.value_sets["notes.Entry Type"]), "the mess adds entry types"
    for tenant_status in ("Awaiting Parts", "Pending Approval"):
        p = proposal.value_proposals["work_orders.Status"][tenant_status]
        assert p.proposed == "On Hold" and p.confidence >= CONFIDENT, p
    for s, p in proposal.value_proposals["work_orders.Status"].items():
        ev = profile.status_evidence[s]
        if p.confidence < 1.0 and (ev.completed_share or 0) < 0.5 and p.proposed.endswith("(won)"):
            assert p.confidence < CONFIDENT, (s, p)  # never a confident won stage for open work orders
    # the lead approves, reads the flagged values once and confirms them
    ap = tmp_path / "approved.yaml"
    approve(pp, ap, "lee", profile.profile_hash)
    flagged = decisions_needed(load_mapping(ap), profile.value_sets)
    m = load_mapping(ap)
    for key, props in m.value_proposals.items():
        for v, p in props.items():
            if needs_decision(m, key, v) is not None:
                p.confirmed = True
    write_mapping(ap, m, "reviewed once")
    assert check_approval(load_mapping(ap), proposal, profile) == []
    assert unmapped_values(inputs, load_mapping(ap)) == []  # shaping finds nothing left unmapped either
    assert len(flagged) < len([v for vs in profile.value_sets.values() for v in vs])  # most values need no decision
