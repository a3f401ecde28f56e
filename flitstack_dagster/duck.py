"""Small DuckDB helpers shared by every stage (no Dagster)."""

from __future__ import annotations

import duckdb


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists (results fully consumed, as DuckDB 2 requires)."""
    rows = con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return bool(rows)


# DuckDBResource opens with this config; one process may only hold connections to a file with one
# config, and the resource leaks its connection when a step raises, so every connection matches it.
CONNECTION_CONFIG = {"custom_user_agent": "dagster"}


def connect(path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the project's DuckDB file the way `DuckDBResource` does (see CONNECTION_CONFIG)."""
    return duckdb.connect(str(path), read_only=read_only, config=CONNECTION_CONFIG)
