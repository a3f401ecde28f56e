"""Accounting and quarantine summaries for one run: nothing may be lost silently.

Identity (docs/contracts.md), per run and file:
    rows in raw.<entity> = rows in staging.stg_<entity> + distinct rows quarantined at level `row`
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from flitstack_dagster.novo import columns as novo

JSON_ENTITIES = tuple(f.removesuffix(".json") for f in novo.JSON_FILES)


@dataclass(frozen=True)
class FileAccount:
    file: str  # `work_orders.csv`
    raw_rows: int
    staged_rows: int
    quarantined_rows: int  # distinct rows set aside (level `row`)
    ok: bool  # raw_rows == staged_rows + quarantined_rows


@dataclass(frozen=True)
class QuarantineCount:
    file: str
    reason_code: str
    level: str  # `row` or `value`
    count: int


def _tables(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return {tuple(r) for r in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}


def _count(con, tables, schema: str, table: str, run_key: str) -> int:
    if (schema, table) not in tables:
        return 0
    return int(con.execute(f'SELECT count(*) FROM {schema}."{table}" WHERE _run_key = ?', [run_key]).fetchone()[0])


def accounting(con: duckdb.DuckDBPyConnection, run_key: str) -> list[FileAccount]:
    """One FileAccount per bundle file (CSV files of columns.py, then the JSON files)."""
    tables = _tables(con)
    qrows: dict[str, int] = {}
    if ("staging", "quarantine") in tables:
        qrows = dict(con.execute(
            """SELECT file, count(DISTINCT row_number) FROM staging.quarantine
               WHERE _run_key = ? AND level = 'row' GROUP BY file""", [run_key]).fetchall())
    out = []
    entities = [(f.entity, f.file) for f in novo.FILES] + [(e, f"{e}.json") for e in JSON_ENTITIES]
    for entity, file in entities:
        raw = _count(con, tables, "raw", entity, run_key)
        staged = _count(con, tables, "staging", f"stg_{entity}", run_key)
        q = int(qrows.get(file, 0))
        out.append(FileAccount(file, raw, staged, q, raw == staged + q))
    return out


def quarantine_entries(con: duckdb.DuckDBPyConnection, run_key: str) -> int:
    """How many entries (rows set aside and values repaired or blanked) the run has in staging.quarantine."""
    return _count(con, _tables(con), "staging", "quarantine", run_key)


def quarantine_summary(con: duckdb.DuckDBPyConnection, run_key: str) -> list[QuarantineCount]:
    """Counts of quarantine entries by file, reason code and level (row counts are distinct rows)."""
    if ("staging", "quarantine") not in _tables(con):
        return []
    return [QuarantineCount(*r) for r in con.execute(
        """SELECT file, reason_code, level,
                  CASE WHEN level = 'row' THEN count(DISTINCT row_number) ELSE count(*) END
           FROM staging.quarantine WHERE _run_key = ?
           GROUP BY file, reason_code, level ORDER BY file, level, reason_code""", [run_key]).fetchall()]
