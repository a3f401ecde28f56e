"""The id map cannot lie: one Pipedrive id per source record and entity, enforced by the store (real DuckDB)."""

from __future__ import annotations

import duckdb
import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.loading.group_commit import GroupCommitStore
from flitstack_dagster.loading.marker import marked_file_name, marker, marker_of, with_marker, without_marker
from flitstack_dagster.loading.store import (
    IdMapConflict,
    LoadStore,
    ensure_schema,
    require_one_source_per_id,
    shared_ids,
)

RUN = "full-x"


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def rows(con) -> list[tuple]:
    return con.execute("SELECT entity, source_id, pipedrive_id FROM meta.id_map ORDER BY ALL").fetchall()


def audit_count(con) -> int:
    return con.execute("SELECT count(*) FROM meta.audit_log").fetchall()[0][0]


@pytest.mark.parametrize("store_cls", [LoadStore, GroupCommitStore])
@pytest.mark.parametrize("operation", ["create", "adopt"])
def test_an_id_the_map_holds_for_another_record_stops_with_the_clear_message(con, store_cls, operation):
    store = store_cls(con)
    store.record(RUN, "deal", "work_order:A", "create", 10, content_hash="h", payload={"title": "A"})
    store.begin_create("deal", "work_order:B", RUN)
    before = audit_count(con)
    with pytest.raises(IdMapConflict) as e:
        store.record(RUN, "deal", "work_order:B", operation, 10, content_hash="h", payload={"title": "B"})
    what = "the create" if operation == "create" else "the look-up"
    assert str(e.value) == (
        f"Pipedrive answered {what} of deal work_order:B with id 10, which the id map already holds for "
        "work_order:A: the account lost records it had acknowledged, or someone else writes to it. "
        f"Run `flitstack repair {RUN}` to rebuild the id map from what the account holds.")
    assert isinstance(e.value, UserError)
    assert rows(con) == [("deal", "work_order:A", 10)]  # no second mapping
    assert audit_count(con) == before  # nothing half-written
    assert store.pending("deal") == {"work_order:B"}  # still looked up before any new create


def test_the_same_id_in_another_entity_and_a_new_id_for_the_same_record_are_fine(con):
    store = LoadStore(con)
    store.record(RUN, "deal", "work_order:A", "create", 10)
    store.record(RUN, "note", "status_log:1", "create", 10)  # ids are per entity
    store.record(RUN, "deal", "work_order:A", "create", 11)  # re-created after a rollback: replaces its row
    store.record(RUN, "deal", "work_order:B", "create", 10)  # 10 is free again
    assert rows(con) == [("deal", "work_order:A", 11), ("deal", "work_order:B", 10), ("note", "status_log:1", 10)]


def test_group_commit_refuses_two_records_with_one_id_in_one_batch(con):
    store = GroupCommitStore(con)
    store._queue = []
    from flitstack_dagster.loading.group_commit import _Change

    a = _Change("record", {"run_key": RUN, "entity": "deal", "source_id": "work_order:A", "operation": "create",
                           "pipedrive_id": 7, "content_hash": None, "payload": None, "before": None, "after": None,
                           "tokens": 0})
    b = _Change("record", {**a.args, "source_id": "work_order:B"})
    with store._lock:
        store._commit([a, b])
    assert a.error is None and isinstance(b.error, IdMapConflict)  # the first lands on its own, the second stops
    assert rows(con) == [("deal", "work_order:A", 7)]


def test_the_unique_index_backs_the_check_even_for_a_raw_insert(con):
    ensure_schema(con)
    LoadStore(con).record(RUN, "deal", "work_order:A", "create", 10)
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO meta.id_map VALUES ('deal', 'work_order:B', 10, NULL, NULL, 'r', 'r', 'active', now())")


