"""Roll back one migration run: reverse its audit rows so Pipedrive and the id map are as before it.

Reversed in reverse FK order (files, notes, activities, deals, persons, relationships,
organizations) and, for one record, newest row first:

* `create` -> DELETE the record (a 404/410 means it is already gone: done).
* `adopt`  -> the run found the record by lookup instead of creating it. If an earlier run that is
  still standing created it (its audit trail says so), it is handed back to that run: no request,
  the id map names that run again. Otherwise the adopt was this run finding its own create whose
  answer was lost (crash, timeout), so the record is this run's and is deleted like a create.
* `update` -> PATCH the `before` values back; the id map gets the previous payload and content
  hash, so the next load compares against what is really in Pipedrive. An update of a record this
  rollback deletes anyway is only marked.
* `flag`   -> PATCH the `before` values back (if any) and set the id-map state back
  (`before["state"]`, default `active`).
* `skip`   -> nothing to undo; marked.
* `delete` -> Pipedrive cannot undelete through the API: reported as a warning, marked.

Every reversal is written as it happens, in one transaction with its effect on the id map: a new
audit row under `rollback:<run>` and `rolled_back_by` set on the original row. A rollback that is
interrupted resumes where it stopped; rolling back twice changes nothing the second time.

A run that a later, still-standing run built on (touched the same records, or created records that
reference this run's records) is refused unless those are rolled back first, or `cascade=True`,
which rolls them back first, newest first.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from flitstack_dagster.duck import has_table
from flitstack_dagster.errors import UserError
from flitstack_dagster.loading.store import AuditRow, LoadStore, audit_rows, ensure_schema
from flitstack_dagster.pipedrive.errors import PipedriveError

log = logging.getLogger(__name__)

FK_ORDER = ("organization", "org_relationship", "person", "deal", "activity", "note", "file")
REVERSE_ORDER = tuple(reversed(FK_ORDER))
# shaped table per entity (where a run's content hashes live); same as loading.run.SHAPED_TABLE
SHAPED_TABLE = {
    "organization": "pd_organizations", "org_relationship": "pd_org_relationships", "person": "pd_persons",
    "deal": "pd_deals", "activity": "pd_activities", "note": "pd_notes", "file": "pd_files",
}
# client method suffix per entity
CLIENT_NAME = {"org_relationship": "organization_relationship"}
# request fields that reference another record -> the entity they point at
REFERENCE_FIELDS = {
    "org_id": "organization", "rel_owner_org_id": "organization", "rel_linked_org_id": "organization",
    "person_id": "person", "deal_id": "deal",
}
ROLLBACK_PREFIX = "rollback:"
GONE = (404, 410)

Progress = Callable[[str], None]


class RollbackError(UserError):
    """A rollback that cannot start; the message says why and what to do."""


class RollbackRefused(RollbackError):
    """Later runs built on this one; they must be rolled back first (or use cascade)."""

    def __init__(self, run_key: str, dependents: dict[str, int]):
        self.run_key = run_key
        self.dependents = dependents
        listed = ", ".join(f"{r} ({n} record{'s' if n != 1 else ''})" for r, n in dependents.items())
        super().__init__(
            f"cannot roll back {run_key}: later runs built on it: {listed}. "
            f"Roll those back first (newest first), or roll back with --cascade to do it in one go."
        )


@dataclass
class RunRollback:
    """What rolling back one run did."""

    run_key: str
    deleted: int = 0
    restored: int = 0
    handed_back: int = 0
    already_gone: int = 0
    marked: int = 0  # rows with nothing to undo (skips, updates of records deleted here)
    warnings: list[str] = field(default_factory=list)
    already_rolled_back: bool = False


@dataclass
class RollbackResult:
    run_key: str
    runs: list[RunRollback] = field(default_factory=list)  # in the order rolled back (dependents first)
    tokens: int = 0
    seconds: float = 0.0

    def _sum(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.runs)

    @property
    def deleted(self) -> int:
        return self._sum("deleted")

    @property
    def restored(self) -> int:
        return self._sum("restored")

    @property
    def handed_back(self) -> int:
        return self._sum("handed_back")

    @property
    def already_gone(self) -> int:
        return self._sum("already_gone")

    @property
    def warnings(self) -> list[str]:
        return [w for r in self.runs for w in r.warnings]

    @property
    def changed_anything(self) -> bool:
        return any(r.deleted or r.restored or r.handed_back or r.already_gone or r.marked for r in self.runs)

    def summary(self) -> str:
        runs = ", ".join(r.run_key for r in self.runs if not r.already_rolled_back) or "nothing"
        text = (f"rolled back {runs}: {self.deleted} deleted, {self.restored} restored, "
                f"{self.handed_back} handed back to earlier runs, {self.already_gone} already gone; "
                f"{self.tokens:,} tokens, {self.seconds:.1f} s")
        if not self.changed_anything:
            text = f"{self.run_key} is already rolled back; nothing changed"
        if self.warnings:
            text += f"; {len(self.warnings)} warning(s)"
        return text


def rollback_key(run_key: str) -> str:
    return f"{ROLLBACK_PREFIX}{run_key}"


# -- which runs stand on which --------------------------------------------------------------------------


def run_order(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Standing runs -> seq of their first standing audit row (the order runs happened in)."""
    rows = con.execute(
        "SELECT run_key, min(seq) FROM meta.audit_log WHERE rolled_back_by IS NULL AND run_key NOT LIKE ? "
        "GROUP BY run_key", [f"{ROLLBACK_PREFIX}%"],
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def dependents(con: duckdb.DuckDBPyConnection, run_key: str) -> dict[str, int]:
    """Later standing runs that built on `run_key` -> how many of its records they depend on.

    Built on = a standing audit row (any operation, skips included: a delta that skipped a record
    relies on it) for one of this run's records, or a created record whose body references one of
    the records this run created.
    """
    order = run_order(con)
    if run_key not in order:
        return {}
    later = [r for r, first in order.items() if first > order[run_key]]
    if not later:
        return {}
    touched = con.execute(
        """SELECT a.run_key, count(DISTINCT (a.entity, a.pipedrive_id))
           FROM meta.audit_log a
           JOIN (SELECT DISTINCT entity, pipedrive_id FROM meta.audit_log
                 WHERE run_key = ? AND rolled_back_by IS NULL AND pipedrive_id IS NOT NULL) mine
             USING (entity, pipedrive_id)
           WHERE a.rolled_back_by IS NULL AND list_contains(?, a.run_key)
           GROUP BY a.run_key""",
        [run_key, later],
    ).fetchall()
    out = {r[0]: int(r[1]) for r in touched}
    created: dict[str, set[int]] = {}
    for entity, pid in con.execute(
        "SELECT entity, pipedrive_id FROM meta.audit_log WHERE run_key = ? AND rolled_back_by IS NULL "
        "AND operation IN ('create', 'adopt') AND pipedrive_id IS NOT NULL", [run_key],
    ).fetchall():
        created.setdefault(entity, set()).add(int(pid))
    if created:
        for other, raw in con.execute(
            "SELECT run_key, after FROM meta.audit_log WHERE rolled_back_by IS NULL AND list_contains(?, run_key) "
            "AND operation IN ('create', 'adopt') AND after IS NOT NULL", [later],
        ).fetchall():
            body = json.loads(raw)
            if any(isinstance(v, int) and v in created.get(REFERENCE_FIELDS[k], ())
                   for k, v in body.items() if k in REFERENCE_FIELDS):
                out[other] = out.get(other, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: order[kv[0]]))


