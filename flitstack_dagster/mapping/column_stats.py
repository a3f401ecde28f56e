"""Per-column numbers of one staged table: non-null count, distinct count, longest value, top values
and first-seen examples — exact, in a few set-based DuckDB queries whatever the row count.

Each scalar column is grouped once by value (the one hash pass an exact distinct count needs); the
rest are aggregates over those groups, sized so a million-value column is not sorted or windowed:

* top values: ordered by count desc, then text. The groups are grouped again by their count (a few
  levels), each level keeping its TOP_N smallest texts (a plain min over text); the top is read off
  the most counted levels.
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
    """Rows (i, n, lows, d, nn, ml): per count level n (most counted first, only the levels the top
    reaches) the TOP_N smallest texts counted n times; d, nn, ml are the column's totals."""
    qc = _q(column)
    return f"""SELECT {i} AS i, n, lows, d, nn, ml FROM (
        SELECT n, min(s, {TOP_N}) AS lows,
               sum(count(*)) OVER () AS d, sum(n * count(*)) OVER () AS nn, max(max(length(s))) OVER () AS ml,
               coalesce(sum(count(*)) OVER (ORDER BY n DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                   AS before
        FROM (SELECT CAST({qc} AS VARCHAR) AS s, count(*) AS n FROM {table}
              WHERE _run_key = $run AND {qc} IS NOT NULL GROUP BY {qc})
        GROUP BY n) WHERE before < {TOP_N}"""


def _list_sql(table: str, column: str) -> str:
    qc = _q(column)
    where = f"FROM {table} WHERE _run_key = $run"
    return f"""SELECT (SELECT count(DISTINCT {qc}) {where}), (SELECT count({qc}) {where}), (SELECT max(len({qc})) {where}),
            min_by({{'v': s, 'n': n}}, {{'k': -n, 'v': s}}, {TOP_N}), min_by(s, {{'f': first_row, 'v': s}}, {EXAMPLES_N})
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
    n, numbered, last = con.execute(
        f"SELECT count(*), count(_row_number), max(_row_number) FROM (SELECT _row_number FROM {table} "
        f"WHERE _run_key = ? ORDER BY _row_number LIMIT {FIRST_ROWS})", [run_key]).fetchall()[0]
    if numbered < n:  # rows without a row number: leave the order to the grouped query
        return dict.fromkeys(columns)
    whole = n < FIRST_ROWS
    # every row numbered up to `last` (ties included), so a value's first row among them is its first row
    # in the table; reading only the row number first keeps the wide scan to the first row groups
    sel = ", ".join(f"CAST({_q(c)} AS VARCHAR)" for c in columns)
    rows = con.execute(f"SELECT _row_number, {sel} FROM {table} WHERE _run_key = ? AND _row_number <= ?",
                       [run_key, last]).fetchall() if n else []
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


def _list_stats(con, table: str, run_key: str, column: str) -> ColumnStats:
    d, nn, ml, top, ex = con.execute(_list_sql(table, column), {"run": run_key}).fetchall()[0]
    return ColumnStats(nonnull=int(nn or 0), distinct=int(d or 0), max_length=int(ml) if ml is not None else None,
                       top=[(v["v"], int(v["n"])) for v in top or []], examples=list(ex or []))


def _scalar_stats(con, table: str, run_key: str, columns: list[str]) -> dict[str, ColumnStats]:
    union = " UNION ALL ".join(_scalar_sql(table, i, c) for i, c in enumerate(columns))
    levels: dict[int, list[tuple]] = {}
    for i, n, lows, d, nn, ml in con.execute(union, {"run": run_key}).fetchall():
        levels.setdefault(int(i), []).append((int(n), lows, d, nn, ml))
    seen = _first_seen(con, table, run_key, columns)
    out = {}
    for i, c in enumerate(columns):
        lv = sorted(levels.get(i, []), key=lambda x: -x[0])
        _, _, d, nn, ml = lv[0] if lv else (0, None, 0, 0, None)
        ex = seen[c]
        if ex is None:
            ex = con.execute(_grouped_examples_sql(table, c), {"run": run_key}).fetchall()[0][0]
        out[c] = ColumnStats(nonnull=int(nn or 0), distinct=int(d or 0), max_length=int(ml) if ml is not None else None,
                             top=[(v, n) for n, lows, *_ in lv for v in lows][:TOP_N], examples=list(ex or []))
    return out


def column_stats(con, table: str, run_key: str, columns: list[tuple[str, str]]) -> list[ColumnStats]:
    """Stats of `columns` ((name, DuckDB type), in order) over the rows of `run_key` in `table`."""
    scalar = [c for c, t in columns if not t.endswith("[]")]
    got = _scalar_stats(con, table, run_key, scalar) if scalar else {}
    return [got[c] if c in got else _list_stats(con, table, run_key, c) for c, _ in columns]


__all__ = ["EXAMPLES_N", "FIRST_ROWS", "TOP_N", "ColumnStats", "column_stats"]