def test_an_existing_database_that_already_lies_is_named_not_crashed_and_migrates_once_repaired(con):
    # the id map as it was before the unique index: no index, one id for two records
    con.execute("CREATE SCHEMA meta")
    con.execute("""CREATE TABLE meta.id_map (
        entity VARCHAR NOT NULL, source_id VARCHAR NOT NULL, pipedrive_id BIGINT NOT NULL,
        content_hash VARCHAR, payload VARCHAR, created_by_run VARCHAR NOT NULL, last_run VARCHAR NOT NULL,
        state VARCHAR NOT NULL DEFAULT 'active', updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (entity, source_id))""")
    con.execute("INSERT INTO meta.id_map VALUES ('deal', 'work_order:A', 5, NULL, NULL, 'r', 'r', 'active', now()), "
                "('deal', 'work_order:B', 5, NULL, NULL, 'r', 'r', 'active', now())")
    store = LoadStore(con)  # ensure_schema: no crash on the bad data
    ensure_schema(con)  # idempotent
    assert [str(s) for s in shared_ids(con)] == ["deal 5 (work_order:A, work_order:B)"]
    with pytest.raises(UserError, match=r"one Pipedrive id for several source records \(deal 5 \(work_order:A, "
                                        r"work_order:B\)\)\. Run `flitstack repair full-x`"):
        require_one_source_per_id(con, RUN)
    store.forget_mapping(RUN, "deal", "work_order:B", 5, by="repair:full-x")
    ensure_schema(con)
    require_one_source_per_id(con, RUN)
    with pytest.raises(duckdb.ConstraintException):  # the index exists now
        con.execute("INSERT INTO meta.id_map VALUES ('deal', 'work_order:C', 5, NULL, NULL, 'r', 'r', 'active', now())")


def test_forget_mapping_retires_the_create_so_no_rollback_deletes_that_id_for_it(con):
    store = LoadStore(con)
    store.record(RUN, "deal", "work_order:A", "create", 10)
    store.forget_mapping(RUN, "deal", "work_order:A", 10, by="repair:full-x")
    assert rows(con) == []
    live = con.execute("SELECT operation FROM meta.audit_log WHERE rolled_back_by IS NULL").fetchall()
    assert live == []
    ops = con.execute("SELECT operation, rolled_back_by FROM meta.audit_log ORDER BY seq").fetchall()
    assert ops == [("create", "repair:full-x"), ("forget", "repair:full-x")]


def test_the_marker_is_short_stable_and_found_again():
    m = marker("note", "status_log:1")
    assert m == marker("note", "status_log:1") and m != marker("activity", "status_log:1")
    assert len(m) == len("[novo:]") + 16
    text = with_marker("note", "status_log:1", "<b>Done</b>")
    assert text == f"<b>Done</b><p>{m}</p>" and with_marker("note", "status_log:1", text) == text
    assert marker_of("note", {"content": text}) == m and without_marker(text) == "<b>Done</b>"
    assert marked_file_name("file", "attachment:1", "pump manual.v2.pdf") == \
        f"pump manual.v2 {marker('file', 'attachment:1')}.pdf"
    assert marker_of("file", {"name": marked_file_name("file", "attachment:1", "README")}) == marker("file", "attachment:1")
    assert marker_of("activity", {"note": None}) is None


def test_finders_match_by_marker_first_and_never_take_another_records_marker():
    from types import SimpleNamespace as R

    from flitstack_dagster.loading.loader import by_marker

    row = {"source_id": "status_log:1"}
    mine, other = with_marker("note", "status_log:1", "Done"), with_marker("note", "status_log:2", "Done")
    records = [R(id=3, content="Done"), R(id=5, content=other), R(id=9, content=mine)]
    alike = lambda n: without_marker(n.content) == "Done"  # noqa: E731
    assert by_marker("note", row, records, alike) == [9, 3]  # marked first; the unmarked look-alike after
    assert by_marker("note", {"source_id": "status_log:3"}, records, alike) == [3]
