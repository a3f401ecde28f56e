"""Rebuild a run's id map from what the Pipedrive account really holds (`flitstack repair RUN`).

After the account lost records it had acknowledged (or someone else wrote to it) the id map can
point at records that are gone, or at ids Pipedrive has since given to other records. Repair reads
every organization, person and deal (by the `Novo Source ID` custom field) and every activity, note
and file (by its source marker) in one paginated list per entity, then, per source record:

- **adopted**: the account holds it under another id than the map says (or the map has no row):
  the map now points at the account's record (the one the map held, else the lowest id);
- **missing**: the map has a row but the account holds no record for it: the row is removed (its
  standing audit rows retired, so no rollback deletes or restores that id on its behalf) and the next
  run of the load creates the record again;
- **kept (unmarked)**: the map has a row, the scan names no record for it, but its id reads back live
  and says it is no other source record (an activity, note or file loaded before source markers
  existed, a `Novo Source ID` someone cleared): the row stays, so no duplicate is loaded and a
  rollback can still delete it;
- **duplicated**: the account holds it more than once: listed; with `delete_duplicates` the extra
  records (all but the kept one) are deleted, each read back gone before its delete is written down
  (an extra record Pipedrive answers as not found counts as already gone).

Organization relationships have no identity field: a mapped one is read back by id and kept when it
still links the two organizations its source row names; otherwise its row is dropped and the
relationship looked up among the child organization's relationships (adopted when found).

Repair is idempotent: a second repair finds nothing to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.loading.loader import SOURCE_ID_FIELD
from flitstack_dagster.loading.marker import MARKED, marker
from flitstack_dagster.loading.readback import IDENTIFIED, Scan, read_back, scan_entity
from flitstack_dagster.loading.resolve import Registry
from flitstack_dagster.loading.rollback import delete_record, not_gone
from flitstack_dagster.loading.run import shaped_rows
from flitstack_dagster.loading.store import LoadStore, ensure_schema
from flitstack_dagster.pipedrive.models import OrganizationRelationship
from flitstack_dagster.novo.runs import check_account, get_run

REPAIRED = tuple(e for e in ENTITIES.load_order if e in IDENTIFIED)
SHOWN = 10  # records named per list in the summary


def repair_key(run_key: str) -> str:
    """The audit run key of repair's own operations (deleted duplicates)."""
    return f"repair:{run_key}"


@dataclass
class EntityRepair:
    entity: str
    in_account: int = 0
    adopted: list[dict[str, Any]] = field(default_factory=list)  # source_id, pipedrive_id, was
    missing: list[dict[str, Any]] = field(default_factory=list)  # source_id, pipedrive_id (row removed)
    kept: list[dict[str, Any]] = field(default_factory=list)  # source_id, pipedrive_id (live, unmarked)
    duplicated: list[dict[str, Any]] = field(default_factory=list)  # source_id, kept, extra, deleted, already_gone


@dataclass
class RepairResult:
    run_key: str
    entities: list[EntityRepair] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0

    def count(self, what: str) -> int:
        return sum(len(getattr(e, what)) for e in self.entities)

    @property
    def deleted(self) -> int:
        """Extra records repair deleted, those Pipedrive already answered as gone included."""
        return sum(len(d["extra"]) for e in self.entities for d in e.duplicated if d["deleted"])

    @property
    def already_gone(self) -> int:
        return sum(len(d["already_gone"]) for e in self.entities for d in e.duplicated)

    def rows(self) -> list[dict[str, Any]]:
        """One row per entity: what the account holds and what repair did."""
        return [{"entity": e.entity, "in_account": e.in_account, "adopted": len(e.adopted),
                 "missing": len(e.missing), "kept_unmarked": len(e.kept), "duplicated": len(e.duplicated),
                 "duplicates_deleted": sum(len(d["extra"]) for d in e.duplicated if d["deleted"])}
                for e in self.entities]

    def summary(self) -> str:
        deleted = f" ({self.deleted} extra records deleted, {self.already_gone} of them already gone)"
        lines = [f"{self.run_key}: adopted {self.count('adopted')}, missing {self.count('missing')} "
                 f"(to be created again by the next load), kept (unmarked) {self.count('kept')}, "
                 f"duplicated {self.count('duplicated')}{deleted if self.deleted else ''}; "
                 f"{self.tokens:,} tokens, {self.seconds:.1f} s"]
        for e in self.entities:
            for d in e.adopted[:SHOWN]:
                was = f" (the map said {d['was']})" if d["was"] is not None else ""
                lines.append(f"  adopted {e.entity} {d['source_id']}: id {d['pipedrive_id']}{was}")
            for d in e.missing[:SHOWN]:
                lines.append(f"  missing {e.entity} {d['source_id']}: id {d['pipedrive_id']} is not in the account")
            for d in e.kept[:SHOWN]:
                lines.append(f"  kept (unmarked) {e.entity} {d['source_id']}: id {d['pipedrive_id']} is in the account "
                             "without its source identity")
            for d in e.duplicated[:SHOWN]:
                fate = "deleted" if d["deleted"] else "kept (repair --delete-duplicates deletes them)"
                lines.append(f"  duplicated {e.entity} {d['source_id']}: kept {d['kept']}, extra "
                             f"{', '.join(map(str, d['extra']))} {fate}")
            more = sum(max(0, len(x) - SHOWN) for x in (e.adopted, e.missing, e.kept, e.duplicated))
            if more:
                lines.append(f"  … and {more} more {e.entity} rows")
        return "\n".join(lines)


