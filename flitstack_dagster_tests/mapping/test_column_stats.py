"""column_stats against a brute-force count in Python: the shortcuts (top values split at the TOP_N-th
count, examples from the first rows, grouped examples when those rows do not settle them) give the
same numbers as counting every value."""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest

from flitstack_dagster.mapping import column_stats as cs

COLUMNS = [("uniq", "VARCHAR"), ("few", "VARCHAR"), ("late", "VARCHAR"), ("num", "DOUBLE"), ("ts", "TIMESTAMPTZ"),
           ("tags", "VARCHAR[]")]


@pytest.fixture
def table():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # 300 rows of run r1 (+ rows of another run that must not count); row numbers repeat in pairs past
    # row 200 so first rows tie; `late` is empty until row 250; `few` has count ties for the top.
    con.execute("""CREATE TABLE t AS SELECT * FROM (
        SELECT 'r1' AS _run_key, CASE WHEN i < 200 THEN i ELSE 200 + (i - 200) // 2 END AS _row_number,
               'U' || (1000 - i) AS uniq,
               CASE WHEN i % 10 = 9 THEN NULL ELSE ['b', 'a', 'c', 'd', 'e', 'f'][1 + (i * 7) % 6] END AS few,
               CASE WHEN i < 250 THEN NULL ELSE 'L' || (i % 4) END AS late,
               CASE WHEN i % 3 = 0 THEN NULL ELSE (i % 11) * 1.5 END AS num,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i % 37) HOUR AS ts,
               CASE WHEN i % 5 = 0 THEN NULL ELSE ['x' || (i % 3), 'y' || (i % 2)] END AS tags
        FROM range(300) r(i)
        UNION ALL SELECT 'r2', 1, 'zz', 'zz', 'zz', 1, TIMESTAMPTZ '2030-01-01 00:00:00+00', ['zz']
    )""")
    return con


def brute(con, column: str, is_list: bool) -> cs.ColumnStats:
    rows = con.execute(f'SELECT _row_number, CAST("{column}" AS VARCHAR[]) AS l, "{column}" AS v, '
                       f'CAST("{column}" AS VARCHAR) AS s FROM t WHERE _run_key = \'r1\'' if is_list else
                       f'SELECT _row_number, NULL, "{column}", CAST("{column}" AS VARCHAR) FROM t WHERE _run_key = \'r1\'',
                       ).fetchall()
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for rn, lst, _v, s in rows:
        for x in (lst or []) if is_list else ([s] if s is not None else []):
            counts[x] += 1
            first[x] = min(first.get(x, rn), rn)
    present = [r for r in rows if r[2] is not None]
    return cs.ColumnStats(
        nonnull=len(present),
        distinct=len({tuple(r[1]) if is_list else r[2] for r in present}),
        max_length=max((len(r[1]) if is_list else len(r[3]) for r in present), default=None),
        top=sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:cs.TOP_N],
        examples=sorted(first, key=lambda x: (first[x], x))[:cs.EXAMPLES_N],
    )


@pytest.mark.parametrize("first_rows", [5, 40, 260, 10_000])
def test_matches_counting_every_value(table, monkeypatch, first_rows):
    monkeypatch.setattr(cs, "FIRST_ROWS", first_rows)
    got = cs.column_stats(table, "t", "r1", COLUMNS)
    for (name, t), st in zip(COLUMNS, got, strict=True):
        assert st == brute(table, name, t.endswith("[]")), name


def test_top_values_split_at_the_fifth_count(table):
    # b, c, e: 50 rows each; a, d, f: 40 — the fifth place is a tie at 40, settled by text
    few = cs.column_stats(table, "t", "r1", [("few", "VARCHAR")])[0]
    assert few.top == [("b", 50), ("c", 50), ("e", 50), ("a", 40), ("d", 40)]
    assert few.distinct == 6 and few.nonnull == 270 and few.examples == ["b", "a", "c"]


def test_empty_run(table):
    st = cs.column_stats(table, "t", "nope", COLUMNS)
    assert all(s == cs.ColumnStats() for s in st)


def test_rows_tied_at_the_first_rows_limit_are_not_half_read(monkeypatch):
    # the limit takes one of the two rows numbered 3: its value must not pass for the first one seen there
    con = duckdb.connect()
    con.execute("CREATE TABLE t (_run_key VARCHAR, _row_number BIGINT, v VARCHAR)")
    con.execute("INSERT INTO t VALUES ('r1', 1, 'm'), ('r1', 2, 'n'), ('r1', 3, 'q'), ('r1', 3, 'p'), ('r1', 4, 'a')")
    monkeypatch.setattr(cs, "FIRST_ROWS", 3)
    assert cs.column_stats(con, "t", "r1", [("v", "VARCHAR")])[0].examples == ["m", "n", "p"]
