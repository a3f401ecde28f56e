"""The typed metadata table: column types come from the values, source text stays one plain line."""

from flitstack_dagster.defs.metadata import table


def test_column_types_come_from_the_values():
    t = table([{"name": "Urgent", "count": 3, "confidence": 0.55, "decide": True, "note": None},
               {"name": "Low", "count": 2, "confidence": 1, "decide": False, "note": "a\nb"}])
    assert {c.name: c.type for c in t.schema.columns} == {
        "name": "string", "count": "int", "confidence": "float", "decide": "bool", "note": "string"}
    assert [r.data["note"] for r in t.records] == [None, "a b"]


def test_mixed_values_are_text_and_the_limit_and_columns_hold():
    t = table([{"v": 1}, {"v": "x"}, {"v": 3}], limit=2)
    assert t.schema.columns[0].type == "string" and [r.data["v"] for r in t.records] == ["1", "x"]
    empty = table([], columns=["source_id", "payload"])
    assert [c.name for c in empty.schema.columns] == ["source_id", "payload"] and not empty.records
