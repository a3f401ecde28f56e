from datetime import date

import polars as pl

from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.notes import shape_notes

from .conftest import payloads, utc


def test_notes_all_kinds(ctx):
    i = StagedInputs(
        status_log=pl.DataFrame({"log_id": ["S1", "S2"], "wo_number": ["WO-1", "WO-X"], "from_status": ["Open", None], "to_status": ["On Hold", "New"],
                                 "changed_at": [utc(2026, 2, 3, 4, 5, 6)] * 2, "changed_by_id": ["T1", None], "comment": ["waiting <parts>", None]}),
        contacts=pl.DataFrame({"contact_id": ["T1"], "first_name": ["Tim"], "last_name": ["Tech"]}),
        notes=pl.DataFrame({"note_id": ["N1"], "asset_id": ["00042"], "entry_type": ["Note"], "subject": ["S"], "body": ["a\nb"],
                            "internal": [True], "logged_at": [utc(2025, 1, 1)]}),
        pm_schedules=pl.DataFrame({"pm_id": ["PM1"], "pm_name": ["Grease"], "asset_id": ["00042"]}),
        pm_history=pl.DataFrame({"pm_event_id": ["E1"], "pm_id": ["PM1"], "due_date": [date(2025, 5, 1)], "completed_date": [utc(2025, 5, 2, 10)],
                                 "completed_by_id": ["T1"], "result": ["Pass"], "meter_reading": [12.0]}),
        asset_parts=pl.DataFrame({"asset_id": ["00042", "00042", "777"], "part_number": ["P1", "P2", "P1"], "qty_required": [1.0, 2.0, 1.0]}),
        inventory=pl.DataFrame({"part_number": ["P1", "P2"], "description": ["Filter", "<Belt>"], "unit_cost": [3.0, 4.0],
                                "qty_on_hand": [5.0, 6.0], "reorder_point": [1.0, 2.0]}),
    )
    desc = pl.DataFrame({"source_entity": ["work_order"], "source_id": ["work_order_description:WO-1"], "origin_id": ["work_order:WO-1"],
                         "kind": ["description"], "payload": ['{"content":"x"}'], "deal_ref": ["work_order:WO-1"]})
    out = shape_notes(i.status_log, i.notes, i.pm_history, i.pm_schedules, i.asset_parts, i.inventory, i.contacts, desc,
                      {"asset:00042"}, set(), {"work_order:WO-1"}, "USD", ctx)
    p = payloads(out.frame)
    rows = {r["source_id"]: r for r in out.frame.to_dicts()}
    assert out.frame["source_id"][0] == "work_order_description:WO-1"
    s1 = p["status_log:S1"]
    assert s1["add_time"] == "2026-02-03T04:05:06Z"
    assert "from <b>Open</b> to <b>On Hold</b> by Tim Tech" in s1["content"] and "waiting &lt;parts&gt;" in s1["content"]
    assert rows["status_log:S1"]["deal_ref"] == "work_order:WO-1"
    assert p["note:N1"]["content"].startswith("<b>Internal") and "a<br>b" in p["note:N1"]["content"]
    assert rows["note:N1"]["org_ref"] == "asset:00042"
    e1 = p["pm_history:E1"]
    assert e1["add_time"] == "2025-05-02T10:00:00Z" and "Grease" in e1["content"] and "Pass" in e1["content"] and "Tim Tech" in e1["content"]
    inv = p["asset_parts:00042"]["content"]
    assert "<td>P1</td><td>Filter</td>" in inv and "&lt;Belt&gt;" in inv and rows["asset_parts:00042"]["kind"] == "inventory"
    assert sorted(out.set_aside["source_id"].to_list()) == ["asset_part:777:P1", "status_log:S2"]


def test_unknown_entry_type_becomes_a_note_that_names_it(ctx):
    """An activity-log type the spec doesn't list (e.g. "Text Message") is kept as a note, not dropped."""
    i = StagedInputs(notes=pl.DataFrame({"note_id": ["N7", "N8"], "asset_id": ["00042", "00042"], "entry_type": ["Text Message", "Call"],
                          "subject": ["<Ping>", "Rang"], "body": ["on my way", "x"], "internal": [False, False],
                          "logged_at": [utc(2025, 1, 1)] * 2}))
    desc = pl.DataFrame(schema={"source_entity": pl.String, "source_id": pl.String, "origin_id": pl.String,
                                "kind": pl.String, "payload": pl.String, "deal_ref": pl.String})
    out = shape_notes(i.status_log, i.notes, i.pm_history, i.pm_schedules, i.asset_parts, i.inventory, i.contacts, desc, {"asset:00042"}, set(), set(), "USD", ctx)
    p = payloads(out.frame)
    assert set(p) == {"note:N7"}  # the call is an activity, not a note
    assert "Novo entry type: Text Message" in p["note:N7"]["content"] and "&lt;Ping&gt;" in p["note:N7"]["content"]
