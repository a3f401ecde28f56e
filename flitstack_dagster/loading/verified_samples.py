"""Sample runs verified clean under a mapping (`meta.verified_samples`, keyed by the mapping's content
hash): verification writes them, and a full run may load only once one exists (`loading.gate`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from flitstack_dagster.core.duck import has_table

DDL = [
    "CREATE SCHEMA IF NOT EXISTS meta",
    """CREATE TABLE IF NOT EXISTS meta.verified_samples (
        mapping_hash VARCHAR NOT NULL, run_key VARCHAR NOT NULL, verified_at TIMESTAMPTZ NOT NULL,
        records BIGINT, fields BIGINT, accepted BIGINT, PRIMARY KEY (mapping_hash, run_key))""",
]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


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
