"""What a finished load must look like in Pipedrive, read from the sandbox's own state (not via the loader).

`destination_problems` is the independent check: every shaped record that was not set aside is in
the id map and live in Pipedrive, the id map points at distinct live records, and Pipedrive holds no
record of the migrated kinds beyond those (so nothing was created twice, not even a record the id map
forgot), nor two records with one `Novo Source ID`. `fields_problems` runs the product's read-back
verifier for the field-by-field comparison.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from flitstack_dagster.core import duck
from flitstack_dagster.loading.loader import SOURCE_ID_FIELD
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.pipedrive.client import PipedriveClient

KIND = {"organization": "organizations", "org_relationship": "organizationRelationships", "person": "persons",
        "deal": "deals", "activity": "activities", "note": "notes", "file": "files"}


def live(snapshot: dict, kind: str) -> dict[int, dict]:
    return {int(i): r for i, r in snapshot["records"][kind].items()
            if not r.get("is_deleted") and r.get("active_flag", True) is not False}


def destination_problems(db: Path, run_key: str, snapshot: dict, baseline: dict) -> list[str]:
    """Empty when nothing is missing and nothing is duplicated; else one line per problem."""
    problems: list[str] = []
    with duck.connect(db, read_only=True) as con:
        source_keys = {name: key for name, key in con.execute(
            "SELECT entity, key FROM meta.field_registry WHERE name = ?", [SOURCE_ID_FIELD]).fetchall()}
        aside = {(e, s) for e, s in con.execute(
            "SELECT entity, source_id FROM meta.load_set_aside WHERE run_key = ?", [run_key]).fetchall()}
        pending = con.execute("SELECT entity, source_id FROM meta.pending_creates").fetchall()
        if pending:
            problems.append(f"creates left pending: {pending[:5]}")
        for entity, table in ENTITIES.shaped_tables.items():
            kind = KIND[entity]
            shaped = {r[0]: r[1] for r in con.execute(
                f"SELECT source_id, decision FROM shaped.{table} WHERE run_key = ?"
                if _has_col(con, table, "decision") else
                f"SELECT source_id, NULL FROM shaped.{table} WHERE run_key = ?", [run_key]).fetchall()}
            mapped = dict(con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = ? AND state <> 'deleted'",
                                      [entity]).fetchall())
            expected = {s for s, decision in shaped.items() if (entity, s) not in aside and decision != "flag_too_large"}
            now, before = live(snapshot, kind), live(baseline, kind)
            missing = sorted(expected - set(mapped))
            if missing:
                problems.append(f"{entity}: {len(missing)} shaped records not in the id map, e.g. {missing[:3]}")
            both = sorted(set(mapped) & {s for e, s in aside if e == entity})
            if both:
                problems.append(f"{entity}: {len(both)} records both loaded and set aside, e.g. {both[:3]}")
            gone = sorted(s for s, pid in mapped.items() if pid not in now)
            if gone:
                problems.append(f"{entity}: {len(gone)} id-map records not live in Pipedrive, e.g. {gone[:3]}")
            shared = [pid for pid, n in Counter(mapped.values()).items() if n > 1]
            if shared:
                problems.append(f"{entity}: Pipedrive ids mapped from more than one source record: {shared[:3]}")
            extra = sorted(set(now) - set(before) - set(mapped.values()))
            if extra:
                problems.append(f"{entity}: {len(extra)} records in Pipedrive that the id map does not know "
                                f"(duplicates or strays), e.g. ids {extra[:5]}")
            key = source_keys.get(entity)
            if key:
                seen = Counter(r.get("custom_fields", {}).get(key) for r in now.values())
                dups = sorted(v for v, n in seen.items() if v and n > 1)
                if dups:
                    problems.append(f"{entity}: {len(dups)} Novo Source IDs held by more than one record, e.g. {dups[:3]}")
                wrong = sorted(s for s, pid in mapped.items() if pid in now and now[pid].get("custom_fields", {}).get(key) != s)
                if wrong:
                    problems.append(f"{entity}: id map points at a record with another Novo Source ID: {wrong[:3]}")
    return problems


def fields_problems(db: Path, run_key: str, pd: PipedriveClient) -> list[str]:
    """The product's read-back verification (`verify_run`): every mapped field as sent, no duplicate."""
    from flitstack_dagster.verification.verify import verify_run

    with duck.connect(db) as con:
        result = verify_run(con, pd, run_key)
    out = []
    if result.stopped:
        out.append(f"verification stopped: {result.stopped}")
    if result.unexplained:
        bad = result.field_diff.filter(result.field_diff["outcome"] != "match").head(5).to_dicts()
        out.append(f"{result.unexplained} fields read back differently, e.g. {bad}")
    if result.duplicates.height:
        out.append(f"duplicates found by the read-back: {result.duplicates.to_dicts()[:5]}")
    not_loaded = result.records.filter(result.records["status"] == "not_loaded")
    if not_loaded.height:
        out.append(f"{not_loaded.height} records not loaded: {not_loaded.head(3).to_dicts()}")
    return out


def _has_col(con, table: str, col: str) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = 'shaped' AND table_name = ? "
                            "AND column_name = ?", [table, col]).fetchall())
