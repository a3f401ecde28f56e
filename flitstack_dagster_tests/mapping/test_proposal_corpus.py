"""The value proposals on a labelled corpus of generated tenants (see proposal_corpus.py)."""

from __future__ import annotations

import pytest

from flitstack_dagster.mapping.evidence import StatusEvidence
from flitstack_dagster.mapping.value_proposals import CONFIDENT, match_text, propose_status, STATUS_WORDS
from flitstack_dagster_tests.mapping.proposal_corpus import TENANTS, score


@pytest.mark.slow
def test_corpus_is_right_for_95_percent_and_never_closes_open_work_orders_confidently():
    out = score()
    assert len(out) >= 60 and len({o.tenant for o in out}) >= 3
    assert {o.kind for o in out} >= {"status", "priority", "district", "role", "request", "entry"}
    wrong = [f"{o.tenant}: {o.kind} {o.value!r} → {o.proposed} (expected {o.expected}; {o.reason})"
             for o in out if not o.right]
    assert sum(o.right for o in out) / len(out) >= 0.95, wrong
    assert [o for o in out if o.closed_for_open] == []
    # every proposal explains itself
    assert all(o.reason and 0 <= o.confidence <= 1 for o in out)


def test_misleading_names_are_decided_by_the_data_and_left_for_a_decision():
    t = next(t for t in TENANTS if t.name == "misleading")
    closed_name_open_data = StatusEvidence(work_orders=6, completed=0, histories=6, terminal=6, entries=6)
    target, p = propose_status("Closed for Review", closed_name_open_data)
    assert target.status == "open" and p.confidence < CONFIDENT
    assert "0% of its 6 work order(s) have a completion date" in p.reason and "not closed" in p.reason
    assert any(v == "Closed for Review" for v, _, _ in t.statuses)


def test_completion_dates_and_status_log_make_a_confident_closed_proposal():
    ev = StatusEvidence(work_orders=40, completed=37, histories=40, terminal=39, entries=40)
    target, p = propose_status("Comp.", ev)
    assert target.status == "won" and target.stage == "Completed" and p.confidence >= 0.9
    assert p.reason.startswith("92% of its 40 work order(s) have a completion date and it ends 98% of the status")
    assert p.reason.endswith("→ Completed (won)") and "abbreviation of 'completed'" in p.reason


def test_re_entered_status_goes_back_to_open():
    ev = StatusEvidence(work_orders=10, completed=0, histories=10, terminal=4, entries=10, from_closed=10)
    target, p = propose_status("Re-opened", ev)
    assert target.stage == "Open" and target.status == "open" and p.confidence >= CONFIDENT
    assert "100% of entries come from a closed status" in p.reason


def test_text_matching():
    assert match_text("Terminé", STATUS_WORDS).meaning == "completed"
    assert match_text("En espera", STATUS_WORDS).meaning == "on_hold"
    assert match_text("WIP", STATUS_WORDS).meaning == "in_progress"
    assert match_text("Canc", STATUS_WORDS).meaning == "cancelled"
    assert match_text("Re-opened", STATUS_WORDS).meaning == "reopened"
    assert match_text("Zq 7", STATUS_WORDS).meaning is None


def test_list_values_numbers_are_not_typos_and_unknown_values_become_options():
    from flitstack_dagster.mapping.value_proposals import propose_option

    target, p = propose_option("Ward 99", ["Ward 1", "Ward 9"])
    assert target == "Ward 99" and p.decision == "add option" and "add option 'Ward 99'" in p.reason
    target, p = propose_option("Ward 9 ", ["Ward 1", "Ward 9"])
    assert target == "Ward 9" and p.confidence >= CONFIDENT
    target, p = propose_option("Ward 1 (old)", ["Ward 1", "Ward 9"])
    assert target == "Ward 1" and p.confidence < CONFIDENT  # close, but the lead decides
    assert match_text("Re-opened", STATUS_WORDS).score >= 0.9  # "reopened" is not in conflict with its "opened"
