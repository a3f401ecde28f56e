"""Checks on what landed in `raw`: counts match the manifest, headers complete, UDFs declared.

The bundle reader refuses a damaged bundle before landing; these re-prove the same facts on the
landed tables, so the Dagster checks that gate staging read the database, not a promise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import duckdb

from flitstack_dagster.novo.columns import BY_ENTITY, BY_FILE


class _Landed(Protocol):
    entity: str
    file: str
    columns: list[str]
    udf_columns: list[str]


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


def missing_headers(landed: Sequence[_Landed]) -> list[str]:
    out = []
    for lf in landed:
        nf = BY_ENTITY.get(lf.entity)
        if nf is None:
            continue
        missing = [h for h in nf.headers if h not in lf.columns]
        if missing:
            out.append(f"{lf.file}: missing column(s) {', '.join(repr(m) for m in missing)}")
    return out


def undeclared_udfs(con: duckdb.DuckDBPyConnection, run_key: str, landed: Sequence[_Landed]) -> list[str]:
    declared: dict[str, set[str]] = {}
    rows = con.execute(
        'SELECT trim("Entity"), trim("Column") FROM raw.user_defined_fields WHERE _run_key = ?', [run_key]
    ).fetchall()
    for entity, column in rows:
        declared.setdefault(entity, set()).add(column)
    out = []
    for lf in landed:
        nf = BY_ENTITY.get(lf.entity)
        if nf is None:
            continue
        extra = [c for c in lf.columns if c not in nf.headers and not c.startswith("_")]
        undeclared = [c for c in extra if c not in declared.get(nf.udf_entity or "", set())]
        if undeclared:
            out.append(
                f"{lf.file}: column(s) {', '.join(repr(c) for c in undeclared)} not declared in "
                "user_defined_fields.csv"
            )
    return out
