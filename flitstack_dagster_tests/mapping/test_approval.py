from __future__ import annotations

import argparse

import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.cli import mapping as command
from flitstack_dagster.mapping.approval import approve, check_approval, require_approval
from flitstack_dagster.mapping.model import StatusTarget
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.yamlio import dump_mapping, load_mapping, mapping_markdown, write_mapping
from flitstack_dagster_tests.mapping.conftest import stage


@pytest.fixture
def setup(source, odd_status_proposal, tmp_path):
    return (source, *odd_status_proposal, tmp_path / "approved.yaml")


def _fill_unmapped(path):
    """What a user does in approved.yaml: decide the one low-confidence proposal (the "Stage 7" spelling)."""
    m = load_mapping(path)
    m.value_proposals["work_orders.Status"]["Stage 7"].confirmed = True
    write_mapping(path, m, "edited by the user")


def test_missing_approval(setup):
    _, profile, proposed, _, _ = setup
    problems = check_approval(None, proposed, profile)
    assert len(problems) == 1 and "no approved mapping" in problems[0] and "flitstack mapping approve" in problems[0]
    copy = proposed.model_copy(deep=True)  # copied but never approved
    assert any("not approved yet" in p for p in check_approval(copy, proposed, profile))


@pytest.mark.slow
def test_low_confidence_proposals_need_a_decision(setup):
    _, profile, proposed, pp, ap = setup
    m = approve(pp, ap, "dana", profile.profile_hash)
    assert m.approved_by == "dana" and m.proposal_hash == proposed.content_hash()
    assert m.profile_hash == profile.profile_hash and m.approved_at is not None
    problems = check_approval(load_mapping(ap), proposed, profile)
    # everything seen is proposed (tenant status, out-of-list values, unknown department): only the
    # proposal below the confidence threshold waits for the lead
    assert len(problems) == 1, problems
    assert "work order status 'Stage 7' is proposed → On Hold with confidence 0.30" in problems[0]
    assert "confirmed: true" in problems[0]
    approved = load_mapping(ap)
    assert "Stage 7: {stage: On Hold, status: open}  # DECIDE" in dump_mapping(approved)
    assert "## Needs your decision" in mapping_markdown(approved) and "**0.30 — decide**" in mapping_markdown(approved)
    with pytest.raises(UserError, match="Stage 7"):
        require_approval(load_mapping(ap), proposed, profile)


def test_changing_a_low_confidence_target_is_a_decision(setup):
    _, profile, proposed, pp, ap = setup
    approve(pp, ap, "dana", profile.profile_hash)
    m = load_mapping(ap)
    m.status_map["Stage 7"] = StatusTarget(stage="In Progress")  # the lead decides otherwise
    assert check_approval(m, proposed, profile) == []


def test_unmapped_values_block_with_exact_list(setup):
    _, profile, proposed, pp, ap = setup
    approve(pp, ap, "dana", profile.profile_hash)
    _fill_unmapped(ap)
    m = load_mapping(ap)
    m.status_map["Awaiting Parts"] = None  # a lead clearing a proposal
    m.value_maps["work_orders.Priority"]["Urgent"] = None
    problems = check_approval(m, proposed, profile)
    assert len(problems) == 2
    assert any("work order status 'Awaiting Parts' (1 work order) is unmapped" in p for p in problems)
    assert any("work_orders.Priority value 'Urgent'" in p for p in problems)


@pytest.mark.slow
def test_edited_approved_file_is_respected(setup):
    _, profile, proposed, pp, ap = setup
    approve(pp, ap, "dana", profile.profile_hash)
    _fill_unmapped(ap)
    approved = load_mapping(ap)
    assert approved.value_proposals["work_orders.Status"]["Stage 7"].confirmed
    assert check_approval(approved, proposed, profile) == []
    # re-approving keeps the user's edits
    again = approve(pp, ap, "erin", profile.profile_hash)
    assert again.value_proposals["work_orders.Status"]["Stage 7"].confirmed and again.approved_by == "erin"
    assert check_approval(load_mapping(ap), proposed, profile) == []


