"""Roll back one migration run: reverse its audit rows so Pipedrive and the id map are as before it.

Reversed in reverse FK order (files, notes, activities, deals, persons, relationships,
organizations) and, for one record, newest row first:

* `create` -> DELETE the record (Pipedrive's own record-not-found answer means it is already gone;
  any other error, an HTML 404 from a wrong URL included, stops the rollback).
* `adopt`  -> the run found the record by lookup instead of creating it. If an earlier run that is
  still standing created it (its audit trail says so), it is handed back to that run: no request,
  the id map names that run again. Otherwise the adopt was this run finding its own create whose
  answer was lost (crash, timeout), so the record is this run's and is deleted like a create.
* `update` -> PATCH the `before` values back; the id map gets the previous payload and content
  hash, so the next load compares against what is really in Pipedrive. An update of a record this
  rollback deletes anyway is only marked.
* `flag`   -> PATCH the `before` values back (if any) and set the id-map state back
  (`before["state"]`, default `active`).
* `skip`   -> nothing to undo; marked once everything else of the run is reversed.
* `delete` -> Pipedrive cannot undelete through the API: reported as a warning, marked.

Before any request, the account is checked: the run's own Pipedrive company through a real
Pipedrive API (runs.check_account), else nothing is sent. Records are reversed a batch at a time and
each batch is read back (v2 `ids=` lists, 100 a request; v1 one by one): a reversal is written down
only once Pipedrive reads back deleted, or with the before-values, in one transaction with its effect
on the id map (an audit row under `rollback:<run>`, `rolled_back_by` on the original row). A record
that does not read back so keeps its id-map row and stops the rollback. A rollback that is
interrupted resumes where it stopped; rolling back twice changes nothing the second time.
`plan_rollback` is the same walk without a write: what would be deleted and restored, and where.

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

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.loading.compare import KINDS, MATCH, compare
from flitstack_dagster.loading.readback import read_back
from flitstack_dagster.loading.store import AuditRow, LoadStore, audit_rows, ensure_schema
from flitstack_dagster.pipedrive.account import AccountIdentity
from flitstack_dagster.pipedrive.errors import NotFound
from flitstack_dagster.novo.runs import check_account

log = logging.getLogger(__name__)

ROLLBACK_PREFIX = "rollback:"

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


def stopped_part_way(error: Exception, done: str, again: str) -> str:
    """A rollback or repair a Pipedrive error stopped: each step it proved is recorded, so running it
    again finishes it (`done`: "rolled back"; `again`: how to run it again, "run the same command")."""
    return f"{error}. What was {done} so far is recorded: {again} again to finish."


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
            refs = ENTITIES.reference_fields
            if any(isinstance(v, int) and v in created.get(refs[k], ()) for k, v in body.items() if k in refs):
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


# -- what a rollback would do ---------------------------------------------------------------------------

DELETE, HAND_BACK, RESTORE, MARK, UNDELETABLE = "delete", "hand back", "restore", "mark", "cannot undelete"
# v1 has no `ids`, so a batch of its records is read back one by one
V1_READBACK_BATCH = 10


@dataclass
class _Classified:
    """One run's standing rows and what reversing each one means (no request needed to know it)."""

    rows: list[AuditRow]  # without skips
    skips: int
    owners: dict[int, str | None]  # adopt seq -> standing earlier run that owns the record
    doomed: set[tuple[str, int | None]]  # records this rollback deletes

    def action(self, row: AuditRow) -> str:
        op = row.operation
        if op == "create" or (op == "adopt" and self.owners.get(row.seq) is None):
            return DELETE
        if op == "adopt":
            return HAND_BACK
        if op in ("update", "flag", "restore"):
            return MARK if (row.entity, row.pipedrive_id) in self.doomed else RESTORE
        return UNDELETABLE if op == "delete" else MARK


