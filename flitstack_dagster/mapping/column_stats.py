"""Per-column numbers of one staged table: non-null count, distinct count, longest value, top values
and first-seen examples — exact, in a few set-based DuckDB queries whatever the row count.

Each scalar column is grouped once by value (the one hash pass an exact distinct count needs); the
rest are aggregates over those groups, sized so a million-value column is not sorted or windowed:

* top values: ordered by count desc, then text. The count of the TOP_N-th group (`tn`) splits them:
  the (fewer than TOP_N) groups counted more than `tn` are ordered in full, the rest of the top are
  the smallest texts among the groups counted exactly `tn` (a plain min over text).
* examples: the first EXAMPLES_N distinct values by first row, then text. They are read from the
  table's first rows (a top-N on `_row_number`); only a column those rows do not settle (fewer
  distinct values there) is grouped again with each value's first row.

List columns (multi pick lists) count whole lists for distinct / longest and single elements for
top values and examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOP_N = 5
EXAMPLES_N = 3
FIRST_ROWS = 2000  # rows read in row order to find each column's first-seen values


@dataclass
class ColumnStats:
    nonnull: int = 0
    distinct: int = 0
    max_length: int | None = None
    top: list[tuple[str, int]] = field(default_factory=list)  # (text, rows), most frequent first
    examples: list[str] = field(default_factory=list)  # first seen, in row order


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _scalar_sql(table: str, i: int, column: str) -> str:
    qc = _q(column)
    return f"""SELECT {i} AS i, * FROM (
        WITH g AS MATERIALIZED (
            SELECT CAST({qc} AS VARCHAR) AS s, count(*) AS n FROM {table}
            WHERE _run_key = $run AND {qc} IS NOT NULL GROUP BY {qc}),
        k AS (SELECT count(*) AS d, sum(n) AS nn, max(length(s)) AS ml, list_last(max(n, {TOP_N})) AS tn FROM g)
        SELECT d, nn, ml, tn,
            (SELECT min_by({{'v': s, 'n': n}}, {{'k': -n, 'v': s}}, {TOP_N}) FROM g WHERE n > (SELECT tn FROM k)) AS hi,
            (SELECT min(s, {TOP_N}) FROM g WHERE n = (SELECT tn FROM k)) AS low,
            NULL AS ex
        FROM k)"""


def _list_sql(table: str, i: int, column: str) -> str:
    qc = _q(column)
    where = f"FROM {table} WHERE _run_key = $run"
    return f"""SELECT {i} AS i, (SELECT count(DISTINCT {qc}) {where}) AS d, (SELECT count({qc}) {where}) AS nn,
            (SELECT max(len({qc})) {where}) AS ml, NULL AS tn,
            min_by({{'v': s, 'n': n}}, {{'k': -n, 'v': s}}, {TOP_N}) AS hi, NULL AS low,
            min_by(s, {{'f': first_row, 'v': s}}, {EXAMPLES_N}) AS ex
        FROM (SELECT s, count(*) AS n, min(_row_number) AS first_row
              FROM (SELECT CAST(unnest({qc}) AS VARCHAR) AS s, _row_number {where})
              WHERE s IS NOT NULL GROUP BY s)"""


def _grouped_examples_sql(table: str, column: str) -> str:
    qc = _q(column)
    return (f"SELECT min_by(s, {{'f': first_row, 'v': s}}, {EXAMPLES_N}) FROM "
            f"(SELECT CAST({qc} AS VARCHAR) AS s, min(_row_number) AS first_row FROM {table} "
            f"WHERE _run_key = $run AND {qc} IS NOT NULL GROUP BY {qc})")


def _first_seen(con, table: str, run_key: str, columns: list[str]) -> dict[str, list[str] | None]:
    """Each column's first EXAMPLES_N distinct values (by first row, then text) from the table's first
    rows; None where those rows hold fewer and the table goes on."""
    sel = ", ".join(f"CAST({_q(c)} AS VARCHAR)" for c in columns)
    rows = con.execute(f"SELECT _row_number, {sel} FROM (SELECT * FROM {table} WHERE _run_key = ? "
                       f"ORDER BY _row_number LIMIT {FIRST_ROWS})", [run_key]).fetchall()
    whole = len(rows) < FIRST_ROWS
    if not whole:
        # rows sharing the last row number may go on past the limit: keep only rows before it, all of
        # which were read, so a value's first row among them is its first row in the table
        last = rows[-1][0]
        rows = [r for r in rows if r[0] != last]
    out: dict[str, list[str] | None] = {}
    for j, c in enumerate(columns, start=1):
        first: dict[str, Any] = {}
        for r in rows:
            v = r[j]
            if v is not None and (v not in first or r[0] < first[v]):
                first[v] = r[0]
        ordered = sorted(first, key=lambda v: (first[v], v))
        out[c] = ordered[:EXAMPLES_N] if whole or len(ordered) >= EXAMPLES_N else None
    return out


def column_stats(con, table: str, run_key: str, columns: list[tuple[str, str]]) -> list[ColumnStats]:
    """Stats of `columns` ((name, DuckDB type), in order) over the rows of `run_key` in `table`."""
    if not columns:
        return []
    union = " UNION ALL ".join(
        _list_sql(table, i, c) if t.endswith("[]") else _scalar_sql(table, i, c) for i, (c, t) in enumerate(columns))
    got = {int(r[0]): r[1:] for r in con.execute(union, {"run": run_key}).fetchall()}
    scalar = [c for c, t in columns if not t.endswith("[]")]
    seen = _first_seen(con, table, run_key, scalar) if scalar else {}
    out = []
    for i, (c, t) in enumerate(columns):
        d, nn, ml, tn, hi, low, ex = got[i]
        top = [(v["v"], int(v["n"])) for v in hi or []] + [(s, int(tn)) for s in low or []]
        if not t.endswith("[]"):
            ex = seen[c]
            if ex is None:
                ex = con.execute(_grouped_examples_sql(table, c), {"run": run_key}).fetchall()[0][0]
        out.append(ColumnStats(nonnull=int(nn or 0), distinct=int(d or 0),
                               max_length=int(ml) if ml is not None else None, top=top[:TOP_N], examples=list(ex or [])))
    return out


__all__ = ["EXAMPLES_N", "FIRST_ROWS", "TOP_N", "ColumnStats", "column_stats"]
