"""Rows the product can't honour are refused at approval, one sentence each; request types and
activity-log entry types are proposed with evidence, and the unsure ones wait for a decision."""

from __future__ import annotations

import duckdb
import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.activity_rows import activity_types_used
from flitstack_dagster.mapping.approval import approve, check_approval
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.value_proposals import CONFIDENT
from flitstack_dagster.mapping.yamlio import DECIDE, decisions_needed, dump_mapping, load_mapping, write_mapping, write_proposal
from flitstack_dagster_tests.mapping.conftest import stage


@pytest.fixture()
def profile():
    con = duckdb.connect()
    stage(con, "work_orders", [{"wo_number": f"WO-{i}", "title": "t", "status": "Open", "request_type": rt}
                               for i, rt in enumerate(["Corrective", "Repair", "PM", "Insp.", "Graffiti Removal"])])
    stage(con, "notes", [{"note_id": f"N{i}", "wo_number": "WO-0", "entry_type": et}
                         for i, et in enumerate(["Call", "Note", "Phone", "Site Visit", "Text Message"])])
    try:
        yield profile_source(con, "full-1")
    finally:
        con.close()


def _approved(tmp_path, profile):
    pp = write_proposal(tmp_path / "proposed.yaml", propose_mapping(profile))
    ap = tmp_path / "approved.yaml"
    approve(pp, ap, "lee", profile.profile_hash)
    return pp, ap


def _edit(ap, entity: str, column: str, target_entity: str, target_field: str | None, options=None) -> None:
    m = load_mapping(ap)
    f = next(f for f in m.fields if f.source_entity == entity and f.source_column == column)
    f.target_entity, f.target_field = target_entity, target_field
    if options is not None:
        f.options = options
    write_mapping(ap, m, "edited by the lead")


@pytest.mark.parametrize(("entity", "column", "target", "sentence"), [
    ("labor", "Work Date", ("activity", "subject"),
     "fields labor.'Work Date' → activity.subject can't be changed: it can only take activity.due_date"),
    ("labor", "Rate", ("deal", "Rate"),
     "fields labor.'Rate' → deal.Rate can't be honoured: it can take activity.note, none or deal.Labor_Cost__c"),
    ("pm_schedules", "Estimated Hours", ("activity", "subject"), "fields pm_schedules.'Estimated Hours' → "
     "activity.subject can't be honoured: it can take activity.duration, activity.note or none"),
    ("status_log", "Comment", ("none", None),
     "fields status_log.'Comment' → none can't be changed: it can only take note.content"),
])
def test_a_row_the_product_cannot_honour_is_refused_with_its_targets(tmp_path, profile, entity, column, target, sentence):
    pp, ap = _approved(tmp_path, profile)
    _edit(ap, entity, column, *target)
    assert sentence in check_approval(load_mapping(ap), load_mapping(pp), profile)
    with pytest.raises(UserError) as e:
        approve(pp, ap, "lee", profile.profile_hash)
    assert sentence in str(e.value) and "Traceback" not in str(e.value)


def test_an_edited_objects_row_is_refused(tmp_path, profile):
    pp, ap = _approved(tmp_path, profile)
    m = load_mapping(ap)
    m.objects[0].how = "something else"
    write_mapping(ap, m, "edited by the lead")
    sentence = (f"objects row '{m.objects[0].source} → {m.objects[0].target}' can't be changed: it describes what "
                "the product does; restore it from the proposal and change the fields rows instead")
    assert sentence in check_approval(load_mapping(ap), load_mapping(pp), profile)
    with pytest.raises(UserError, match="can't be changed"):
        approve(pp, ap, "lee", profile.profile_hash)


def test_a_changed_activity_type_is_approved_and_provisioned(tmp_path, profile):
    pp, ap = _approved(tmp_path, profile)
    _edit(ap, "labor", "Labor ID", "activity", "type", ["Field Labor"])
    m = approve(pp, ap, "lee", profile.profile_hash)
    assert "Field Labor" in activity_types_used(m) and "Work Order Labor" not in activity_types_used(m)
    _edit(ap, "labor", "Labor ID", "activity", "type", ["A", "B"])
    assert any("needs exactly one option" in p for p in check_approval(load_mapping(ap), load_mapping(pp), profile))


def test_request_and_entry_types_are_proposed_with_evidence(tmp_path, profile):
    m = propose_mapping(profile)
    rt, rp = m.value_maps["work_orders.Request Type"], m.value_proposals["work_orders.Request Type"]
    assert (rt["Repair"], rt["PM"], rt["Insp."]) == ("Corrective", "Preventive", "Inspection")
    assert rp["Repair"].confidence >= CONFIDENT and "repair" in rp["Repair"].reason
    assert rp["Graffiti Removal"].decision == "add option" and rp["Graffiti Removal"].confidence < CONFIDENT
    assert "Graffiti Removal" in m.field("work_orders", "Request Type").options
    et, ep = m.value_maps["notes.Entry Type"], m.value_proposals["notes.Entry Type"]
    assert (et["Call"], et["Phone"], et["Site Visit"], et["Note"]) == ("Call", "Call", "Meeting", "")
    assert ep["Note"].decision == "set aside" and "kept as a note" in ep["Note"].reason
    assert et["Text Message"] == "" and ep["Text Message"].confidence < CONFIDENT
    # the unsure ones are marked in the YAML and listed by the approval check until decided
    yaml_line = next(ln for ln in dump_mapping(m).splitlines() if ln.strip().startswith("Text Message:"))
    assert DECIDE.format(c=ep["Text Message"].confidence) in yaml_line
    pp, ap = _approved(tmp_path, profile)
    problems = check_approval(load_mapping(ap), load_mapping(pp), profile)
    assert any(p.startswith("notes.Entry Type value 'Text Message' is proposed") for p in problems)
    assert any(p.startswith("work_orders.Request Type value 'Graffiti Removal' is proposed") for p in problems)
    assert len([p for p in problems if " is proposed → " in p]) == 2  # the confident ones need nothing
    assert set(decisions_needed(load_mapping(ap), profile.value_sets)) <= set(problems)