def _classify(con: duckdb.DuckDBPyConnection, run_key: str) -> _Classified:
    standing = audit_rows(con, run_key)
    rows = [r for r in standing if r.operation != "skip"]
    owners = {r.seq: _earlier_owner(con, r) for r in rows if r.operation == "adopt"}
    doomed = {(r.entity, r.pipedrive_id) for r in rows
              if r.operation == "create" or (r.operation == "adopt" and owners[r.seq] is None)}
    return _Classified(rows, len(standing) - len(rows), owners, doomed)


@dataclass
class PlanLine:
    """What rolling back one run does to one entity: rows per action."""

    run_key: str
    entity: str
    delete: int = 0
    restore: int = 0
    hand_back: int = 0
    mark: int = 0  # nothing to undo in Pipedrive (skips, updates of records deleted here)
    cannot_undelete: int = 0


@dataclass
class RollbackPlan:
    """A rollback's preview: the account it would write to, and per run and entity what it would do."""

    run_key: str
    account: AccountIdentity | None  # None when nothing is left to roll back (no request was needed)
    runs: list[str] = field(default_factory=list)  # in the order they would be rolled back
    lines: list[PlanLine] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.lines

    def rows(self) -> list[dict[str, Any]]:
        return [{"run": ln.run_key, "entity": ln.entity, "delete": ln.delete, "restore": ln.restore,
                 "hand back": ln.hand_back, "nothing to undo": ln.mark, "cannot undelete": ln.cannot_undelete}
                for ln in self.lines]

    def where(self) -> str:
        if self.account is None:
            return "Pipedrive"
        return f"Pipedrive company {self.account.label} at {self.account.host}"

    def text(self) -> str:
        """The preview for a terminal: one line per run and entity."""
        if self.empty:
            return f"{self.run_key} is already rolled back; nothing to do"
        head = f"rolling back {', '.join(self.runs)} would change {self.where()}:"
        width = max(len(r) for r in self.runs)
        body = [f"  {ln.run_key:<{width}}  {ln.entity:<18} delete {ln.delete:>6,}  restore {ln.restore:>6,}  "
                f"hand back {ln.hand_back:>6,}  nothing to undo {ln.mark:>6,}"
                + (f"  cannot undelete {ln.cannot_undelete:,}" if ln.cannot_undelete else "")
                for ln in self.lines]
        return "\n".join([head, *body])


def plan_rollback(
    con: duckdb.DuckDBPyConnection, client, run_key: str, *, cascade: bool = False,
) -> RollbackPlan:
    """What `rollback_run` would do, spending no write: refusals first (unknown run, later runs built
    on it, wrong account, not a Pipedrive URL), then per run and entity the rows to reverse."""
    ensure_schema(con)
    _check_known(con, run_key)
    deps = dependents(con, run_key)
    if deps and not cascade:
        raise RollbackRefused(run_key, deps)
    chain = [*(_cascade_order(con, run_key) if deps else []), run_key]
    plan = RollbackPlan(run_key, None)
    for key in chain:
        found = _classify(con, key)
        if not found.rows and not found.skips:
            continue
        plan.account = check_account(con, client, key, pin=False)
        plan.runs.append(key)
        plan.lines.extend(_plan_lines(key, found))
    return plan


def _plan_lines(run_key: str, found: _Classified) -> list[PlanLine]:
    lines: dict[str, PlanLine] = {}
    attr = {DELETE: "delete", HAND_BACK: "hand_back", RESTORE: "restore", MARK: "mark",
            UNDELETABLE: "cannot_undelete"}
    for r in found.rows:
        line = lines.setdefault(r.entity, PlanLine(run_key, r.entity))
        name = attr[found.action(r)]
        setattr(line, name, getattr(line, name) + 1)
    if found.skips:
        lines.setdefault("(skipped)", PlanLine(run_key, "(skipped)")).mark += found.skips
    order = [*ENTITIES.rollback_order, "(skipped)"]
    return sorted(lines.values(), key=lambda ln: order.index(ln.entity) if ln.entity in order else -1)


# -- rollback -------------------------------------------------------------------------------------------


