from __future__ import annotations

import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.model import StatusTarget
from flitstack_dagster.mapping.audit import AccountAudit, PdField
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping, similar
from flitstack_dagster.mapping.yamlio import dump_mapping, load_mapping, parse_mapping, write_proposal
from flitstack_dagster.novo.columns import FILES


@pytest.fixture
def profile(source):
    return profile_source(source, "full-1")


def test_standard_columns(profile):
    m = propose_mapping(profile)
    f = m.field
    assert f("work_orders", "Title").target_field == "title" and f("work_orders", "Title").transform == "wo_title"
    assert (f("work_orders", "Priority").target_field, f("work_orders", "Priority").field_type) == ("Novo_Priority__c", "enum")
    assert f("work_orders", "Status").target_field == "stage_id"
    assert f("work_orders", "Requester ID").target_field == "person_id"
    assert f("work_orders", "Assigned To ID").target_field == "owner_id"
    assert (f("work_orders", "Asset ID").target_field, f("work_orders", "Asset ID").field_type) == ("Asset", "org")
    assert f("work_orders", "Description").field_type == "varchar" and f("work_orders", "Description").transform == "description_or_note"
    assert f("assets", "Serial Number").target_field == "Asset_Serial__c"
    assert f("assets", "Asset Class").target_field == "Asset_Type__c"
    assert (f("assets", "Last Service Date").target_field, f("assets", "Last Service Date").field_type) == ("Last_Service_Date__c", "date")
    assert f("contacts", "Role").options == ["Technician", "Requester", "Technician/Requester"]
    assert f("contacts", "Department ID").target_field == "Novo_Department__c"
    assert f("accounts", "Account ID").target_field == "Novo Account ID"
    assert f("accounts", "Account Type").target_field == "Account Type"
    # every registry column is covered, and Novo Source ID exists on all three record entities
    cols = {(x.source_entity, x.source_column) for x in m.fields}
    assert all((nf.entity, c.label) in cols for nf in FILES for c in nf.columns)
    sid = {x.target_entity for x in m.fields if x.target_field == "Novo Source ID"}
    assert sid == {"deal", "person", "organization"}
    names = {(x.target_entity, x.target_field): x.field_type for x in m.custom_fields()}
    for n in ("Labor_Cost__c", "Parts_Cost__c", "Total_WO_Cost__c"):
        assert names[("deal", n)] == "monetary"
    for n in ("Novo WO Number", "Request Type", "Date Requested", "Due Date", "Date Completed"):
        assert ("deal", n) in names
    assert names[("organization", "Asset_Hierarchy__c")] == "text" and names[("organization", "Parts")] == "text"
    assert len(m.objects) >= 11 and m.objects[0].target == "Deal"


def test_udf_types(profile):
    m = propose_mapping(profile)
    want = {"UDF: Council District": "enum", "UDF: Tags": "set", "UDF: Permit Fee": "monetary",
            "UDF: Crew Size": "double", "UDF: Inspected On": "date", "UDF: Hazard": "enum"}
    for col, t in want.items():
        f = m.field("work_orders", col)
        assert f.target_entity == "deal" and f.custom and f.field_type == t, col
    assert m.field("work_orders", "UDF: Hazard").options == ["Yes", "No"]
    assert m.field("assets", "UDF: Ward").field_type == "varchar" and m.field("assets", "UDF: Ward").target_entity == "organization"
    # a Long Text UDF is text; the pick list offers the declared choices plus values seen
    assert m.field("contacts", "UDF: Badge Notes").field_type == "text"
    assert m.field("work_orders", "UDF: Council District").options == ["North", "South", "East", "Downtown"]


