"""The quarantine report: one CSV a migration lead can open, every set-aside value with its reason."""

from __future__ import annotations

from pathlib import Path

import duckdb


def write_quarantine_report(con: duckdb.DuckDBPyConnection, run_key: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "quarantine.csv"
    con.execute(
        f"""COPY (SELECT file, row_number, "column", raw_value, reason_code, message, level
                 FROM staging.quarantine WHERE _run_key = $run_key
                 ORDER BY file, row_number, "column")
            TO '{_sql_path(path)}' (HEADER, DELIMITER ',')""",
        {"run_key": run_key},
    )
    return path


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")