def repair_run(con: duckdb.DuckDBPyConnection, client, run_key: str, *, delete_duplicates: bool = False,
               progress: Callable[[str], None] | None = None) -> RepairResult:
    """Rebuild the id map of `run_key`'s entities from the account; see the module docstring."""
    say = progress or (lambda _m: None)
    get_run(con, run_key)  # an unknown run is refused before any request
    check_account(con, client, run_key)  # repair deletes duplicates: only in the run's own account
    started, tokens0 = time.monotonic(), client.tokens_spent
    store = LoadStore(con)
    registry = Registry.load(con, client.account())
    out = RepairResult(run_key)
    for entity in REPAIRED:
        out.entities.append(_repair_entity(con, client, store, registry, run_key, entity, delete_duplicates))
        say(f"{entity}: {out.entities[-1].in_account:,} records in the account read")
        if entity == "organization":  # relationships are checked against the repaired organizations
            out.entities.append(_repair_relationships(con, client, store, run_key))
    ensure_schema(con)  # an id map that was shared before is unique now: the index can be created
    out.tokens, out.seconds = client.tokens_spent - tokens0, time.monotonic() - started
    return out


def _repair_entity(con, client, store: LoadStore, registry: Registry, run_key: str, entity: str,
                   delete_duplicates: bool) -> EntityRepair:
    rows = {r["source_id"]: r for r in shaped_rows(con, run_key, entity)} if _shaped(con, entity) else {}
    mapped = {sid: m.pipedrive_id for sid, m in store.id_map(entity).items()}
    sources = set(rows) | set(mapped)
    key = None
    if entity not in MARKED:
        cf = registry.fields.get(entity, {}).get(SOURCE_ID_FIELD)
        if cf is None:
            raise UserError(f"the account has no '{SOURCE_ID_FIELD}' field for {entity}s in the field registry: "
                            "materialize pipedrive_schema for this run first")
        key = cf.key
    markers = {marker(entity, sid): sid for sid in sources} if entity in MARKED else None
    scan = scan_entity(client, entity, key, markers)
    out = EntityRepair(entity, in_account=len(scan.records))
    keep: dict[str, int] = {}
    unseen: dict[str, int] = {}
    for sid in sorted(sources):
        held, was = scan.by_source.get(sid, []), mapped.get(sid)
        if not held:
            if was is not None:
                unseen[sid] = was
            continue
        keep[sid] = was if was in held else held[0]
        if keep[sid] != was:
            out.adopted.append({"source_id": sid, "pipedrive_id": keep[sid], "was": was})
        if len(held) > 1:
            out.duplicated.append({"source_id": sid, "kept": keep[sid], "extra": [p for p in held if p != keep[sid]],
                                   "deleted": False, "already_gone": []})
    out.kept, out.missing = _unmarked_or_missing(client, entity, scan, unseen)
    # first retire every row the account does not back, so no adoption meets a stale holder of its id
    for d in out.missing:
        store.forget_mapping(run_key, entity, d["source_id"], d["pipedrive_id"], by=repair_key(run_key))
    for d in out.adopted:
        if d["was"] is not None:
            store.forget_mapping(run_key, entity, d["source_id"], d["was"], by=repair_key(run_key))
    for d in out.adopted:
        row = rows.get(d["source_id"])
        # a file cannot be updated, so it keeps the shaped hash; other records get every field sent
        # again on the next load (no hash), which brings an older copy up to date
        content_hash = row["content_hash"] if row is not None and entity == "file" else None
        store.record(run_key, entity, d["source_id"], "adopt", d["pipedrive_id"], content_hash=content_hash,
                     payload={}, after={"repaired_by": repair_key(run_key)})
    if delete_duplicates:
        _delete_duplicates(client, store, run_key, entity, out.duplicated, scan)
    return out


