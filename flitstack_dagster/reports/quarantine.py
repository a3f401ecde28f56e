"""The quarantine report: one CSV a migration lead can open, every set-aside value with its reason.

Its text cells are safe to open in a spreadsheet (see safe_text.csv_cell); staging.quarantine keeps
the raw values."""

from __future__ import annotations

from pathlib import Path

import duckdb

from flitstack_dagster.core.duck import copy_to_csv


QUERY = ('SELECT file, row_number, "column", raw_value, reason_code, message, level FROM staging.quarantine '
         'WHERE _run_key = $run_key ORDER BY file, row_number, "column"')


def write_quarantine_report(con: duckdb.DuckDBPyConnection, run_key: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    return copy_to_csv(con, QUERY, out_dir / "quarantine.csv", {"run_key": run_key})
