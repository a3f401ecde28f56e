"""The field-level diff of a record plan's folded facts: one row per fact, found by its source id on
its line where the plan put it."""

from flitstack_dagster.verification.verify import _holds_lines, _line_rows

TEXT = ("[status_log:S1] 2026-01-02 08:00:00 UTC · Status changed · to: Open\n"
        "[status_log:S2] 2026-01-03 09:30:00 UTC · Status changed · from: Open · to: Completed")


def _rows(entity, expected, actual, found=True):
    return {r["source_id"]: r for r in _line_rows(entity, {"source_id": "work_order:WO-1"}, 7, "Novo Timeline",
                                                  expected, actual, found, [], "full-1")}


def test_each_folded_fact_is_a_row_of_its_own():
    rows = _rows("deal", TEXT, TEXT)
    assert set(rows) == {"status_log:S1", "status_log:S2"}
    assert {r["outcome"] for r in rows.values()} == {"match"}
    assert rows["status_log:S2"]["field"] == "Novo Timeline line"
    assert rows["status_log:S2"]["expected"].startswith("[status_log:S2] 2026-01-03 09:30:00 UTC")
    assert "work_order:WO-1 (#7)" in rows["status_log:S2"]["note"]


def test_a_missing_changed_or_extra_line_is_reported_on_its_fact():
    changed = TEXT.replace("09:30:00", "09:31:00").split("\n")[1] + "\n[note:N9] 2026-01-04 10:00:00 UTC · Activity log: Note"
    rows = _rows("deal", TEXT, changed)
    assert rows["status_log:S1"]["outcome"] == "missing"
    assert rows["status_log:S2"]["outcome"] == "mismatch"  # a wrong timestamp is a wrong fact
    assert rows["note:N9"]["outcome"] == "mismatch" and rows["note:N9"]["expected"] is None


def test_a_timeline_note_is_read_as_the_reader_sees_it():
    html = "<b>Work order timeline (from Novo)</b><br>" + TEXT.replace("\n", "<br>").replace("·", "&middot;")
    rows = _rows("note", html, html + "<p>[novo:0123456789abcdef]</p>")
    assert {r["outcome"] for r in rows.values()} == {"match"} and len(rows) == 2
    assert rows["status_log:S1"]["field"] == "timeline line"


def test_which_fields_hold_lines():
    assert _holds_lines("deal", {}, "Novo Labor", ("custom_fields", "abc"))
    assert not _holds_lines("deal", {}, "Description", ("custom_fields", "abc"))
    assert _holds_lines("note", {"kind": "timeline"}, "content", ("content",))
    assert not _holds_lines("note", {"kind": "status_change"}, "content", ("content",))
