"""The closing summary of a migration run: what landed, what was set aside and why, where reports are."""

from __future__ import annotations

import duckdb

from flitstack_dagster import duck
from flitstack_dagster.settings import Paths
from flitstack_dagster.staging.quarantine import accounting, quarantine_summary


def print_summary(paths: Paths, run_key: str, sandbox_usage: dict | None = None) -> None:
    with duck.connect(paths.duckdb) as con:
        accounts = accounting(con, run_key)
        reasons = quarantine_summary(con, run_key)
        loads = _loads(con, run_key)
    print(f"\nMigration run {run_key}")
    print(f"{'file':28} {'rows':>9} {'staged':>9} {'set aside':>9}  accounted")
    for a in accounts:
        print(f"{a.file:28} {a.raw_rows:>9,} {a.staged_rows:>9,} {a.quarantined_rows:>9,}  {'yes' if a.ok else 'NO'}")
    if reasons:
        print("\nQuarantine by reason (row: record set aside; value: record kept, value repaired or blanked)")
        for r in reasons:
            print(f"  {r.file:26} {r.reason_code:22} {r.level:5} {r.count:>7,}")
    if loads:
        print("\nLoaded into Pipedrive (this run)")
        print(f"{'entity':18} {'created':>8} {'updated':>8} {'skipped':>8} {'adopted':>8} {'tokens':>8}")
        for entity, created, updated, skipped, adopted, tokens in loads:
            print(f"{entity:18} {created:>8,} {updated:>8,} {skipped:>8,} {adopted:>8,} {tokens:>8,}")
    if sandbox_usage:
        print(f"\nTokens spent today in the sandbox account: {sandbox_usage['tokens_today']:,}")
    print("\nReports")
    report_dir = paths.reports / run_key
    for p in sorted(report_dir.glob("*")) if report_dir.exists() else []:
        print(f"  {p}")
    print(f"  DuckDB: {paths.duckdb}")


def _loads(con: duckdb.DuckDBPyConnection, run_key: str) -> list[tuple]:
    try:
        return con.execute(
            """SELECT entity, count(*) FILTER (operation = 'create'), count(*) FILTER (operation = 'update'),
                      count(*) FILTER (operation = 'skip'), count(*) FILTER (operation = 'adopt'), sum(tokens)::BIGINT
               FROM meta.audit_log WHERE run_key = ? GROUP BY entity ORDER BY entity""",
            [run_key],
        ).fetchall()
    except duckdb.CatalogException:
        return []
