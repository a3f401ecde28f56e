from datetime import date

import polars as pl
import pytest

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.shaping.activities import _utc_due, parse_start_time, shape_activities, with_local_due
from flitstack_dagster.staging.frames import StagedInputs

from .conftest import payloads, utc

DEALS = {"work_order:WO-1"}
ORGS = {"asset:00042"}
PERSONS = {"contact:T1"}


def _run(i, ctx, owners, mapping=None):
    return shape_activities(i.labor, i.parts_used, i.notes, i.pm_schedules, i.contacts, i.inventory,
                            ORGS, PERSONS, DEALS, mapping or Mapping(), owners, ctx)


def test_labor_parts_and_orphans(ctx, owners):
    i = StagedInputs(
        labor=pl.DataFrame({"labor_id": ["L1", "L2", "L3"], "wo_number": ["WO-1", "WO-1", "WO-GONE"], "technician_id": ["T1", "T9", "T1"],
                            "work_date": [date(2026, 10, 30), date(2026, 11, 2), date(2026, 1, 1)], "start_time": ["7:30 AM", None, "08:00"],
                            "hours": [1.5, 2.0, 1.0], "rate": [40.0, 50.0, 1.0], "notes": ["<b>done</b>", None, None]}),
        # P2's part number was quarantined in staging (not in inventory): the line still migrates, named as such
        parts_used=pl.DataFrame({"line_id": ["P1", "P2"], "wo_number": ["WO-1", "WO-1"], "part_number": ["PN-1", None], "quantity": [3.0, 1.0],
                                 "unit_cost": [2.5, 4.0], "date_added": [utc(2026, 10, 30, 15)] * 2}),
        inventory=pl.DataFrame({"part_number": ["PN-1"], "description": ["Filter"], "unit": ["ea"]}),
    )
    out = _run(i, ctx, owners)
    p = payloads(out.frame)
    l1 = p["labor:L1"]
    # 7:30 CDT = 12:30 UTC
    assert (l1["due_date"], l1["due_time"], l1["duration"], l1["done"], l1["type"]) == ("2026-10-30", "12:30", "01:30", True, "Work Order Labor")
    assert "&lt;b&gt;done&lt;/b&gt;" in l1["note"] and "40.0" in l1["note"]
    l2 = p["labor:L2"]
    assert (l2["due_date"], l2["due_time"]) == ("2026-11-02", None)
    rows = {r["source_id"]: r for r in out.frame.to_dicts()}
    assert rows["labor:L1"]["deal_ref"] == "work_order:WO-1" and rows["labor:L1"]["owner_id"] == 501
    assert rows["labor:L1"]["person_ref"] == "contact:T1"
    assert rows["labor:L2"]["owner_id"] == 1
    assert p["part_used:P1"]["subject"] == "Parts: PN-1 × 3" and "7.5" in p["part_used:P1"]["note"]
    assert rows["part_used:P1"]["kind"] == "parts"
    assert p["part_used:P2"]["subject"] == "Parts: unlisted part × 1"
    assert out.set_aside.select("source_id", "reason_code").rows() == [("labor:L3", "orphan_reference")]


def test_calls_emails_meetings_from_log(ctx, owners):
    i = StagedInputs(notes=pl.DataFrame({
        "note_id": ["N1", "N2", "N3", "N4"], "wo_number": ["WO-1", None, None, "WO-1"], "asset_id": [None, "00042", "999", None],
        "entry_type": ["Call", "Meeting", "Email", "Note"], "subject": ["Called", "Met", "Mail", "n"], "body": ["<script>x</script>", "b", "c", "d"],
        "internal": [True, False, False, False], "logged_at": [utc(2026, 5, 1, 14, 5)] * 4,
    }))
    out = _run(i, ctx, owners)
    rows = {r["source_id"]: r for r in out.frame.to_dicts()}
    assert set(rows) == {"note:N1", "note:N2"}  # Note entries go to pd_notes
    p = payloads(out.frame)
    assert (p["note:N1"]["type"], p["note:N1"]["due_date"], p["note:N1"]["due_time"]) == ("call", "2026-05-01", "14:05")
    assert p["note:N1"]["note"].startswith("<b>Internal") and "&lt;script&gt;" in p["note:N1"]["note"]
    assert rows["note:N1"]["deal_ref"] == "work_order:WO-1" and rows["note:N2"]["org_ref"] == "asset:00042"
    assert out.set_aside["source_id"].to_list() == ["note:N3"]


