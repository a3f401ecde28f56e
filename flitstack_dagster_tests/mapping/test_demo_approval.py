"""The demo approves through the one approval function, deciding exactly the values that block."""

from __future__ import annotations

from flitstack_dagster.core.settings import Paths
from flitstack_dagster.mapping.approval import check_approval
from flitstack_dagster.mapping.demo_approval import DEMO_APPROVER, approve_for_demo
from flitstack_dagster.mapping.store import approved_path, proposed_path
from flitstack_dagster.mapping.yamlio import load_mapping, write_proposal


def _demo_paths(tmp_path, proposed) -> Paths:
    paths = Paths(tmp_path / "data").ensure()
    proposed_path(paths).parent.mkdir(parents=True, exist_ok=True)
    write_proposal(proposed_path(paths), proposed)
    return paths


def test_the_demo_confirms_low_confidence_and_maps_what_is_unmapped(odd_status_proposal, tmp_path):
    profile, proposed, _ = odd_status_proposal
    proposed.value_maps["work_orders.Priority"]["Urgent"] = None  # a pick-list value left unmapped
    paths = _demo_paths(tmp_path, proposed)

    lines = approve_for_demo(paths)

    approved = load_mapping(approved_path(paths))
    assert approved.approved_by == DEMO_APPROVER and approved.proposal_hash == proposed.content_hash()
    assert approved.value_proposals["work_orders.Status"]["Stage 7"].confirmed
    assert approved.value_maps["work_orders.Priority"]["Urgent"] == "Urgent"
    assert "Urgent" in approved.field("work_orders", "Priority").options
    assert check_approval(approved, proposed, profile) == []
    assert lines[0] == f"approved {approved_path(paths)}"
    assert any(line.startswith("tenant status 'Stage 7' -> On Hold confirmed as proposed (confidence 0.30")
               for line in lines), lines
    assert "work_orders.Priority value 'Urgent' -> new option 'Urgent'" in lines


def test_an_unmapped_status_goes_to_on_hold(odd_status_proposal, tmp_path):
    profile, proposed, _ = odd_status_proposal
    proposed.status_map["Stage 7"] = None
    paths = _demo_paths(tmp_path, proposed)

    lines = approve_for_demo(paths)

    approved = load_mapping(approved_path(paths))
    assert approved.status_map["Stage 7"].stage == "On Hold"
    assert "tenant status 'Stage 7' -> stage On Hold" in lines
    assert check_approval(approved, proposed, profile) == []


def test_approving_again_keeps_the_earlier_approval_and_decides_nothing_new(odd_status_proposal, tmp_path):
    _, proposed, _ = odd_status_proposal
    paths = _demo_paths(tmp_path, proposed)
    approve_for_demo(paths)
    assert approve_for_demo(paths) == [f"approved {approved_path(paths)}"]
