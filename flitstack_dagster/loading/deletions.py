"""Records a delta export lists in `deleted.csv`, handled by the mapping's deletion policy.

`flag` (the default) leaves the Pipedrive record alone: the id map marks it `deleted_in_source` and
the audit log gets a `flag` row, so the migration lead decides (report: `deletions.csv`). `delete`
removes it from Pipedrive (audited with the values it had, so rollback can say what was removed).
Applied last, newest FK last: files, activities, deals, persons, organizations.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.pipedrive.errors import NotFound
from flitstack_dagster.novo.runs import check_account
from flitstack_dagster.core.safe_text import csv_row

# deleted.csv Entity -> (Pipedrive entity, source-id prefixes of the records it became)
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Attachment": ("file", ("attachment:{id}",)),
    "PM Schedule": ("activity", ("pm_occurrence:{id}:", "pm_next:{id}")),
    "Work Order": ("deal", ("work_order:{id}",)),
    "Contact": ("person", ("contact:{id}",)),
    "Asset": ("organization", ("asset:{id}",)),
    "Account": ("organization", ("account:{id}",)),
}
FLAGGED_STATE = "deleted_in_source"
REPORT_COLUMNS = ("novo_entity", "novo_id", "deleted_at", "entity", "source_id", "pipedrive_id", "action")


@dataclass
class DeletionResult:
    listed: int = 0
    flagged: int = 0
    deleted: int = 0
    already_handled: int = 0
    not_migrated: list[dict[str, Any]] = field(default_factory=list)  # listed but never loaded
    rows: list[dict[str, Any]] = field(default_factory=list)  # the report


def apply_deletions(con: duckdb.DuckDBPyConnection, client, run_key: str, policy: str) -> DeletionResult:
    """Flag or delete every record the run's deleted.csv names; safe to re-run (handled ones are skipped)."""
    out = DeletionResult()
    if not has_table(con, "staging", "stg_deleted"):
        return out
    listed = con.execute(
        "SELECT entity, id, deleted_at FROM staging.stg_deleted WHERE _run_key = ? ORDER BY entity, id", [run_key]
    ).fetchall()
    out.listed = len(listed)
    if listed:
        check_account(con, client, run_key)
    store = LoadStore(con)
    order = list(TARGETS)
    for novo_entity, novo_id, deleted_at in sorted(listed, key=lambda r: order.index(r[0]) if r[0] in order else 99):
        target = TARGETS.get(novo_entity)
        if target is None:
            out.not_migrated.append({"entity": novo_entity, "id": novo_id, "reason": "entity is not migrated"})
            continue
        entity, patterns = target
        matches = _matches(store, entity, [p.format(id=novo_id) for p in patterns])
        if not matches:
            out.not_migrated.append({"entity": novo_entity, "id": novo_id, "reason": "never loaded into Pipedrive"})
        for source_id, mapped in matches:
            action = _apply(client, store, run_key, entity, source_id, mapped, policy)
            setattr(out, action, getattr(out, action) + 1)
            out.rows.append({"novo_entity": novo_entity, "novo_id": novo_id, "deleted_at": str(deleted_at),
                             "entity": entity, "source_id": source_id, "pipedrive_id": mapped.pipedrive_id,
                             "action": action})
    return out


def _matches(store: LoadStore, entity: str, prefixes: list[str]) -> list[tuple[str, Any]]:
    ids = store.id_map(entity)
    return sorted((sid, m) for sid, m in ids.items()
                  if any(sid == p or (p.endswith(":") and sid.startswith(p)) for p in prefixes))


def _apply(client, store: LoadStore, run_key: str, entity: str, source_id: str, mapped, policy: str) -> str:
    if policy == "delete":
        try:
            getattr(client, f"delete_{entity}")(mapped.pipedrive_id)
        except NotFound:
            pass  # already gone: the outcome we want
        store.record(run_key, entity, source_id, "delete", mapped.pipedrive_id, before=mapped.payload)
        return "deleted"
    if mapped.state == FLAGGED_STATE:
        return "already_handled"
    store.record(run_key, entity, source_id, "flag", mapped.pipedrive_id, before={"state": mapped.state},
                 after={"state": FLAGGED_STATE}, state=FLAGGED_STATE)
    return "flagged"


def write_report(result: DeletionResult, path: Path) -> Path:
    """deletions.csv: what deleted.csv listed and what was done about each (text safe in a spreadsheet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [*result.rows, *({"novo_entity": r["entity"], "novo_id": r["id"], "action": f"none: {r['reason']}"}
                            for r in result.not_migrated)]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(csv_row(REPORT_COLUMNS))
        w.writerows(csv_row(r.get(c) for c in REPORT_COLUMNS) for r in rows)
    return path
