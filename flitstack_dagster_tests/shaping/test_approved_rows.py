"""Every approved labor, parts, PM and activity-log row changes what is shaped: the activity type,
the duration, what goes into the note, and which entry types become activities."""

from __future__ import annotations

from datetime import date

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.profile import SourceProfile
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.shaping.activities import shape_activities
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.notes import shape_log_notes

from .conftest import payloads, utc

DEALS, ORGS, PERSONS = {"work_order:WO-1"}, {"asset:00042"}, {"contact:T1"}


def _inputs() -> StagedInputs:
    return StagedInputs(
        labor=pl.DataFrame({"labor_id": ["L1"], "wo_number": ["WO-1"], "technician_id": ["T1"],
                            "work_date": [date(2026, 10, 30)], "start_time": ["7:30 AM"], "hours": [1.5],
                            "rate": [40.0], "labor_type": ["Overtime"], "notes": ["fixed pump"]}),
        parts_used=pl.DataFrame({"line_id": ["P1"], "wo_number": ["WO-1"], "part_number": ["PN-1"], "quantity": [3.0],
                                 "unit_cost": [2.5], "date_added": [utc(2026, 10, 30, 15)]}),
        inventory=pl.DataFrame({"part_number": ["PN-1"], "description": ["Filter"], "unit": ["ea"]}),
        pm_schedules=pl.DataFrame({
            "pm_id": ["F", "M"], "pm_name": ["Filters", "Meter"], "asset_id": ["00042"] * 2, "trigger": ["Date", "Meter"],
            "recurrence_rule": [None, None], "frequency": ["Weekly", None], "every": [4.0, None],
            "meter_name": [None, "Hours"], "meter_interval": [None, 250.0], "last_meter_reading": [None, 1200.0],
            "start_date": [date(2026, 10, 20), None], "next_due": [None, date(2026, 12, 1)],
            "procedure": ["Swap the filter", "Grease"], "estimated_hours": [2.25, 0.5], "active": [True, True],
            "assigned_to_id": ["T1"] * 2}),
        notes=pl.DataFrame({"note_id": ["N1", "N2", "N3"], "wo_number": ["WO-1"] * 3, "asset_id": [None] * 3,
                            "entry_type": ["Call", "Text Message", "Note"], "subject": ["Rang", "Ping", "n"],
                            "body": ["a", "b", "c"], "internal": [True, False, False],
                            "logged_at": [utc(2026, 5, 1, 14, 5)] * 3}),
    )


def _shape(mapping: Mapping, ctx, owners) -> dict[str, dict]:
    i = _inputs()
    out = shape_activities(i.labor, i.parts_used, i.notes, i.pm_schedules, i.contacts, i.inventory,
                           ORGS, PERSONS, DEALS, mapping, owners, ctx)
    return payloads(out.frame)


def _row(m: Mapping, entity: str, column: str, target: str) -> None:
    """Point the activity-side row of `entity.column` at `activity.<field>` or `none` (as a lead edits the YAML)."""
    f = next(f for f in m.fields if f.source_entity == entity and f.source_column == column and f.target_entity != "deal")
    f.target_entity, f.target_field = ("none", None) if target == "none" else target.split(".")


def test_the_proposed_rows_load_pm_hours_as_the_duration(ctx, owners):
    p = _shape(propose_mapping(SourceProfile(run_key="full-t1")), ctx, owners)
    labor = p["labor:L1"]
    assert (labor["type"], labor["duration"], labor["due_time"]) == ("Work Order Labor", "01:30", "12:30")
    assert "Rate:</b> 40.0" in labor["note"] and "fixed pump" in labor["note"] and "Hours:" not in labor["note"]
    pm = p["pm_occurrence:F:2026-10-20"]
    assert (pm["type"], pm["duration"]) == ("task", "02:15")
    assert "Estimated hours" not in pm["note"] and "Swap the filter" in pm["note"]
    assert p["pm_next:M"]["duration"] == "00:30"
    assert p["note:N1"]["type"] == "Call" and "note:N2" not in p  # Text Message stays a note


def test_edited_rows_change_what_is_shaped(ctx, owners):
    m = propose_mapping(SourceProfile(run_key="full-t1"))
    m.field("labor", "Labor ID").options = ["Field Labor"]
    m.field("parts_used", "Line ID").options = ["Materials"]
    m.field("pm_schedules", "PM ID").options = ["Inspection Visit"]
    _row(m, "labor", "Hours", "activity.note")
    _row(m, "labor", "Rate", "none")
    _row(m, "labor", "Labor Type", "none")
    _row(m, "labor", "Start Time", "activity.note")
    _row(m, "parts_used", "Unit Cost", "none")
    _row(m, "pm_schedules", "Estimated Hours", "activity.note")
    _row(m, "pm_schedules", "Procedure", "none")
    _row(m, "pm_schedules", "Last Meter Reading", "none")
    _row(m, "notes", "Internal", "none")
    m.value_maps["notes.Entry Type"].update({"Call": "", "Text Message": "Text Message"})
    p = _shape(m, ctx, owners)
    labor = p["labor:L1"]
    assert (labor["type"], labor["subject"], labor["due_time"]) == ("Field Labor", "Labor: 1.5 h", None)
    assert "duration" not in labor and "Hours:</b> 1.5" in labor["note"] and "Start time (local):</b> 7:30 AM" in labor["note"]
    assert "Rate" not in labor["note"] and "Overtime" not in labor["note"]
    parts = p["part_used:P1"]
    assert parts["type"] == "Materials" and "cost" not in parts["note"] and "PN-1" in parts["note"]
    pm = p["pm_occurrence:F:2026-10-20"]
    assert (pm["type"], "duration" in pm) == ("Inspection Visit", False)
    assert "Estimated hours:</b> 2.25" in pm["note"] and "Swap the filter" not in pm["note"]
    assert "every 250 Hours" in p["pm_next:M"]["note"] and "1200" not in p["pm_next:M"]["note"]
    assert "note:N1" not in p and p["note:N2"]["type"] == "Text Message" and "Internal" not in p["note:N2"]["note"]
    notes = payloads(shape_log_notes(_inputs().notes, DEALS, ORGS, PERSONS, ctx, m).frame)
    assert set(notes) == {"note:N1", "note:N3"}  # the call is kept as a note now
    assert "Internal" not in notes["note:N1"]["content"] and "Novo entry type: Call" in notes["note:N1"]["content"]