def test_every_value_seen_gets_a_proposal_with_its_reason(profile):
    m = propose_mapping(profile)
    assert m.status_map["Awaiting Parts"] == StatusTarget(stage="On Hold")  # "awaiting": a waiting stage
    assert m.status_map["Canceled"].status == "lost"
    assert m.status_map["Completed"].status == "won" and m.status_map["Reassigned"].stage == "Open"
    assert m.value_maps["work_orders.Priority"]["Urgent"] == "Emergency"  # synonym
    # pick-list values outside the declared choices become options of their own, and the field offers them
    assert m.value_maps["work_orders.UDF: Council District"]["Downtown"] == "Downtown"
    assert m.value_proposals["work_orders.UDF: Council District"]["Downtown"].decision == "add option"
    assert "Sewer" in m.field("work_orders", "UDF: Tags").options
    # an id no department has is set aside on purpose (left empty), and says so
    assert m.value_maps["contacts.Department ID"] == {"D1": "Public Works", "D2": "Utilities", "D9": "Acme Facilities",
                                                      "D7": ""}
    d7 = m.value_proposals["contacts.Department ID"]["D7"]
    assert d7.decision == "set aside" and "departments.csv" in d7.reason
    assert m.value_maps["accounts.Department ID"]["D9"] == "Acme Facilities"
    assert m.value_maps["accounts.Department ID"]["D1"] == ""  # Internal: no label, on purpose
    assert m.unmapped() == []
    # every value seen carries a confidence and a reason
    for key, seen in profile.value_sets.items():
        if key in m.value_maps or key == "work_orders.Status":
            assert set(seen) <= set(m.value_proposals.get(key, {})), key
    aw = m.value_proposals["work_orders.Status"]["Awaiting Parts"]
    assert aw.confidence >= 0.75 and "awaiting" in aw.reason and aw.reason.endswith("→ On Hold")


def test_similarity_rule():
    assert similar("IN-PROGRESS", ["In Progress", "On Hold"])[0] == "In Progress"
    assert similar("Canceled", ["Cancelled", "Completed"])[0] == "Cancelled"
    assert similar("Awaiting Parts", ["On Hold", "Open", "Completed"])[0] is None
    assert similar("Opened", ["Open", "Closed"])[0] is None


@pytest.mark.slow
def test_deterministic_yaml(source):
    a = dump_mapping(propose_mapping(profile_source(source, "full-1")))
    b = dump_mapping(propose_mapping(profile_source(source, "full-1")))
    assert a == b


def test_existing_fields_reused_or_renamed(profile):
    audit = AccountAudit(plan="growth", seats=2, fields={
        "deal": [PdField(key="k" * 40, name="council district", field_type="enum", custom=True),
                 PdField(key="j" * 40, name="Novo_Priority__c", field_type="varchar", custom=True)],
        "person": [], "organization": []})
    m = propose_mapping(profile, audit)
    assert m.field("work_orders", "UDF: Council District").target_field == "council district"
    assert "existing" in m.field("work_orders", "UDF: Council District").reason
    assert m.field("work_orders", "Priority").target_field == "Novo_Priority__c (Novo)"


def test_yaml_round_trip_and_files(profile, tmp_path):
    m = propose_mapping(profile)
    p = write_proposal(tmp_path / "proposed.yaml", m)
    back = load_mapping(p)
    assert back == m and back.content_hash() == m.content_hash()
    text = p.read_text()
    assert "Awaiting Parts: {stage: On Hold, status: open}\n" in text
    assert "Canceled: {stage: Open, status: lost, lost_reason: Cancelled in Novo}\n" in text
    assert "value_proposals:" in text and "Urgent: {proposed: Emergency, confidence: 0.92" in text
    assert text.index("status_map:") < text.index("value_maps:") < text.index("fields:")
    md = (tmp_path / "proposed.md").read_text()
    assert "| work_orders | Priority | deal | Novo_Priority__c |" in md
    assert "| Urgent | Emergency | map | 0.92 | the name says 'urgent' → option 'Emergency' |" in md


def test_load_errors_name_file_and_key(profile, tmp_path):
    text = dump_mapping(propose_mapping(profile))
    bad = tmp_path / "approved.yaml"
    bad.write_text(text.replace("Awaiting Parts: {stage: On Hold, status: open}",
                                "Awaiting Parts: {stage: On Hold, status: paused}"))
    with pytest.raises(UserError, match=r"(?s)approved.yaml.*status_map\['Awaiting Parts'\].status"):
        load_mapping(bad)
    bad.write_text(text.replace("pipeline_stages:", "pipeline_stagez:"))
    with pytest.raises(UserError, match="pipeline_stagez: unknown key"):
        load_mapping(bad)
    with pytest.raises(UserError, match="not valid YAML"):
        parse_mapping("a: [1, 2", "x.yaml")
    with pytest.raises(UserError, match="does not exist"):
        load_mapping(tmp_path / "nope.yaml")