class RepairUnproven(UserError):
    """A deleted duplicate still reads back; repair stops before writing its delete down."""

    def __init__(self, run_key: str, entity: str, problems: dict[int | None, str]):
        listed = "; ".join(f"id {pid} {why}" for pid, why in list(problems.items())[:5])
        super().__init__(f"repair of {run_key} stopped: {len(problems)} duplicated {entity} record(s) did not read "
                         f"back as deleted ({listed}). Check them in Pipedrive, then run the same command again.")


def _delete_duplicates(client, store: LoadStore, run_key: str, entity: str, duplicated: list[dict[str, Any]],
                       scan: Scan) -> None:
    """Delete every extra record, read them back gone, then write each delete down."""
    for d in duplicated:
        d["already_gone"] = [pid for pid in d["extra"] if delete_record(client, entity, pid)]
    problems = not_gone(client, entity, [pid for d in duplicated for pid in d["extra"]])
    for d in duplicated:
        for pid in d["extra"]:
            if pid not in problems:
                gone = {"already_gone": True} if pid in d["already_gone"] else {}
                store.record(repair_key(run_key), entity, d["source_id"], "delete_duplicate", pid,
                             before=scan.records.get(pid), after={"kept": d["kept"], **gone})
        d["deleted"] = not any(pid in problems for pid in d["extra"])
    if problems:
        raise RepairUnproven(run_key, entity, problems)


def _unmarked_or_missing(client, entity: str, scan: Scan, unseen: dict[str, int]
                         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Mapped ids the scan names no record for, read back: live and claimed by no other source record
    -> kept (a record without its identity is still this one); otherwise -> missing."""
    live = read_back(client, entity, unseen.values())
    kept, missing = [], []
    for sid, pid in unseen.items():
        row = {"source_id": sid, "pipedrive_id": pid}
        (kept if pid in live and scan.identity.get(pid) is None else missing).append(row)
    return kept, missing


def _repair_relationships(con, client, store: LoadStore, run_key: str) -> EntityRepair:
    entity = "org_relationship"
    out = EntityRepair(entity)
    orgs = {sid: m.pipedrive_id for sid, m in store.id_map("organization").items()}
    pairs = {r["source_id"]: (orgs.get(r["parent_ref"]), orgs.get(r["org_ref"]))
             for r in (shaped_rows(con, run_key, entity) if _shaped(con, entity) else [])}
    mapped = {sid: m.pipedrive_id for sid, m in store.id_map(entity).items()}
    pending = store.pending(entity)  # a create whose answer was lost or refused: it may exist
    held = {_pair(d): pid for pid, d in read_back(client, entity, mapped.values()).items()}
    out.in_account = len(held)
    found: dict[str, int] = {}
    for sid in sorted(set(pairs) | set(mapped)):
        pair, was = pairs.get(sid), mapped.get(sid)
        if was is not None and (held.get(pair or (None, None)) == was or (pair is None and was in held.values())):
            continue  # still links the organizations its row names (or is not this run's to compare)
        if (was is not None or sid in pending) and pair and None not in pair:
            pid = _find_relationship(client, pair)
            if pid is not None and pid != was:
                found[sid] = pid
        if was is not None:
            if sid not in found:
                out.missing.append({"source_id": sid, "pipedrive_id": was})
            store.forget_mapping(run_key, entity, sid, was, by=repair_key(run_key))
    for sid, pid in sorted(found.items()):  # after every stale row is gone
        store.record(run_key, entity, sid, "adopt", pid, payload={}, after={"repaired_by": repair_key(run_key)})
        out.adopted.append({"source_id": sid, "pipedrive_id": pid, "was": mapped.get(sid)})
    return out


def _pair(record: dict[str, Any]) -> tuple[int | None, int | None]:
    rel = OrganizationRelationship.model_validate(record)
    return rel.owner_org_id, rel.linked_org_id


def _find_relationship(client, pair: tuple[int | None, int | None]) -> int | None:
    """The lowest id of a relationship linking this parent to this child, if the account has one."""
    ids = [r.id for r in client.list_organization_relationships(pair[1])
           if (r.owner_org_id, r.linked_org_id) == pair and r.active_flag is not False]
    return min(ids) if ids else None


def _shaped(con: duckdb.DuckDBPyConnection, entity: str) -> bool:
    return has_table(con, "shaped", ENTITIES[entity].shaped_table)
