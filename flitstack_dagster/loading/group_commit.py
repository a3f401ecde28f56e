"""A LoadStore whose concurrent writers share transactions (group commit).

`LoadStore` commits each landed record on its own: two DuckDB transactions per record, one at a
time under the store's lock. On a busy 2-core machine that is ~100 ms a record, which caps a load
at ~10 records/s — below what even Growth's burst limit allows (20 requests/s). Here a writer
queues its change and the first writer to get the lock commits everything queued, with one
statement per table. Every call still returns only once its change is committed, so a kill loses
nothing the caller was told had landed (the guarantee `loader.py` relies on).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from flitstack_dagster.loading.store import UPSERT_MAPPING, IdMapConflict, LoadStore, _dump, _now, holder_of

GROUPED = ("create", "adopt", "update")


@dataclass
class _Change:
    kind: str  # "pending" or "record"
    args: dict[str, Any]
    done: bool = False
    error: BaseException | None = None
    at: Any = field(default_factory=_now)


class GroupCommitStore(LoadStore):
    def __init__(self, con: duckdb.DuckDBPyConnection):
        super().__init__(con)
        self._queue: list[_Change] = []
        self._queue_lock = threading.Lock()

    def begin_create(self, entity: str, source_id: str, run_key: str) -> None:
        self._submit(_Change("pending", {"entity": entity, "source_id": source_id, "run_key": run_key}))

    def record(self, run_key: str, entity: str, source_id: str, operation: str, pipedrive_id: int | None, *,
               content_hash: str | None = None, payload: dict[str, Any] | None = None,
               before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, tokens: int = 0,
               state: str = "active") -> None:
        if operation not in GROUPED or state != "active":
            return super().record(run_key, entity, source_id, operation, pipedrive_id, content_hash=content_hash,
                                  payload=payload, before=before, after=after, tokens=tokens, state=state)
        self._submit(_Change("record", {
            "run_key": run_key, "entity": entity, "source_id": source_id, "operation": operation,
            "pipedrive_id": pipedrive_id, "content_hash": content_hash, "payload": _dump(payload),
            "before": _dump(before), "after": _dump(after), "tokens": tokens}))

    # -- group commit ----------------------------------------------------------------------------

    def _submit(self, change: _Change) -> None:
        with self._queue_lock:
            self._queue.append(change)
        with self._lock:  # whoever holds the lock commits every change queued so far
            if not change.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if change.error is not None:
            raise change.error

    def _commit(self, batch: list[_Change]) -> None:
        try:
            self._write(batch)
        except Exception:
            if len(batch) == 1:
                batch[0].error = _raised()
                batch[0].done = True
                return
            for one in batch:  # find the change that failed; the others land on their own
                self._commit([one])
            return
        for c in batch:
            c.done = True

    def _write(self, batch: list[_Change]) -> None:
        con = self.con
        pending = [c for c in batch if c.kind == "pending"]
        records = [c for c in batch if c.kind == "record"]
        keys = [(c.args["entity"], c.args["source_id"]) for c in records]
        if len(set(keys)) != len(keys):
            raise ValueError("one record twice in a batch")  # committed one by one instead
        con.execute("BEGIN")
        try:
            if pending:
                con.register("_gc_pending", pl.DataFrame(
                    {"entity": [c.args["entity"] for c in pending], "source_id": [c.args["source_id"] for c in pending],
                     "run_key": [c.args["run_key"] for c in pending], "started_at": [c.at for c in pending]}))
                con.execute("INSERT OR REPLACE INTO meta.pending_creates "
                            "SELECT entity, source_id, run_key, started_at FROM _gc_pending")
            if records:
                cols = ("run_key", "entity", "source_id", "operation", "pipedrive_id", "content_hash", "payload",
                        "before", "after", "tokens")
                frame = pl.DataFrame({k: [c.args[k] for c in records] for k in cols} | {"stamped": [c.at for c in records]},
                                     schema_overrides={"pipedrive_id": pl.Int64, "tokens": pl.Int64,
                                                       "content_hash": pl.String, "payload": pl.String,
                                                       "before": pl.String, "after": pl.String})
                con.register("_gc_records", frame)
                con.execute(
                    "INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, before, after, "
                    "tokens, recorded_at) SELECT run_key, entity, source_id, pipedrive_id, operation, before, after, "
                    "tokens, stamped FROM _gc_records")
                con.execute(
                    "INSERT INTO meta.id_map SELECT entity, source_id, pipedrive_id, content_hash, payload, "
                    f"run_key, run_key, 'active', stamped FROM _gc_records WHERE operation IN ('create', 'adopt') "
                    f"{UPSERT_MAPPING}")
                con.execute(
                    "UPDATE meta.id_map AS m SET content_hash = coalesce(r.content_hash, m.content_hash), "
                    "payload = coalesce(r.payload, m.payload), last_run = r.run_key, state = 'active', "
                    "updated_at = r.stamped FROM _gc_records AS r WHERE r.operation = 'update' "
                    "AND m.entity = r.entity AND m.source_id = r.source_id")
                con.execute(
                    "DELETE FROM meta.pending_creates AS p USING _gc_records AS r "
                    "WHERE r.operation IN ('create', 'adopt') AND p.entity = r.entity AND p.source_id = r.source_id")
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            if records and isinstance(exc, duckdb.ConstraintException):  # the unique Pipedrive id: whose is it
                _refuse_shared_ids(con, records)
            raise
        finally:
            for name in ("_gc_pending", "_gc_records"):
                try:
                    con.unregister(name)
                except Exception:  # noqa: BLE001 - not registered in this batch
                    pass


def _refuse_shared_ids(con: duckdb.DuckDBPyConnection, records: list[_Change]) -> None:
    """IdMapConflict when a create or adopt of the batch has an id the map (or the batch) holds for
    another record: asked only once the unique index refused the batch."""
    seen: dict[tuple[str, int], str] = {}
    for c in records:
        a = c.args
        if a["operation"] not in ("create", "adopt") or a["pipedrive_id"] is None:
            continue
        key = (a["entity"], int(a["pipedrive_id"]))
        other = seen.get(key) or holder_of(con, a["entity"], key[1], a["source_id"])
        if other is not None and other != a["source_id"]:
            raise IdMapConflict(a["run_key"], a["entity"], a["source_id"], key[1], other, operation=a["operation"])
        seen[key] = a["source_id"]


def _raised() -> BaseException:
    import sys

    exc = sys.exc_info()[1]
    assert exc is not None
    return exc


__all__ = ["GroupCommitStore"]
