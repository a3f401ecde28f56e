"""Small DuckDB helpers shared by every stage (no Dagster)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import polars as pl

from flitstack_dagster.core.safe_text import csv_cell, csv_cell_sql


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists (results fully consumed, as DuckDB 2 requires)."""
    rows = con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return bool(rows)


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """`schema.table`'s columns as (name, DuckDB type), in table order; none when it does not exist."""
    return [tuple(r) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()]


# DuckDBResource opens with this config; one process may only hold connections to a file with one
# config, and the resource leaks its connection when a step raises, so every connection matches it.
CONNECTION_CONFIG = {"custom_user_agent": "dagster"}


def connect(path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the project's DuckDB file the way `DuckDBResource` does (see CONNECTION_CONFIG)."""
    return duckdb.connect(str(path), read_only=read_only, config=CONNECTION_CONFIG)


def database_file(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file behind `con`'s current database (None in memory)."""
    (path,) = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0]
    return Path(path).resolve() if path else None


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's result as a Polars frame, through a Parquet file beside the database when there is one.

    Why: a million-row result fetched with `.pl()` leaves ~2.5× its size in the process (DuckDB's
    materialised result and its Arrow export stay allocated); written by DuckDB's streaming COPY and
    read by Polars it costs its own size (measured at 1,000,000 work orders: 2.3 vs 3.4 GiB for the
    five big staged tables, for ~5 CPU-s more); DuckDB's blocks cached by the read are dropped after it."""
    db = database_file(con)
    if db is None:
        return con.sql(sql, params=params).pl()
    with tempfile.TemporaryDirectory(dir=db.parent, prefix=".read-") as tmp:
        part = Path(tmp) / "result.parquet"
        con.execute(f"COPY ({sql}) TO '{str(part).replace(chr(39), chr(39) * 2)}' (FORMAT parquet, COMPRESSION uncompressed)",
                    params)
        drop_cached_blocks(con)
        return pl.read_parquet(part)


def drop_cached_blocks(con: duckdb.DuckDBPyConnection) -> None:
    """Have DuckDB evict the table blocks it keeps cached after a read, by lowering its memory limit
    for a moment: after reading the staged tables of a million work orders that is ~0.5 GiB the process
    would otherwise hold beside the frames read from them. The project runs DuckDB with its default
    limit (it shows the limit rounded, so the default is restored rather than the value read back)."""
    try:
        con.execute("SET memory_limit = '64MB'")
    except duckdb.Error:  # blocks in use could not be evicted: the limit stays as it was
        pass
    finally:
        con.execute("RESET memory_limit")


def copy_to_csv(con: duckdb.DuckDBPyConnection, sql: str, path: Path,
                params: dict | list | None = None) -> Path:
    """A query's rows as a CSV file people open: every text column (and the header) safe in a
    spreadsheet, see `safe_text.csv_cell`; streamed by DuckDB, so size does not matter."""
    probe = con.execute(f"SELECT * FROM ({sql}) LIMIT 0", params)
    columns = probe.description
    probe.fetchall()  # DuckDB 2 wants every result consumed before the next statement
    select = ", ".join((csv_cell_sql(_ident(name)) if str(kind) == "VARCHAR" else _ident(name))
                       + f" AS {_ident(csv_cell(name))}" for name, kind, *_ in columns)
    con.execute(f"COPY (SELECT {select} FROM ({sql})) TO '{_literal(str(path))}' (HEADER, DELIMITER ',')",
                params)
    return path


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return text.replace("'", "''")
