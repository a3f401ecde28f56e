"""duck.read_frame: a query's result through a Parquet file beside the database (same frame as `.pl()`,
every type the staging layer uses, nothing left behind); in memory it reads directly."""

import duckdb

from flitstack_dagster.core.duck import read_frame

QUERY = """SELECT * FROM (VALUES
    (1, 'WO-1', TIMESTAMPTZ '2026-11-20 14:15:00+00', DATE '2026-11-20', 12.50::DECIMAL(18,2), 1.5::DOUBLE, true, ['a', 'b']),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) t(n, id, logged_at, day, cost, hours, flag, tags) WHERE n >= ?"""


def test_read_frame_through_parquet_equals_the_direct_fetch(tmp_path):
    con = duckdb.connect(str(tmp_path / "flitstack.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    got = read_frame(con, QUERY, [1])
    assert got.equals(con.sql(QUERY, params=[1]).pl())
    assert got.schema == con.sql(QUERY, params=[1]).pl().schema
    assert read_frame(con, QUERY, [3]).height == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flitstack.duckdb"]  # no scratch file left


def test_read_frame_in_memory_reads_directly():
    con = duckdb.connect()
    assert read_frame(con, QUERY, [2])["n"].to_list() == [2]
