"""Reconciliation of one run: nothing lost between the export and Pipedrive.

- per source file: rows = loaded + set aside + not migrated by design (`shaped.reconciliation`);
- per Pipedrive object: records shaped = in the id map + set aside by the loader; every id-map
  record is in Pipedrive (read back), and reads back as sent (verified, or differing only where the
  lead accepted it).

It reads what verification stored (`verification.records`), so it runs after the read-back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.entities import ENTITIES


@dataclass
class Reconciliation:
    run_key: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def reconcile_run(con: duckdb.DuckDBPyConnection, run_key: str) -> Reconciliation:
    out = Reconciliation(run_key)
    if not has_table(con, "shaped", "reconciliation"):
        out.problems.append("the run is not shaped yet (shaped.reconciliation is missing)")
        return out
    reasons = _reasons(con, "SELECT file, coalesce(reason_code::VARCHAR, 'unspecified'), count(*) "
                            "FROM shaped.reconciliation WHERE run_key = ? "
                            "AND outcome IN ('set_aside', 'not_migrated') GROUP BY ALL", run_key)
    for file, rows, loaded, aside, design, other in con.execute(
        "SELECT file, count(*), count(*) FILTER (WHERE outcome = 'loaded'), count(*) FILTER (WHERE outcome = 'set_aside'), "
        "count(*) FILTER (WHERE outcome = 'not_migrated'), count(*) FILTER (WHERE outcome NOT IN ('loaded', 'set_aside', 'not_migrated')) "
        "FROM shaped.reconciliation WHERE run_key = ? GROUP BY file ORDER BY file", [run_key]).fetchall():
        ok = rows == loaded + aside + design
        out.sources.append({"file": file, "source_rows": rows, "loaded": loaded, "set_aside": aside,
                            "not_migrated": design, "ok": ok, "reasons": reasons.get(file, "")})
        if not ok:
            out.problems.append(f"{file}: {other} of {rows} source rows are neither loaded, set aside nor "
                                "excluded by design")
    if not has_table(con, "verification", "records") or not con.execute(
            "SELECT count(*) FROM verification.records WHERE run_key = ?", [run_key]).fetchall()[0][0]:
        shaped = sum(shaped_count(con, t, run_key) or 0 for t in ENTITIES.shaped_tables.values())
        if shaped:
            out.problems.append("the run's records are not verified yet: materialize verified_records first")
        return out
    status = {(e, s): n for e, s, n in con.execute(
        "SELECT entity, status, count(*) FROM verification.records WHERE run_key = ? GROUP BY 1, 2", [run_key]).fetchall()}
    load_reasons = {}
    if has_table(con, "meta", "load_set_aside"):
        load_reasons = _reasons(con, "SELECT entity, reason_code, count(*) FROM meta.load_set_aside "
                                     "WHERE run_key = ? GROUP BY ALL", run_key)
    for entity, table in ENTITIES.shaped_tables.items():
        shaped = shaped_count(con, table, run_key) or 0

        def get(s: str, entity: str = entity) -> int:
            return status.get((entity, s), 0)

        in_map = get("verified") + get("differs") + get("missing")
        row = {"entity": entity, "shaped": shaped, "in_id_map": in_map, "set_aside_at_load": get("set_aside"),
               "not_loaded": get("not_loaded"), "in_pipedrive": get("verified") + get("differs"),
               "verified": get("verified"), "reasons": load_reasons.get(entity, "")}
        row["ok"] = (shaped == in_map + row["set_aside_at_load"] and row["in_pipedrive"] == in_map
                     and row["verified"] == in_map)
        out.destinations.append(row)
        if row["not_loaded"]:
            out.problems.append(f"{entity}: {row['not_loaded']} of {shaped} shaped records are not in the id map")
        if row["in_pipedrive"] != in_map:
            out.problems.append(f"{entity}: {in_map - row['in_pipedrive']} of {in_map} id-map records are not in Pipedrive")
        if get("differs"):
            out.problems.append(f"{entity}: {get('differs')} records read back differently from what was sent "
                                "(see the field diff)")
    return out


def shaped_count(con: duckdb.DuckDBPyConnection, table: str, run_key: str) -> int | None:
    """Rows of one shaped table for a run; None before shaping made the table."""
    if not has_table(con, "shaped", table):
        return None
    return con.execute(f"SELECT count(*) FROM shaped.{table} WHERE run_key = ?", [run_key]).fetchall()[0][0]


def _reasons(con: duckdb.DuckDBPyConnection, sql: str, run_key: str) -> dict[str, str]:
    """Per file or entity, its reason codes with their counts, largest first: `bad_date 3, no_parent 1`."""
    counts: dict[str, list[tuple[int, str]]] = {}
    for key, code, n in con.execute(sql, [run_key]).fetchall():
        counts.setdefault(key, []).append((-n, str(code)))
    return {k: ", ".join(f"{code} {-n:,}" for n, code in sorted(v)) for k, v in counts.items()}
