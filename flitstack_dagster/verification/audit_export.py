"""The run's audit log as CSV and Parquet: source ID -> destination ID, when, and what was done.

What a migration lead hands an auditor: one row per operation the run made (create, update, skip,
delete, restore, adopt, flag), in the order it happened. Values before/after stay in DuckDB. The CSV's
text cells are safe to open in a spreadsheet; the Parquet file keeps the raw values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from flitstack_dagster.core.duck import copy_to_csv, has_table

COLUMNS = ("seq, entity, source_id, pipedrive_id AS destination_id, operation, "
           "strftime(recorded_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') AS recorded_at_utc, tokens, rolled_back_by")


@dataclass(frozen=True)
class AuditExport:
    csv: Path
    parquet: Path
    rows: int
    by_operation: dict[str, int]


def export_audit_log(con: duckdb.DuckDBPyConnection, run_key: str, out_dir: Path) -> AuditExport:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, parquet = out_dir / "audit_log.csv", out_dir / "audit_log.parquet"
    if has_table(con, "meta", "audit_log"):
        query = f"SELECT {COLUMNS} FROM meta.audit_log WHERE run_key = $run_key ORDER BY seq"
    else:  # nothing loaded yet: empty files with the same header
        query = ("SELECT NULL::BIGINT AS seq, NULL::VARCHAR AS entity, NULL::VARCHAR AS source_id, "
                 "NULL::BIGINT AS destination_id, NULL::VARCHAR AS operation, NULL::VARCHAR AS recorded_at_utc, "
                 "NULL::INTEGER AS tokens, NULL::VARCHAR AS rolled_back_by WHERE $run_key IS NULL")
    copy_to_csv(con, query, csv, {"run_key": run_key})
    con.execute(f"COPY ({query}) TO '{_sql(parquet)}' (FORMAT PARQUET)", {"run_key": run_key})
    by_op: dict[str, int] = {}
    if has_table(con, "meta", "audit_log"):
        by_op = dict(con.execute("SELECT operation, count(*) FROM meta.audit_log WHERE run_key = ? GROUP BY 1 ORDER BY 1",
                                 [run_key]).fetchall())
    return AuditExport(csv, parquet, sum(by_op.values()), by_op)


def _sql(p: Path) -> str:
    return str(p).replace("'", "''")