class RollbackUnproven(RollbackError):
    """Pipedrive did not read back as the rollback left it; those records keep their id-map rows."""

    def __init__(self, run_key: str, entity: str, problems: dict[int, str]):
        self.problems = problems
        listed = "; ".join(f"id {pid} {why}" for pid, why in list(problems.items())[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            f"rollback of {run_key} stopped: {len(problems)} {entity} record(s) did not read back as rolled back "
            f"({listed}{more}); their id-map rows are kept. Check them in Pipedrive, then run the same command again."
        )


def rollback_run(
    con: duckdb.DuckDBPyConnection, client, run_key: str, *, cascade: bool = False, progress: Progress | None = None,
) -> RollbackResult:
    """Reverse `run_key`'s audit rows in Pipedrive and the id map (see the module docstring)."""
    say = progress or (lambda msg: log.info(msg))
    started, tokens0 = time.monotonic(), client.tokens_spent
    plan = plan_rollback(con, client, run_key, cascade=cascade)
    for key in plan.runs:  # every run's account checked (and pinned) before the first write
        check_account(con, client, key)
    result = RollbackResult(run_key)
    if len(plan.runs) > 1:
        say(f"cascade: rolling back {', '.join(plan.runs[:-1])} first (newest first)")
    store = LoadStore(con)
    for key in plan.runs or [run_key]:
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
    run_key: str
    by: str
    out: RunRollback
    found: _Classified
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
    found = _classify(con, run_key)
    if not found.rows and not found.skips:
        out.already_rolled_back = True
        say(f"{run_key}: already rolled back")
        return out
    say(f"{run_key}: {len(found.rows):,} operations to reverse")
    job = _Job(store, client, run_key, by, out, found, _previous_versions(con, run_key))
    reverse = ENTITIES.rollback_order
    entities = sorted({r.entity for r in found.rows}, key=lambda e: reverse.index(e) if e in reverse else -1)
    for entity in entities:
        _reverse_entity(job, entity, [r for r in found.rows if r.entity == entity], say)
    # skips have nothing to undo: marked only once everything else is proven reversed
    out.marked += store.mark_rolled_back(run_key, ["skip"], by)
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


@dataclass
class _Effect:
    """What the requests for one record did, and how Pipedrive must read back to prove it."""

    entity: str
    pid: int | None
    done: list[tuple[AuditRow, str, int]] = field(default_factory=list)  # (row, outcome, tokens)
    expect: str | None = None  # "gone", "values" or None (nothing to read back)
    values: dict[str, Any] = field(default_factory=dict)


def _reverse_entity(job: _Job, entity: str, rows: list[AuditRow], say: Progress) -> None:
    """One entity's records, a batch at a time: requests (concurrently, one record's rows newest first),
    one read-back proving the batch, then the audit log and id map for what was proven."""
    # one record = one source record under one id: rows of an id the record held before are reversed and
    # proven against that id, not the one it holds now
    groups: dict[tuple[str, int | None], list[AuditRow]] = {}
    for r in sorted(rows, key=lambda r: r.seq, reverse=True):
        groups.setdefault((r.source_id, r.pipedrive_id), []).append(r)
    records = list(groups.values())
    size = (ENTITIES[entity].read_back_batch if entity in ENTITIES else None) or V1_READBACK_BATCH
    done, last = 0, time.monotonic()
    for start in range(0, len(records), size):
        results = _map(job.client, lambda g: _send(job, entity, g), records[start:start + size])
        effects = [r for r in results if isinstance(r, _Effect)]
        problems = _confirm(job.client, entity, effects)
        for eff in effects:
            if eff.pid not in problems:
                _record(job, eff)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        if problems:
            raise RollbackUnproven(job.run_key, entity, problems)
        done += len(effects)
        if done == len(records) or time.monotonic() - last >= 5:
            last = time.monotonic()
            say(f"{job.run_key}: {entity}: {done:,}/{len(records):,} records reversed")


def _map(client, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """fn over items, concurrently when the client can; an exception is returned in its item's place so
    what the other records already did is still written down."""
    mapper = getattr(client, "map_concurrent", None)
    if mapper is not None:
        return mapper(fn, items, return_exceptions=True)
    out: list[Any] = []
    for it in items:
        try:
            out.append(fn(it))
        except Exception as e:  # noqa: BLE001 - handed back to the caller, which raises it
            out.append(e)
    return out


def _thread_tokens(client) -> int:
    """Tokens this thread has spent so far (0 for a client that does not count per thread)."""
    counter = getattr(client, "thread_tokens", None)
    return counter() if callable(counter) else 0


def _send(job: _Job, entity: str, group: list[AuditRow]) -> _Effect:
    """The requests that reverse one record's rows (newest first); nothing is written down here."""
    eff = _Effect(entity, group[0].pipedrive_id)
    for row in group:
        action, t0 = job.found.action(row), _thread_tokens(job.client)
        if action == DELETE:
            outcome = "already_gone" if _gone_ok(job.client, "delete", entity, row.pipedrive_id) else "deleted"
            eff.expect = "gone"
        elif action == RESTORE:
            before = _restorable(row)
            outcome = "restored"
            if before and _gone_ok(job.client, "update", entity, row.pipedrive_id, before):
                outcome, eff.expect = "restore_missing", "gone"
            elif before and eff.expect != "gone":
                eff.expect, eff.values = "values", _apply(eff.values, before)  # the oldest row's values win
        else:
            outcome = action
        eff.done.append((row, outcome, _thread_tokens(job.client) - t0))
    return eff


def _restorable(row: AuditRow) -> dict[str, Any]:
    """The values an update or flag overwrote in Pipedrive (a flag's id-map state is not one of them)."""
    before = dict(row.before or {})
    if row.operation == "flag":
        before.pop("state", None)
    return before


def _gone_ok(client, action: str, entity: str, pid: int | None, changes: dict[str, Any] | None = None) -> bool:
    """DELETE or PATCH one record; True when Pipedrive answers that the record is not there.

    Only Pipedrive's own record-not-found answer counts (the client raises NotFound for nothing else);
    any other error — an HTML 404 from a wrong URL included — stops the rollback.
    """
    if pid is None:
        return True
    method = getattr(client, f"{action}_{ENTITIES[entity].method_name if entity in ENTITIES else entity}")
    try:
        method(int(pid)) if changes is None else method(int(pid), changes)
    except NotFound:
        return True
    return False


def delete_record(client, entity: str, pid: int) -> bool:
    """DELETE one record; True when Pipedrive answers that it is already gone (its own record-not-found)."""
    return _gone_ok(client, "delete", entity, pid)


def not_gone(client, entity: str, pids: list[int]) -> dict[int | None, str]:
    """Read deleted records back: Pipedrive id -> why it does not prove its delete (empty: all gone)."""
    return _confirm(client, entity, [_Effect(entity, pid, expect="gone") for pid in pids])


def _confirm(client, entity: str, effects: list[_Effect]) -> dict[int | None, str]:
    """Read the batch back: Pipedrive id -> why it does not prove the rollback (empty: all proven)."""
    wanted = [e for e in effects if e.expect and e.pid is not None]
    if not wanted:
        return {}
    live = read_back(client, entity, [int(e.pid) for e in wanted])  # type: ignore[arg-type]
    problems: dict[int | None, str] = {}
    for e in wanted:
        rec = live.get(int(e.pid))  # type: ignore[arg-type]
        if e.expect == "gone" and rec is not None:
            problems[e.pid] = "is still in Pipedrive after its delete"
        elif e.expect == "values" and rec is None:
            problems[e.pid] = "is no longer in Pipedrive after its restore"
        elif e.expect == "values":
            wrong = _differences(e.values, rec)  # type: ignore[arg-type]
            if wrong:
                problems[e.pid] = f"reads back with other values for {', '.join(wrong)}"
    return problems


def _differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Fields of `expected` that Pipedrive reads back differently (after its own normalisation)."""
    out = []
    for k, v in expected.items():
        if k == "custom_fields" and isinstance(v, dict):
            got = actual.get("custom_fields") or {}
            out += [f"custom field {ck}" for ck, cv in v.items()
                    if not _same(_custom_kind(got.get(ck)), cv, got.get(ck))]
        elif k in actual and not _same(KINDS.get(k, "text"), v, actual[k], k):
            out.append(k)
    return out


def _same(kind: str, expected: Any, actual: Any, name: str = "") -> bool:
    return compare(kind, expected, actual, field=name).outcome == MATCH


def _custom_kind(actual: Any) -> str:
    """A custom field's comparison kind, from how Pipedrive answers it (the read shape says the type)."""
    if isinstance(actual, dict):
        return "monetary" if "currency" in actual else "address"
    if isinstance(actual, list):
        return "set" if all(isinstance(x, int) for x in actual) else "text"
    return "text"


def _record(job: _Job, eff: _Effect) -> None:
    """Write down one proven record: an audit row per reversed row, and its id-map change."""
    store, by = job.store, job.by
    for row, outcome, tokens in eff.done:
        entity, sid, pid = row.entity, row.source_id, row.pipedrive_id
        if outcome in ("deleted", "already_gone"):
            gone = {"already_gone": True} if outcome == "already_gone" else None
            store.record_reversal(row.seq, by, entity, sid, operation="delete", pipedrive_id=pid, tokens=tokens,
                                  before=row.after, after=gone, drop_mapping=True)
            job.count(outcome)
        elif outcome == HAND_BACK:
            owner = job.found.owners.get(row.seq)
            store.record_reversal(row.seq, by, entity, sid, operation="restore", pipedrive_id=pid,
                                  after={"handed_back_to": owner},
                                  mapping_changes={"created_by_run": owner, "last_run": owner})
            job.count("handed_back")
        elif outcome in ("restored", "restore_missing"):
            if outcome == "restore_missing":
                job.warn(f"{entity} {sid} (Pipedrive id {pid}) is no longer in Pipedrive; its {row.operation} "
                         "could not be undone")
            store.record_reversal(row.seq, by, entity, sid, operation="restore", pipedrive_id=pid, tokens=tokens,
                                  before=row.after, after=row.before, mapping_changes=_restored_mapping(job, row))
            job.count("restored")
        else:
            if outcome == UNDELETABLE:
                job.warn(f"{entity} {sid} (Pipedrive id {pid}) was deleted by {row.run_key}; Pipedrive cannot "
                         "undelete it through the API — reload the earlier run to create it again")
            store.record_reversal(row.seq, by, entity, sid)
            job.count("marked")


def _restored_mapping(job: _Job, row: AuditRow) -> dict[str, Any] | None:
    """The id map as it was before an update or flag: its payload, and its hash and run or state."""
    before = dict(row.before or {})
    state = before.pop("state", "active") if row.operation == "flag" else None
    current = job.store.mapping(row.entity, row.source_id)
    if current is None or current.pipedrive_id != row.pipedrive_id:
        return None
    changes: dict[str, Any] = {"payload": _apply(current.payload, before)}
    if row.operation == "flag":
        changes["state"] = state
    else:
        prev_run, prev_hash = job.previous.get(row.seq, (None, None))
        changes["content_hash"] = prev_hash
        if prev_run:
            changes["last_run"] = prev_run
    return changes


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
    table = ENTITIES[entity].shaped_table if entity in ENTITIES else None
    if table is None or not has_table(con, "shaped", table):
        return None
    try:
        found = con.execute(
            f"SELECT content_hash FROM shaped.{table} WHERE run_key = ? AND source_id = ? LIMIT 1", [run_key, source_id]
        ).fetchall()
    except duckdb.Error:
        return None
    return found[0][0] if found else None
