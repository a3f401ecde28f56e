"""duck.read_frame: a query's result through a Parquet file beside the database (same frame as `.pl()`,
every type the staging layer uses, nothing left behind); in memory it reads directly."""

import duckdb

from flitstack_dagster.core.duck import drop_cached_blocks, read_frame

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


def test_cached_blocks_are_dropped_and_the_memory_limit_kept(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS label FROM range(8000000) r(i)")
    con.close()  # reopened: the table's blocks are on disk only
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute("SELECT max(label) FROM t").fetchall()  # every block of the table read into DuckDB's cache

    def cached() -> int:
        return con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0]

    before = cached()
    drop_cached_blocks(con)
    assert before > 64 * 2**20 >= cached()
    assert read_frame(con, "SELECT * FROM t").height == 8000000 and cached() <= 64 * 2**20  # a read drops them too
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == limit
    assert con.execute("SELECT count(*) FROM t").fetchall()[0][0] == 8000000  # still readable
