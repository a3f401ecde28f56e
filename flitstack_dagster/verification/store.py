"""Verification results in DuckDB, one run's rows at a time.

- `verification.field_diff`: per record and mapped field, expected vs actual and the outcome;
- `verification.records`: per record of the run, what verification found (verified / differs /
  missing / not_loaded / set_aside);
- `verification.duplicates`: Source IDs held by more than one Pipedrive record;
- `verification.runs`: one summary row per verified run.

The verified samples a full run needs are in `loading.verified_samples` (the load gate reads them).
"""

from __future__ import annotations

import duckdb
import polars as pl

DDL = [
    "CREATE SCHEMA IF NOT EXISTS verification",
    """CREATE TABLE IF NOT EXISTS verification.field_diff (
        run_key VARCHAR NOT NULL, entity VARCHAR NOT NULL, source_id VARCHAR NOT NULL, pipedrive_id BIGINT,
        field VARCHAR NOT NULL, expected VARCHAR, actual VARCHAR, outcome VARCHAR NOT NULL, note VARCHAR,
        accepted VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS verification.records (
        run_key VARCHAR NOT NULL, entity VARCHAR NOT NULL, source_id VARCHAR NOT NULL, pipedrive_id BIGINT,
        status VARCHAR NOT NULL, message VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS verification.duplicates (
        run_key VARCHAR NOT NULL, entity VARCHAR NOT NULL, source_value VARCHAR NOT NULL,
        pipedrive_ids VARCHAR NOT NULL, in_run BOOLEAN NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS verification.runs (
        run_key VARCHAR PRIMARY KEY, verified_at TIMESTAMPTZ NOT NULL, records BIGINT, fields BIGINT,
        matches BIGINT, mismatches BIGINT, missing BIGINT, accepted BIGINT, unexplained BIGINT,
        duplicates BIGINT, tokens BIGINT, stopped VARCHAR, mapping_hash VARCHAR)""",
]

FRAMES = {"field_diff": "verification.field_diff", "records": "verification.records",
          "duplicates": "verification.duplicates"}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


def save_run(con: duckdb.DuckDBPyConnection, run_key: str, frames: dict[str, pl.DataFrame], summary: dict) -> None:
    """Replace exactly this run's verification rows, in one transaction."""
    ensure_schema(con)
    con.execute("BEGIN")
    try:
        for name, table in FRAMES.items():
            con.execute(f"DELETE FROM {table} WHERE run_key = ?", [run_key])
            df = frames[name]
            if df.height:
                con.register("_vframe", df)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _vframe")
                con.unregister("_vframe")
        cols = ["run_key", "verified_at", "records", "fields", "matches", "mismatches", "missing", "accepted",
                "unexplained", "duplicates", "tokens", "stopped", "mapping_hash"]
        con.execute(f"INSERT OR REPLACE INTO verification.runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [summary.get(c) for c in cols])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
