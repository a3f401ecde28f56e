"""Build a raw layer by hand (per docs/contracts.md) for staging tests."""

from __future__ import annotations

import json

import duckdb

from flitstack_dagster.novo import columns as novo


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def add_bundle(con: duckdb.DuckDBPyConnection, run_key: str, *, date_order: str = "MDY",
               timezone: str = "America/Chicago", exported_at: str = "2026-11-20T07:00:00Z",
               kind: str = "full", tenant: str = "City of Springfield") -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("""CREATE TABLE IF NOT EXISTS raw.bundles (
        _run_key VARCHAR, export_id VARCHAR, tenant VARCHAR, kind VARCHAR, exported_at VARCHAR,
        changed_since VARCHAR, timezone VARCHAR, date_order VARCHAR, encoding VARCHAR,
        bundle_path VARCHAR, manifest_json VARCHAR, landed_at TIMESTAMPTZ)""")
    con.execute("DELETE FROM raw.bundles WHERE _run_key = ?", [run_key])
    con.execute("INSERT INTO raw.bundles VALUES (?, ?, ?, ?, ?, NULL, ?, ?, 'utf-8', '/tmp/x', '{}', now())",
                [run_key, run_key, tenant, kind, exported_at, timezone, date_order])


def with_required_dates(entity: str, rows: list) -> list:
    """Rows with the dates Novo requires (columns.py `required_level` "value") filled in where absent,
    so a test about something else does not also collect `missing_required` notices."""
    nf = novo.BY_ENTITY.get(entity)
    if nf is None:
        return rows
    fill = {c.label: "2026-11-01" if c.type is novo.ColType.DATE else "2026-11-01 10:00"
            for c in nf.columns if c.required and c.required_level == "value"}
    return [{**fill, **r} if isinstance(r, dict) else r for r in rows]


def add_rows(con: duckdb.DuckDBPyConnection, run_key: str, entity: str, rows: list[dict], *,
             fill_required_dates: bool = True) -> None:
    """Land `rows` (header -> text) as raw.<entity> for run_key; standard headers always exist.

    Absent required dates are filled in (see with_required_dates) unless `fill_required_dates` is False.
    """
    if fill_required_dates:
        rows = with_required_dates(entity, rows)
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    if entity in ("workflow_rules", "form_configurations"):
        headers = ["json"]
        rows = [{"json": r if isinstance(r, str) else json.dumps(r)} for r in rows]
    else:
        headers = list(novo.BY_ENTITY[entity].headers)
    for r in rows:
        for h in r:
            if h not in headers:
                headers.append(h)
    cols = ", ".join(f"{q(h)} VARCHAR" for h in headers)
    con.execute(f"CREATE TABLE IF NOT EXISTS raw.{q(entity)} (_run_key VARCHAR, _row_number BIGINT, {cols})")
    have = {c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='raw' AND table_name=?",
        [entity]).fetchall()}
    for h in headers:
        if h not in have:
            con.execute(f"ALTER TABLE raw.{q(entity)} ADD COLUMN {q(h)} VARCHAR")
    con.execute(f"DELETE FROM raw.{q(entity)} WHERE _run_key = ?", [run_key])
    for i, r in enumerate(rows, start=1):
        names = ["_run_key", "_row_number"] + list(r)
        con.execute(
            f"INSERT INTO raw.{q(entity)} ({', '.join(q(n) for n in names)}) VALUES ({', '.join('?' * len(names))})",
            [run_key, i, *r.values()])


def raw_layer(con: duckdb.DuckDBPyConnection, run_key: str, files: dict[str, list], *,
              fill_required_dates: bool = True, **bundle) -> None:
    add_bundle(con, run_key, **bundle)
    for entity, rows in files.items():
        add_rows(con, run_key, entity, rows, fill_required_dates=fill_required_dates)
