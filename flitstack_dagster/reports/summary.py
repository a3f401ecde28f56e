"""The closing summary of a migration run: what landed, what was set aside and why, where reports are.
Text that came from the data is printed through safe_text.plain_line, so it cannot drive the terminal."""

from __future__ import annotations

import textwrap

import duckdb

from flitstack_dagster.core import duck
from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.staging.quarantine import accounting, quarantine_summary


SHAPED_ASIDE = ("SELECT source_entity, reason_code, count(*) FROM shaped.set_aside WHERE run_key = ? "
                "GROUP BY ALL ORDER BY 1, 2")
LOAD_ASIDE = ("SELECT entity, reason_code, count(*) FROM meta.load_set_aside WHERE run_key = ? "
              "GROUP BY ALL ORDER BY 1, 2")
LOAD_COLUMNS = ("entity", "created", "updated", "skipped", "adopted", "tokens")
SET_ASIDE_COLUMNS = ("stage", "entity", "reason", "records")


def print_summary(paths: Paths, run_key: str, sandbox_usage: dict | None = None, brief: bool = False,
                  per_file: bool = True) -> None:
    """Per-file accounting, quarantine, loads, verification, tokens and reports; `brief`: loads and
    verification only (an earlier run of the same bundle); `per_file=False`: the accounting in one line."""
    with duck.connect(paths.duckdb) as con:
        accounts = accounting(con, run_key)
        reasons = quarantine_summary(con, run_key)
        loads = _loads(con, run_key)
        shaped_aside = _query(con, SHAPED_ASIDE, [run_key])
        load_aside = _query(con, LOAD_ASIDE, [run_key])
        verified = _query(con, "SELECT records, fields, matches, mismatches, missing, accepted, unexplained, duplicates "
                               "FROM verification.runs WHERE run_key = ?", [run_key])
    print(f"\nMigration run {run_key}")
    if not brief and not per_file:
        print(_accounting_line(accounts, run_key))
    if not brief and per_file:
        print(f"{'file':28} {'rows':>9} {'staged':>9} {'set aside':>9}  accounted")
    for a in accounts if not brief and per_file else []:
        print(f"{plain_line(a.file):28} {a.raw_rows:>9,} {a.staged_rows:>9,} {a.quarantined_rows:>9,}  {'yes' if a.ok else 'NO'}")
    if reasons and not brief:
        print("\nQuarantine by reason (file by file, each with its row and column: quarantine.csv)")
        for level, what in (("row", "records set aside"), ("value", "records kept, a value repaired or blanked")):
            counts = _by_reason(reasons, level)
            if counts:
                _wrapped(f"{what}: " + ", ".join(f"{plain_line(code)} {n:,}" for code, n in counts))
    if shaped_aside and not brief:
        print("\nSet aside while shaping (shaped.set_aside: e.g. unreadable PM recurrences, missing parents)")
        for entity, reason, n in shaped_aside:
            print(f"  {plain_line(entity):18} {plain_line(reason):28} {n:>7,}")
    if loads:
        print("\nLoaded into Pipedrive (this run)")
        print(f"{'entity':18} {'created':>8} {'updated':>8} {'skipped':>8} {'adopted':>8} {'tokens':>8}")
        for entity, created, updated, skipped, adopted, tokens in loads:
            print(f"{entity:18} {created:>8,} {updated:>8,} {skipped:>8,} {adopted:>8,} {tokens:>8,}")
    if load_aside:
        print("\nSet aside at load time (meta.load_set_aside)")
        for entity, reason, n in load_aside:
            print(f"  {plain_line(entity):18} {plain_line(reason):28} {n:>7,}")
    if verified:
        records, fields, matches, mismatches, missing, accepted, unexplained, dups = verified[0]
        verdict = "clean" if not unexplained and not dups else "NOT clean"
        print(f"\nRead-back verification: {verdict} — {records:,} records, {fields:,} fields: {matches:,} match, "
              f"{mismatches:,} differ, {missing:,} missing, {accepted:,} accepted, {dups:,} duplicates")
    if brief:
        return
    if sandbox_usage:
        print(f"\nTokens spent today in the sandbox account: {sandbox_usage['tokens_today']:,}")
    report_dir = paths.reports / run_key
    names = sorted(p.name for p in report_dir.glob("*")) if report_dir.exists() else []
    print(f"\nReports in {report_dir}/" if names else "\nReports")
    if names:
        _wrapped(", ".join(plain_line(n) for n in names))
    print(f"  DuckDB: {paths.duckdb}")


def _accounting_line(accounts: list, run_key: str) -> str:
    rows, staged, aside = (sum(getattr(a, k) for a in accounts) for k in ("raw_rows", "staged_rows", "quarantined_rows"))
    every = "every row accounted for" if all(a.ok for a in accounts) else "NOT every row accounted for"
    return (f"{len(accounts)} files, {rows:,} rows: {staged:,} staged, {aside:,} set aside; {every} "
            f"(per file: `flitstack summary {plain_line(run_key)}`)")


def _by_reason(reasons: list, level: str) -> list[tuple[str, int]]:
    """Counts per reason code over every file, largest first."""
    totals: dict[str, int] = {}
    for r in reasons:
        if r.level == level:
            totals[r.reason_code] = totals.get(r.reason_code, 0) + r.count
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def _wrapped(text: str) -> None:
    print(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="    "))


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[tuple]:
    try:
        return con.execute(sql, params).fetchall()
    except (duckdb.CatalogException, duckdb.IOException):  # that stage has not run yet (no table, or no files)
        return []


def _loads(con: duckdb.DuckDBPyConnection, run_key: str) -> list[tuple]:
    return _query(
        con,
        """SELECT entity, count(*) FILTER (operation = 'create'), count(*) FILTER (operation = 'update'),
                  count(*) FILTER (operation = 'skip'), count(*) FILTER (operation = 'adopt'), sum(tokens)::BIGINT
           FROM meta.audit_log WHERE run_key = ? GROUP BY entity ORDER BY entity""",
        [run_key],
    )


def loads_by_entity(con: duckdb.DuckDBPyConnection, run_key: str) -> list[dict]:
    """The summary's load table as rows: per entity, created, updated, skipped, adopted, and tokens."""
    return [dict(zip(LOAD_COLUMNS, r)) for r in _loads(con, run_key)]


def set_aside_by_reason(con: duckdb.DuckDBPyConnection, run_key: str) -> list[dict]:
    """The summary's set-aside records as rows: while shaping, then at load time, per entity and reason."""
    return [dict(zip(SET_ASIDE_COLUMNS, (stage, *r)))
            for stage, sql in (("shaping", SHAPED_ASIDE), ("load", LOAD_ASIDE)) for r in _query(con, sql, [run_key])]
