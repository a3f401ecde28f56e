import polars as pl
import pytest

from flitstack_dagster.mapping.model import Mapping, MappingOptions, StatusTarget
from flitstack_dagster.shaping.deals import description_notes, shape_deals, work_order_costs
from flitstack_dagster.staging.frames import StagedInputs

from .conftest import payloads, utc

ORGS = {"account:A1", "asset:00042"}
PERSONS = {"contact:R1", "contact:T1"}


def _inputs(**wo):
    base = {
        "wo_number": ["WO-004211"], "title": ["Fix pump"], "status": ["Open"], "priority": ["High"], "account_id": ["A1"],
        "asset_id": ["00042"], "requester_id": ["R1"], "assigned_to_id": ["T1"], "description": ["short"],
        "date_requested": [utc(2026, 3, 1, 3, 0)], "date_completed": [utc(2026, 3, 2, 15, 30)],
    }
    base.update(wo)
    return StagedInputs(
        work_orders=pl.DataFrame(base),
        labor=pl.DataFrame({"labor_id": ["L1", "L2", "L3"], "wo_number": ["WO-004211"] * 3, "technician_id": ["T1", "T1", "T2"],
                            "hours": [2.0, 1.5, 1.0], "rate": [40.0, 60.0, None]}),
        parts_used=pl.DataFrame({"line_id": ["P1", "P2"], "wo_number": ["WO-004211"] * 2, "quantity": [3.0, 1.0], "unit_cost": [2.5, 10.0]}),
        contacts=pl.DataFrame({"contact_id": ["T2"], "hourly_rate": [30.0]}),
    )


def _shape(i, mapping, owners, ctx, orgs=ORGS):
    return shape_deals(i.work_orders, i.labor, i.parts_used, i.contacts, orgs, PERSONS, mapping, owners, ctx)


def test_costs_sum_hours_times_rate_and_parts(ctx, mapping, owners):
    out = _shape(_inputs(), mapping, owners, ctx)
    p = payloads(out.frame)["work_order:WO-004211"]
    # labor = 2*40 + 1.5*60 + 1*30 (technician's hourly rate fills the empty rate) = 200; parts = 3*2.5 + 10 = 17.5
    assert p["Labor_Cost__c"] == {"value": 200.0, "currency": "USD"}
    assert p["Parts_Cost__c"] == {"value": 17.5, "currency": "USD"}
    assert p["Total_WO_Cost__c"] == {"value": 217.5, "currency": "USD"}
    assert p["value"] == 217.5 and p["currency"] == "USD"


def test_deal_value_off_and_no_costs_is_zero(ctx, owners):
    i = _inputs(wo_number=["WO-9"])
    out = _shape(i, Mapping(options=MappingOptions(deal_value_from_total=False)), owners, ctx)
    p = payloads(out.frame)["work_order:WO-9"]
    assert p["value"] is None
    assert p["Total_WO_Cost__c"]["value"] == 0.0


def test_costs_frame_direct():
    c = work_order_costs(
        pl.DataFrame({"wo_number": ["A"], "technician_id": ["x"], "hours": [1.25], "rate": [10.0]}),
        pl.DataFrame({"wo_number": ["B"], "quantity": [2.0], "unit_cost": [0.125]}),
        pl.DataFrame({"contact_id": ["x"], "hourly_rate": [1.0]}),
    )
    d = {r["wo_number"]: (r["labor_cost"], r["parts_cost"]) for r in c.to_dicts()}
    assert d == {"A": (12.5, 0.0), "B": (0.0, 0.25)}


@pytest.mark.parametrize(
    "status,stage,deal_status,won,lost",
    [
        ("New", "New", "open", False, False),
        ("Open", "Open", "open", False, False),
        ("Scheduled", "Scheduled", "open", False, False),
        ("In Progress", "In Progress", "open", False, False),
        ("On Hold", "On Hold", "open", False, False),
        ("Reassigned", "Open", "open", False, False),
        ("Completed", "Completed", "won", True, False),
        ("Closed", "Completed", "won", True, False),
        ("Cancelled", "Open", "lost", False, True),
    ],
)
def test_each_status(ctx, mapping, owners, status, stage, deal_status, won, lost):
    p = payloads(_shape(_inputs(status=[status]), mapping, owners, ctx).frame)["work_order:WO-004211"]
    assert (p["stage"], p["status"]) == (stage, deal_status)
    assert p["pipeline"] == "Novo Work Orders"
    assert p["won_time"] == ("2026-03-02T15:30:00Z" if won else None)
    assert p["lost_reason"] == ("Cancelled in Novo" if lost else None)


