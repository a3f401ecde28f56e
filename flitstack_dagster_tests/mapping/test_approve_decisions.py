"""Approval with the lead's value decisions, record plan and the proposal hash they read: the one domain
function `flitstack mapping approve` and the `approve_mapping` job both call."""

from __future__ import annotations

import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.approval import STALE_PROPOSAL, Override, approve_proposed, check_approval
from flitstack_dagster.mapping.model import RECORD_PLANS
from flitstack_dagster.mapping.review import blocking_values, status_rows, value_tables
from flitstack_dagster.mapping.yamlio import load_mapping


@pytest.fixture
def setup(odd_status_proposal, tmp_path):
    return (*odd_status_proposal, tmp_path)


def _stamp_free(path) -> dict:
    return load_mapping(path).model_dump(mode="json", exclude={"approved_at"})


def test_the_stage_7_proposal_blocks_until_decided(setup):
    profile, proposed, pp, _ = setup
    rows = blocking_values(proposed, profile.value_sets)
    assert [(r["field"], r["source_value"], r["proposed"]) for r in rows] == [("work_orders.Status", "Stage 7", "On Hold")]
    assert rows[0]["confidence"] == 0.3 and rows[0]["reason"]
    stage7 = next(r for r in status_rows(proposed) if r["novo_status"] == "Stage 7")
    assert stage7["stage"] == "On Hold" and stage7["needs_decision"] is True
    assert {"priority", "department"} <= set(value_tables(proposed))


def test_a_status_override_decides_it_and_the_check_passes(setup):
    profile, proposed, pp, tmp = setup
    m = approve_proposed(pp, tmp / "approved.yaml", "dana", proposal_hash=proposed.content_hash(),
                         overrides=[Override("work_orders.Status", "Stage 7", "Completed (won)")])
    assert m.status_map["Stage 7"].stage == "Completed" and m.status_map["Stage 7"].status == "won"
    assert m.record_plan == "complete" and m.profile_hash == profile.profile_hash
    assert check_approval(load_mapping(tmp / "approved.yaml"), proposed, profile) == []


def test_confirming_as_proposed(setup):
    profile, proposed, pp, tmp = setup
    m = approve_proposed(pp, tmp / "approved.yaml", "dana", overrides=[Override("work_orders.Status", "Stage 7")])
    assert m.value_proposals["work_orders.Status"]["Stage 7"].confirmed
    assert check_approval(m, proposed, profile) == []


def test_a_value_override_to_a_new_option_adds_the_option(setup):
    _, _, pp, tmp = setup
    m = approve_proposed(pp, tmp / "approved.yaml", "dana",
                         overrides=[Override("work_orders.Priority", "Urgent", "Critical")])
    assert m.value_maps["work_orders.Priority"]["Urgent"] == "Critical"
    assert "Critical" in m.field("work_orders", "Priority").options


@pytest.mark.parametrize("override, words", [
    (Override("work_orders.Status", "Stage 7", "Waiting"), "'Waiting' is not a stage of the pipeline"),
    (Override("work_orders.Status", "Nope"), "work order status 'Nope' is not in the mapping"),
    (Override("work_orders.Colour", "Red", "Blue"), "'work_orders.Colour' is not a value list of the mapping"),
    (Override("work_orders.Priority", "Nope", "High"), "work_orders.Priority value 'Nope' is not in the mapping"),
])
def test_an_override_naming_nothing_is_refused_and_nothing_written(setup, override, words):
    _, _, pp, tmp = setup
    with pytest.raises(UserError, match=words):
        approve_proposed(pp, tmp / "approved.yaml", "dana", overrides=[override])
    assert not (tmp / "approved.yaml").exists()


def test_a_stale_hash_and_an_unknown_record_plan_are_refused(setup):
    _, proposed, pp, tmp = setup
    with pytest.raises(UserError) as stale:
        approve_proposed(pp, tmp / "approved.yaml", "dana", proposal_hash="0" * 64)
    assert str(stale.value) == STALE_PROPOSAL and "re-read" in STALE_PROPOSAL
    with pytest.raises(UserError, match=f"record plan 'tiny' does not exist: choose one of {', '.join(RECORD_PLANS)}"):
        approve_proposed(pp, tmp / "approved.yaml", "dana", record_plan="tiny")
    assert not (tmp / "approved.yaml").exists()
    with pytest.raises(UserError, match="no proposed mapping"):
        approve_proposed(tmp / "missing.yaml", tmp / "approved.yaml", "dana")


def test_cli_and_domain_function_write_the_same_file(setup, capsys):
    _, proposed, pp, tmp = setup
    h = proposed.content_hash()
    code = cli_main(["mapping", "approve", "--by", "dana", "--proposal", str(pp), "--approved", str(tmp / "cli.yaml"),
                     "--proposal-hash", h, "--record-plan", "complete",
                     "--override", "work_orders.Status", "Stage 7", "In Progress",
                     "--override", "work_orders.Priority", "Urgent", "Critical"])
    assert code == 0, capsys.readouterr()
    approve_proposed(pp, tmp / "job.yaml", "dana", proposal_hash=h, record_plan="complete",
                     overrides=[Override("work_orders.Status", "Stage 7", "In Progress"),
                                Override("work_orders.Priority", "Urgent", "Critical")])
    assert _stamp_free(tmp / "cli.yaml") == _stamp_free(tmp / "job.yaml")
    assert load_mapping(tmp / "cli.yaml").status_map["Stage 7"].stage == "In Progress"


def test_cli_refuses_a_stale_hash_in_one_sentence(setup, capsys):
    _, _, pp, tmp = setup
    code = cli_main(["mapping", "approve", "--by", "dana", "--proposal", str(pp), "--approved", str(tmp / "a.yaml"),
                     "--proposal-hash", "abc"])
    err = capsys.readouterr().err
    assert code == 2 and "the proposal changed since you read it" in err and "Traceback" not in err


def test_a_status_confirmed_by_its_proposed_target_keeps_the_proposals_lost_reason(setup):
    _, proposed, pp, tmp = setup
    lost = next(s for s, t in proposed.status_map.items() if t and t.status == "lost" and t.lost_reason)
    target = proposed.status_map[lost]
    m = approve_proposed(pp, tmp / "approved.yaml", "dana",
                         overrides=[Override("work_orders.Status", lost, f"{target.stage} (lost)")])
    assert m.status_map[lost] == target


def test_re_approving_without_a_plan_keeps_the_approved_files_plan(setup):
    _, _, pp, tmp = setup
    ap = tmp / "approved.yaml"
    approve_proposed(pp, ap, "dana", record_plan="complete")
    assert "record_plan: complete" in ap.read_text()
    assert approve_proposed(pp, ap, "erin").record_plan == "complete"
