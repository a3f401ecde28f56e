"""Verification results in DuckDB, one run's rows at a time, and the verified samples a full run needs.

- `verification.field_diff`: per record and mapped field, expected vs actual and the outcome;
- `verification.records`: per record of the run, what verification found (verified / differs /
  missing / not_loaded / set_aside);
- `verification.duplicates`: Source IDs held by more than one Pipedrive record;
- `verification.runs`: one summary row per verified run;
- `meta.verified_samples`: sample runs verified clean under a mapping (by its content hash) — what
  unlocks the full run (`is_sample_verified`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from flitstack_dagster.core.duck import has_table

DDL = [
    "CREATE SCHEMA IF NOT EXISTS verification",
    "CREATE SCHEMA IF NOT EXISTS meta",
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
    """CREATE TABLE IF NOT EXISTS meta.verified_samples (
        mapping_hash VARCHAR NOT NULL, run_key VARCHAR NOT NULL, verified_at TIMESTAMPTZ NOT NULL,
        records BIGINT, fields BIGINT, accepted BIGINT, PRIMARY KEY (mapping_hash, run_key))""",
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


@dataclass(frozen=True)
class VerifiedSample:
    mapping_hash: str
    run_key: str
    verified_at: datetime
    records: int
    fields: int
    accepted: int


def record_verified_sample(con: duckdb.DuckDBPyConnection, mapping_hash: str, run_key: str, records: int,
                           fields: int, accepted: int) -> None:
    ensure_schema(con)
    con.execute("INSERT OR REPLACE INTO meta.verified_samples VALUES (?, ?, ?, ?, ?, ?)",
                [mapping_hash, run_key, datetime.now(UTC), records, fields, accepted])


def forget_verified_sample(con: duckdb.DuckDBPyConnection, run_key: str) -> None:
    """A re-verification that is no longer clean withdraws the run's earlier approval."""
    if has_table(con, "meta", "verified_samples"):
        con.execute("DELETE FROM meta.verified_samples WHERE run_key = ?", [run_key])


def verified_sample(con: duckdb.DuckDBPyConnection, mapping_hash: str) -> VerifiedSample | None:
    """The latest sample run verified clean under this mapping, or None."""
    if not has_table(con, "meta", "verified_samples"):
        return None
    rows = con.execute(
        "SELECT mapping_hash, run_key, verified_at, records, fields, accepted FROM meta.verified_samples "
        "WHERE mapping_hash = ? ORDER BY verified_at DESC LIMIT 1", [mapping_hash]).fetchall()
    return VerifiedSample(*rows[0]) if rows else None


def is_sample_verified(con: duckdb.DuckDBPyConnection, mapping_hash: str) -> bool:
    """True when a sample run was verified clean (or with accepted mismatches only) under this mapping."""
    return verified_sample(con, mapping_hash) is not None