def _cascade_order(con: duckdb.DuckDBPyConnection, run_key: str) -> list[str]:
    """Every standing run that (transitively) built on `run_key`, newest first."""
    order = run_order(con)
    seen: set[str] = set()
    todo = [run_key]
    while todo:
        for d in dependents(con, todo.pop()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return sorted(seen, key=lambda r: order[r], reverse=True)


# -- rollback -------------------------------------------------------------------------------------------


def rollback_run(
    con: duckdb.DuckDBPyConnection, client, run_key: str, *, cascade: bool = False, progress: Progress | None = None,
) -> RollbackResult:
    """Reverse `run_key`'s audit rows in Pipedrive and the id map (see the module docstring)."""
    say = progress or (lambda msg: log.info(msg))
    ensure_schema(con)
    _check_known(con, run_key)
    started, tokens0 = time.monotonic(), client.tokens_spent
    result = RollbackResult(run_key)
    deps = dependents(con, run_key)
    if deps and not cascade:
        raise RollbackRefused(run_key, deps)
    chain = _cascade_order(con, run_key) if deps else []
    if chain:
        say(f"cascade: rolling back {', '.join(chain)} first (newest first)")
    store = LoadStore(con)
    for key in [*chain, run_key]:
        result.runs.append(_rollback_one(con, store, client, key, say))
    result.tokens = client.tokens_spent - tokens0
    result.seconds = time.monotonic() - started
    return result


def _check_known(con: duckdb.DuckDBPyConnection, run_key: str) -> None:
    if run_key.startswith(ROLLBACK_PREFIX):
        raise RollbackError(f"'{run_key}' is a rollback, not a migration run; a rollback cannot be rolled back")
    has_rows = bool(con.execute("SELECT 1 FROM meta.audit_log WHERE run_key = ? LIMIT 1", [run_key]).fetchall())
    if has_rows:
        return
    registered = []
    if has_table(con, "meta", "migration_runs"):
        registered = [r[0] for r in con.execute("SELECT run_key FROM meta.migration_runs ORDER BY registered_at").fetchall()]
    if run_key in registered:
        raise RollbackError(f"nothing to roll back: run {run_key} has not loaded anything into Pipedrive")
    known = ", ".join(registered) or "none registered yet"
    raise RollbackError(f"unknown migration run '{run_key}' (known runs: {known})")


@dataclass
class _Job:
    """One run's rollback: everything the per-record workers share (reads are done before they start)."""

    store: LoadStore
    client: Any
    by: str
    out: RunRollback
    owners: dict[int, str | None]  # adopt seq -> standing earlier run that owns the record
    doomed: set[tuple[str, int | None]]  # records this rollback deletes
    previous: dict[int, tuple[str | None, str | None]]  # update seq -> (run whose values return, its hash)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self.out, name, getattr(self.out, name) + 1)

    def warn(self, msg: str) -> None:
        with self.lock:
            self.out.warnings.append(msg)


def _rollback_one(con: duckdb.DuckDBPyConnection, store: LoadStore, client, run_key: str, say: Progress) -> RunRollback:
    out = RunRollback(run_key)
    by = rollback_key(run_key)
    rows = audit_rows(con, run_key)
    if not rows:
        out.already_rolled_back = True
        say(f"{run_key}: already rolled back")
        return out
    out.marked += store.mark_rolled_back(run_key, ["skip"], by)
    rows = [r for r in rows if r.operation != "skip"]
    say(f"{run_key}: {len(rows):,} operations to reverse")
    owners = {r.seq: _earlier_owner(con, r) for r in rows if r.operation == "adopt"}
    doomed = {(r.entity, r.pipedrive_id) for r in rows
              if r.operation == "create" or (r.operation == "adopt" and owners[r.seq] is None)}
    job = _Job(store, client, by, out, owners, doomed, _previous_versions(con, run_key))
    entities = sorted({r.entity for r in rows}, key=lambda e: REVERSE_ORDER.index(e) if e in REVERSE_ORDER else -1)
    for entity in entities:
        _reverse_entity(job, run_key, entity, [r for r in rows if r.entity == entity], say)
    pending = con.execute("SELECT entity, source_id FROM meta.pending_creates WHERE run_key = ? ORDER BY ALL",
                          [run_key]).fetchall()
    if pending:  # a create whose answer never came: it may exist in Pipedrive with no audit row to reverse
        listed = ", ".join(f"{e} {sid}" for e, sid in pending[:10]) + (" …" if len(pending) > 10 else "")
        out.warnings.append(f"{len(pending)} create(s) of {run_key} never got an answer ({listed}); they may exist "
                            "in Pipedrive: load the partition again to resolve them, then roll back again")
    for w in out.warnings:
        say(f"warning: {w}")
    say(f"{run_key}: {out.deleted} deleted, {out.restored} restored, {out.handed_back} handed back, "
        f"{out.already_gone} already gone")
    return out


def _reverse_entity(job: _Job, run_key: str, entity: str, rows: list[AuditRow], say: Progress) -> None:
    """One entity's rows, record by record (concurrently); one record's rows newest first."""
    groups: dict[str, list[AuditRow]] = {}
    for r in sorted(rows, key=lambda r: r.seq, reverse=True):
        groups.setdefault(r.source_id, []).append(r)
    done, last = [0], [time.monotonic()]

    def reverse_record(group: list[AuditRow]) -> None:
        for row in group:
            _reverse(job, row)
        with job.lock:
            done[0] += 1
            if time.monotonic() - last[0] >= 5:
                last[0] = time.monotonic()
                say(f"{run_key}: {entity}: {done[0]:,}/{len(groups):,} records reversed")

    _map(job.client, reverse_record, list(groups.values()))
    say(f"{run_key}: {entity}: {len(groups):,} records reversed")


def _map(client, fn: Callable[[Any], None], items: list[Any]) -> None:
    mapper = getattr(client, "map_concurrent", None)
    if mapper is None:
        for it in items:
            fn(it)
    else:
        mapper(fn, items)


def _thread_tokens(client) -> int:
    """Tokens this thread has spent so far (0 for a client that does not count per thread)."""
    counter = getattr(client, "thread_tokens", None)
    return counter() if callable(counter) else 0


def _reverse(job: _Job, row: AuditRow) -> None:
    op, entity, sid, pid, by = row.operation, row.entity, row.source_id, row.pipedrive_id, job.by
    owner = job.owners.get(row.seq)
    t0 = _thread_tokens(job.client)

    def tokens() -> int:
        return _thread_tokens(job.client) - t0

    store = job.store
    if op == "create" or (op == "adopt" and owner is None):
        gone = _call_gone_ok(job.client, "delete", entity, pid)
        store.record_reversal(row.seq, by, entity, sid, operation="delete", pipedrive_id=pid, tokens=tokens(),
                              before=row.after, after={"already_gone": True} if gone else None, drop_mapping=True)
        job.count("already_gone" if gone else "deleted")
    elif op == "adopt":
        store.record_reversal(row.seq, by, entity, sid, operation="restore", pipedrive_id=pid,
                              after={"handed_back_to": owner},
                              mapping_changes={"created_by_run": owner, "last_run": owner})
        job.count("handed_back")
    elif op in ("update", "flag", "restore"):
        if (entity, pid) in job.doomed:  # this rollback deletes the record anyway
            store.record_reversal(row.seq, by, entity, sid)
            job.count("marked")
            return
        before = dict(row.before or {})
        state = before.pop("state", "active") if op == "flag" else None
        if before and _call_gone_ok(job.client, "update", entity, pid, before):
            job.warn(f"{entity} {sid} (Pipedrive id {pid}) is no longer in Pipedrive; its {op} could not be undone")
        current = store.mapping(entity, sid)
        changes: dict[str, Any] = {}
        if current is not None and current.pipedrive_id == pid:
            changes["payload"] = _apply(current.payload, before)
            if op == "flag":
                changes["state"] = state
            else:
                prev_run, prev_hash = job.previous.get(row.seq, (None, None))
                changes["content_hash"] = prev_hash
                if prev_run:
                    changes["last_run"] = prev_run
        store.record_reversal(row.seq, by, entity, sid, operation="restore", pipedrive_id=pid, tokens=tokens(),
                              before=row.after, after=row.before, mapping_changes=changes or None)
        job.count("restored")
    elif op == "delete":
        job.warn(f"{entity} {sid} (Pipedrive id {pid}) was deleted by {row.run_key}; Pipedrive cannot undelete "
                 "it through the API — reload the earlier run to create it again")
        store.record_reversal(row.seq, by, entity, sid)
        job.count("marked")
    else:
        store.record_reversal(row.seq, by, entity, sid)
        job.count("marked")


def _call_gone_ok(client, action: str, entity: str, pid: int | None, changes: dict[str, Any] | None = None) -> bool:
    """DELETE or PATCH one record; True when Pipedrive says it is not there (404/410) — done either way."""
    if pid is None:
        return True
    method = getattr(client, f"{action}_{CLIENT_NAME.get(entity, entity)}")
    try:
        method(int(pid)) if changes is None else method(int(pid), changes)
    except PipedriveError as e:
        if e.status in GONE:
            return True
        raise
    return False


def _apply(payload: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The payload with `before` put back (custom fields key by key)."""
    out = json.loads(json.dumps(payload))
    for k, v in before.items():
        if k == "custom_fields" and isinstance(v, dict):
            out["custom_fields"] = {**(out.get("custom_fields") or {}), **v}
        else:
            out[k] = v
    return out


def _earlier_owner(con: duckdb.DuckDBPyConnection, row: AuditRow) -> str | None:
    """The standing earlier run that created or adopted this record, if any."""
    found = con.execute(
        "SELECT run_key FROM meta.audit_log WHERE entity = ? AND pipedrive_id = ? AND seq < ? AND run_key <> ? "
        "AND rolled_back_by IS NULL AND operation IN ('create', 'adopt') AND run_key NOT LIKE ? "
        "ORDER BY seq DESC LIMIT 1",
        [row.entity, row.pipedrive_id, row.seq, row.run_key, f"{ROLLBACK_PREFIX}%"],
    ).fetchall()
    return found[0][0] if found else None


def _previous_versions(con: duckdb.DuckDBPyConnection, run_key: str) -> dict[int, tuple[str | None, str | None]]:
    """For each standing update of the run: the run whose values the record held before it (the
    latest standing write before it) and that run's content hash for the record."""
    rows = con.execute(
        """SELECT u.seq, u.entity, u.source_id,
                  (SELECT p.run_key FROM meta.audit_log p
                   WHERE p.entity = u.entity AND p.source_id = u.source_id AND p.seq < u.seq
                     AND p.rolled_back_by IS NULL AND p.operation IN ('create', 'adopt', 'update')
                   ORDER BY p.seq DESC LIMIT 1)
           FROM meta.audit_log u
           WHERE u.run_key = ? AND u.rolled_back_by IS NULL AND u.operation IN ('update', 'restore')""",
        [run_key],
    ).fetchall()
    return {seq: (prev, _shaped_hash(con, entity, sid, prev) if prev else None) for seq, entity, sid, prev in rows}


def _shaped_hash(con: duckdb.DuckDBPyConnection, entity: str, source_id: str, run_key: str) -> str | None:
    """The content hash the record had in `run_key`'s shaped rows (None if unknown: the next load
    then compares payloads field by field and PATCHes only real differences)."""
    table = SHAPED_TABLE.get(entity)
    if table is None or not has_table(con, "shaped", table):
        return None
    try:
        found = con.execute(
            f"SELECT content_hash FROM shaped.{table} WHERE run_key = ? AND source_id = ? LIMIT 1", [run_key, source_id]
        ).fetchall()
    except duckdb.Error:
        return None
    return found[0][0] if found else None
