"""Checks on what landed in `raw`: counts match the manifest, headers complete, UDFs declared.

The bundle reader refuses a damaged bundle before landing; these re-prove the same facts on the
landed tables with the reader's own rules (`header_problems`, `check_udfs_declared`), so the Dagster
checks that gate staging read the database, not a promise.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from flitstack_dagster.novo.bundle import check_udfs_declared, header_problems
from flitstack_dagster.novo.columns import BY_ENTITY, BY_FILE
from flitstack_dagster.novo.landing import LandedFile


def manifest_mismatches(con: duckdb.DuckDBPyConnection, run_key: str, manifest) -> list[str]:
    out = []
    for f in manifest.files:
        nf = BY_FILE.get(f.name)
        if nf is None:
            continue
        landed = con.execute(f'SELECT count(*) FROM raw."{nf.entity}" WHERE _run_key = ?', [run_key]).fetchall()[0][0]
        if landed != f.rows:
            out.append(f"{f.name}: {landed:,} rows landed, manifest says {f.rows:,}")
    return out


def missing_headers(landed: Sequence[LandedFile]) -> list[str]:
    return [p for lf in landed if lf.entity in BY_ENTITY for p in header_problems(BY_ENTITY[lf.entity], lf.columns)]


def undeclared_udfs(con: duckdb.DuckDBPyConnection, run_key: str, landed: Sequence[LandedFile]) -> list[str]:
    declared = con.execute(
        'SELECT "Entity", "Column" FROM raw.user_defined_fields WHERE _run_key = ?', [run_key]
    ).fetchall()
    headers = {lf.file: lf.columns for lf in landed if lf.file in BY_FILE}
    return check_udfs_declared(headers, declared)
