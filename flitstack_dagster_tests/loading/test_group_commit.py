"""GroupCommitStore writes what LoadStore writes, from many threads at once, and a failing change
fails only its own caller."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest

from flitstack_dagster.loading.group_commit import GroupCommitStore
from flitstack_dagster.loading.store import LoadStore


def _land(store: LoadStore, i: int) -> None:
    sid = f"account:{i:04d}"
    store.begin_create("organization", sid, "run-1")
    store.record("run-1", "organization", sid, "create", 1000 + i, content_hash=f"h{i}",
                 payload={"name": f"Org {i}"}, after={"name": f"Org {i}"}, tokens=5)


def _state(con) -> tuple[list, list, int]:
    ids = con.execute("SELECT entity, source_id, pipedrive_id, content_hash, payload, created_by_run, last_run, state "
                      "FROM meta.id_map ORDER BY source_id").fetchall()
    audit = con.execute("SELECT run_key, entity, source_id, pipedrive_id, operation, before, after, tokens "
                        "FROM meta.audit_log ORDER BY source_id, operation").fetchall()
    pending = con.execute("SELECT count(*) FROM meta.pending_creates").fetchall()[0][0]
    return ids, audit, pending


def test_concurrent_writers_leave_the_same_id_map_and_audit_log_as_load_store():
    plain, grouped = duckdb.connect(), duckdb.connect()
    a, b = LoadStore(plain), GroupCommitStore(grouped)
    for i in range(60):
        _land(a, i)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: _land(b, i), range(60)))
    for store in (a, b):  # a delta: one update, then an unchanged record
        store.record("run-2", "organization", "account:0003", "update", 1003, content_hash="h3b",
                     payload={"name": "Org 3b"}, before={"name": "Org 3"}, after={"name": "Org 3b"}, tokens=5)
    assert _state(grouped) == _state(plain)
    ids, audit, pending = _state(grouped)
    assert len(ids) == 60 and pending == 0 and len(audit) == 61
    assert [r for r in ids if r[1] == "account:0003"][0][3:5] == ("h3b", '{"name": "Org 3b"}')


def test_a_pending_create_is_committed_before_begin_create_returns():
    con = duckdb.connect()
    store = GroupCommitStore(con)
    store.begin_create("deal", "work_order:1", "run-1")
    assert store.pending("deal") == {"work_order:1"}


def test_a_failing_change_fails_only_its_caller():
    con = duckdb.connect()
    store = GroupCommitStore(con)
    _land(store, 1)
    with pytest.raises(Exception):
        store.record("run-1", "organization", "account:0002", "create", "not a number",  # type: ignore[arg-type]
                     content_hash="h", payload={}, after={})
    _land(store, 3)
    assert set(store.id_map("organization")) == {"account:0001", "account:0003"}