def test_pm_each_style_meter_unparsed_inactive(ctx, owners):
    pm = pl.DataFrame({
        "pm_id": ["R", "P", "F", "M", "U", "I"], "pm_name": ["Rr", "Ph", "Fr", "Me", "Un", "In"], "asset_id": ["00042"] * 6,
        "trigger": ["Date", "Date", "Date", "Meter", "Date", "Date"],
        "recurrence_rule": ["FREQ=MONTHLY;BYDAY=1MO", "Monthly on day 15", None, None, "Every blue moon", None],
        "frequency": [None, None, "Weekly", None, None, "Daily"], "every": [None, None, 4.0, None, None, 1.0],
        "meter_name": [None, None, None, "Hours", None, None], "meter_interval": [None, None, None, 250.0, None, None],
        "last_meter_reading": [None, None, None, 1200.0, None, None],
        "start_date": [date(2026, 1, 1), date(2026, 1, 1), date(2026, 10, 20), None, date(2026, 1, 1), date(2026, 1, 1)],
        "next_due": [None, None, None, date(2026, 12, 1), None, None], "procedure": ["Step 1\nStep <2>", None, None, None, None, None],
        "active": [True, True, True, True, True, False], "assigned_to_id": ["T1"] * 6,
    })
    out = _run(StagedInputs(pm_schedules=pm), ctx, owners)
    f = out.frame
    ids = sorted(f["source_id"].to_list())
    assert ids == [
        "pm_next:M",
        "pm_occurrence:F:2026-10-20", "pm_occurrence:F:2026-11-17", "pm_occurrence:F:2026-12-15", "pm_occurrence:F:2027-01-12",
        "pm_occurrence:P:2026-11-15", "pm_occurrence:P:2026-12-15", "pm_occurrence:P:2027-01-15",
        "pm_occurrence:R:2026-11-02", "pm_occurrence:R:2026-12-07", "pm_occurrence:R:2027-01-04",
    ]
    p = payloads(f)
    r = p["pm_occurrence:R:2026-11-02"]
    assert (r["subject"], r["type"], r["done"], r["due_date"]) == ("PM: Rr", "task", False, "2026-11-02")
    assert "Step 1<br>Step &lt;2&gt;" in r["note"] and "FREQ=MONTHLY;BYDAY=1MO" in r["note"]
    m = p["pm_next:M"]
    assert m["due_date"] == "2026-12-01" and "every 250 Hours" in m["note"] and "1200" in m["note"]
    assert set(f["org_ref"].to_list()) == {"asset:00042"} and set(f["owner_id"].to_list()) == {501}
    assert set(f["origin_id"].to_list()) == {"pm_schedule:R", "pm_schedule:P", "pm_schedule:F", "pm_schedule:M"}
    sa = out.set_aside.select("source_id", "reason_code", "message").rows()
    assert sa == [("pm_schedule:U", "recurrence_unparsed", "recurrence phrase 'Every blue moon' is not understood")]


def test_pm_whose_rule_can_never_occur_is_set_aside_not_dropped(ctx, owners):
    pm = pl.DataFrame({
        "pm_id": ["D", "Z"], "pm_name": ["Day 40", "Zero"], "asset_id": ["00042"] * 2, "trigger": ["Date", "Date"],
        "recurrence_rule": ["FREQ=MONTHLY;BYMONTHDAY=40", "RRULE:FREQ=DAILY;COUNT=0"], "frequency": [None, None],
        "every": [None, None], "meter_name": [None, None], "meter_interval": [None, None],
        "last_meter_reading": [None, None], "start_date": [date(2026, 1, 1)] * 2, "next_due": [None, None],
        "procedure": [None, None], "active": [True, True], "assigned_to_id": ["T1"] * 2,
    })
    out = _run(StagedInputs(pm_schedules=pm), ctx, owners)
    assert out.frame.height == 0
    sa = sorted(out.set_aside.select("source_id", "reason_code").rows())
    assert sa == [("pm_schedule:D", "recurrence_unparsed"), ("pm_schedule:Z", "recurrence_unparsed")]
    assert all("no date can come of it" in m for m in out.set_aside["message"].to_list())


@pytest.mark.parametrize("tz", ["America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "America/Havana",
                                "Asia/Beirut", "America/Santiago", "UTC"])
def test_labor_due_dates_by_offset_equal_row_by_row_conversion(tz: str):
    """The per-day offset path gives every row the same UTC due date and time as converting it on its
    own: every half hour of six years, in zones whose clocks change at 2 am, at midnight (Havana,
    Beirut, Santiago) and by half an hour (Lord Howe), plus blank and unreadable start times and a blank date."""
    days = pl.concat([pl.date_range(date(2020, 1, 1), date(2025, 12, 31), eager=True), pl.Series([None], dtype=pl.Date)])
    times = [f"{h % 12 or 12}:{m:02d} {'AM' if h < 12 else 'PM'}" for h in range(24) for m in (0, 30)] + [None, "soon"]
    df = pl.DataFrame({"work_date": days}).join(pl.DataFrame({"start_time": times}), how="cross")
    due_date, due_time = _utc_due(pl.col("work_date"), parse_start_time(pl.col("start_time")), tz)
    want = df.with_columns(due_date.alias("_due_date"), due_time.alias("_due_time"))
    got = with_local_due(df, tz, timed=True)
    assert got.equals(want)
    assert got["_due_time"].null_count() >= 2 * days.len()  # blank and unreadable (and, where clocks jump, non-existent)


def test_labor_due_dates_without_start_times_are_all_day():
    df = pl.DataFrame({"work_date": [date(2024, 3, 10), None], "start_time": ["2:30 AM", "9:00 AM"]})
    due_date, due_time = _utc_due(pl.col("work_date"), pl.lit(None, dtype=pl.Time), "America/Chicago")
    got = with_local_due(df, "America/Chicago", timed=False)
    assert got.equals(df.with_columns(due_date.alias("_due_date"), due_time.alias("_due_time")))
    assert got["_due_date"].to_list() == ["2024-03-10", None] and got["_due_time"].null_count() == 2