def test_new_data_not_covered_and_changed_since_approval(setup):
    con, profile, _proposed, pp, ap = setup
    approve(pp, ap, "dana", profile.profile_hash)
    _fill_unmapped(ap)
    stage(con, "work_orders", [{"wo_number": "WO-77", "title": "new", "status": "Parked", "priority": "Low",
                                "udf_council_district": "West"}])
    profile2 = profile_source(con, "full-1")
    proposed2 = propose_mapping(profile2)
    problems = check_approval(load_mapping(ap), proposed2, profile2)
    assert any(p.startswith("the source data changed since approval") for p in problems)
    assert any("the proposal changed since approval" in p for p in problems)
    assert any("work order status 'Parked'" in p and "not in the approved mapping" in p for p in problems)
    assert any("work_orders.UDF: Council District value 'West'" in p and "not in the approved" in p for p in problems)


@pytest.mark.slow
def test_new_column_not_covered(setup):
    con, profile, _proposed, pp, ap = setup
    approve(pp, ap, "dana", profile.profile_hash)
    _fill_unmapped(ap)
    stage(con, "user_defined_fields", [{"entity": "Asset", "label": "Zone", "column": "UDF: Zone",
                                        "data_type": "Text"}])
    con.execute("ALTER TABLE staging.stg_assets ADD COLUMN udf_zone VARCHAR")
    profile2 = profile_source(con, "full-1")
    problems = check_approval(load_mapping(ap), propose_mapping(profile2), profile2)
    assert any("column assets.'UDF: Zone' is not in the approved mapping (proposed: organization.Zone)" in p
               for p in problems)


def test_invalid_targets(setup):
    _, profile, proposed, pp, ap = setup
    approve(pp, ap, "dana", profile.profile_hash)
    _fill_unmapped(ap)
    m = load_mapping(ap)
    m.status_map["Awaiting Parts"] = StatusTarget(stage="Waiting")
    m.value_maps["work_orders.Priority"]["Urgent"] = "Critical"
    f = m.field("work_orders", "Source")
    f.target_entity, f.target_field = "deal", "source_channel"
    u = m.field("work_orders", "UDF: Crew Size")
    u.field_type = "date"
    problems = check_approval(m, proposed, profile)
    assert any("status_map['Awaiting Parts'].stage 'Waiting' is not a stage" in p for p in problems)
    assert any("'Critical' is not an option of 'Novo_Priority__c'" in p for p in problems)
    assert any("'source_channel' is not a standard deal field" in p for p in problems)
    assert any("UDF work_orders.'UDF: Crew Size' is declared as Number" in p for p in problems)
    assert len(problems) == 4


def test_approve_needs_a_name(setup):
    _, profile, _, pp, ap = setup
    with pytest.raises(UserError, match="--by"):
        approve(pp, ap, "  ", profile.profile_hash)


def test_command(setup, capsys):
    _, profile, _proposed, pp, ap = setup
    parser = argparse.ArgumentParser()
    command.configure(parser)
    rc = command.run(parser.parse_args(["approve", "--by", "lee", "--proposal", str(pp), "--approved", str(ap)]))
    assert rc == 1  # approved, but a low-confidence proposal waits for a decision
    assert "Stage 7" in capsys.readouterr().err
    m = load_mapping(ap)
    assert m.approved_by == "lee" and m.profile_hash == profile.profile_hash
    _fill_unmapped(ap)
    rc = command.run(parser.parse_args(["approve", "--by", "lee", "--proposal", str(pp), "--approved", str(ap)]))
    assert rc == 0


def test_waiving_the_sample_keeps_the_rest_of_the_approved_file(tmp_path):
    from flitstack_dagster.mapping.approval import waive_sample_verification
    from flitstack_dagster.mapping.model import Mapping as M
    from flitstack_dagster.mapping.yamlio import load_mapping, write_mapping

    path = tmp_path / "approved.yaml"
    write_mapping(path, M(approved_by="lead", value_maps={"contacts.Role": {"Tech": "Technician"}}), "test")
    waive_sample_verification(path)
    m = load_mapping(path)
    assert m.options.waive_sample_verification and m.approved_by == "lead"
    assert m.value_maps["contacts.Role"] == {"Tech": "Technician"}