def test_tenant_status_from_mapping_and_unmapped(ctx, owners):
    m = Mapping(status_map={"Awaiting Parts": StatusTarget(stage="On Hold"), "Weird": None})
    p = payloads(_shape(_inputs(status=["Awaiting Parts"]), m, owners, ctx).frame)["work_order:WO-004211"]
    assert p["stage"] == "On Hold"
    p = payloads(_shape(_inputs(status=["Weird"]), m, owners, ctx).frame)["work_order:WO-004211"]
    assert p["stage"] is None  # blocks via checks.check_values_mapped
    p = payloads(_shape(_inputs(status=["Never Seen"]), Mapping(), owners, ctx).frame)["work_order:WO-004211"]
    assert p["stage"] is None
    # an export's stray whitespace ("Awaiting Parts ") matches the trimmed value the approval was given
    p = payloads(_shape(_inputs(status=["Awaiting Parts "]), m, owners, ctx).frame)["work_order:WO-004211"]
    assert p["stage"] == "On Hold"


def test_title_refs_owner_priority_dates(ctx, mapping, owners):
    out = _shape(_inputs(), mapping, owners, ctx)
    row = out.frame.row(0, named=True)
    p = payloads(out.frame)["work_order:WO-004211"]
    assert p["title"] == "WO-004211 · Fix pump"
    assert row["org_ref"] == "account:A1" and row["person_ref"] == "contact:R1" and row["owner_id"] == 501
    assert p["Asset"] == {"$ref": "asset:00042"}
    assert p["Novo_Priority__c"] == "High" and p["Novo WO Number"] == "WO-004211"
    # 2026-03-01 03:00 UTC is still Feb 28 in Chicago: the date the user saw
    assert p["Date Requested"] == "2026-02-28"
    assert p["Date Completed"] == "2026-03-02"


def test_org_falls_back_to_asset_then_set_aside(ctx, mapping, owners):
    out = _shape(_inputs(account_id=["GONE"]), mapping, owners, ctx)
    assert out.frame["org_ref"].to_list() == ["asset:00042"]
    assert "reference_repaired" in out.warnings["code"].to_list()
    out = _shape(_inputs(account_id=["GONE"], asset_id=["NOPE"]), mapping, owners, ctx)
    assert out.frame.height == 0
    assert out.set_aside["reason_code"].to_list() == ["org_unresolved"]
    assert out.set_aside["source_id"].to_list() == ["work_order:WO-004211"]


def test_fallback_owner_warning(ctx, mapping, owners):
    out = _shape(_inputs(assigned_to_id=["T9"]), mapping, owners, ctx)
    assert out.frame["owner_id"].to_list() == [1]
    assert out.warnings.filter(pl.col("code") == "fallback_owner").height == 1


def test_priority_value_map_and_empty_stays_empty(ctx, owners):
    m = Mapping(value_maps={"work_orders.Priority": {"High": "P2 - High"}})
    p = payloads(_shape(_inputs(), m, owners, ctx).frame)["work_order:WO-004211"]
    assert p["Novo_Priority__c"] == "P2 - High"
    p = payloads(_shape(_inputs(priority=[None]), m, owners, ctx).frame)["work_order:WO-004211"]
    assert p["Novo_Priority__c"] is None


def test_html_description_short_in_field_verbatim_long_as_escaped_first_note(ctx, owners):
    m = Mapping(options=MappingOptions(description_field_max=20))
    short = "<b>hot</b> pump"
    out = _shape(_inputs(description=[short]), m, owners, ctx)
    assert payloads(out.frame)["work_order:WO-004211"]["Description"] == short
    long = "<script>alert(1)</script> and a lot more text"
    i = _inputs(description=[long])
    out = _shape(i, m, owners, ctx)
    assert payloads(out.frame)["work_order:WO-004211"]["Description"] is None
    notes = description_notes(i.work_orders, {"work_order:WO-004211"}, m, ctx)
    content = payloads(notes)["work_order_description:WO-004211"]["content"]
    assert "<script>" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert notes["deal_ref"].to_list() == ["work_order:WO-004211"]


def test_leading_zero_wo_number(ctx, mapping, owners):
    out = _shape(_inputs(wo_number=["000123"]), mapping, owners, ctx)
    assert out.frame["source_id"].to_list() == ["work_order:000123"]
    assert payloads(out.frame)["work_order:000123"]["Novo WO Number"] == "000123"
