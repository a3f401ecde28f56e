"""Shaped records as per-run Parquet files behind `shaped.*` views: replace exactly one run, keep the
previous files on an error, move tables an older version kept inside DuckDB, hash on save."""

import duckdb
import polars as pl
import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.shaping.shaped_store import ShapedWriter, run_file, shaped_root
from flitstack_dagster.shaping.common import empty_output, with_content_hash


def _deals(*ids: str, title: str = "t") -> pl.DataFrame:
    rows = [{"source_entity": "work_order", "source_id": i, "origin_id": i, "kind": "work_order",
             "payload": f'{{"title":"{title}"}}', "owner_id": 1} for i in ids]
    return pl.concat([empty_output(), pl.DataFrame(rows)], how="diagonal_relaxed")


def _rows(con, run_key: str) -> dict[str, str]:
    return dict(con.execute("SELECT source_id, payload FROM shaped.pd_deals WHERE run_key = ? ORDER BY 1", [run_key]).fetchall())


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "flitstack.duckdb"))
    yield c
    c.close()


def test_each_run_is_replaced_alone_and_hashed_on_save(con, tmp_path):
    for run_key, ids in (("full-a", ("w:1", "w:2")), ("delta-b", ("w:3",))):
        with ShapedWriter(con, run_key) as w:
            w("pd_deals", _deals(*ids))
    with ShapedWriter(con, "full-a") as w:
        w("pd_deals", _deals("w:1", title="new"))
    assert _rows(con, "full-a") == {"w:1": '{"title":"new"}'}
    assert _rows(con, "delta-b") == {"w:3": '{"title":"t"}'}
    assert run_file(tmp_path / "shaped", "pd_deals", "full-a").is_file()
    (h,) = con.execute("SELECT content_hash FROM shaped.pd_deals WHERE run_key = 'full-a'").fetchall()[0]
    assert h == with_content_hash(_deals("w:1", title="new"))["content_hash"][0] and len(h) == 64


def test_an_error_keeps_the_runs_previous_rows_and_leaves_no_part_files(con, tmp_path):
    with ShapedWriter(con, "full-a") as w:
        w("pd_deals", _deals("w:1"))
    with pytest.raises(RuntimeError):
        with ShapedWriter(con, "full-a") as w:
            w("pd_deals", _deals("w:9"))
            raise RuntimeError("shaping failed half way")
    assert _rows(con, "full-a") == {"w:1": '{"title":"t"}'}
    assert sorted(p.name for p in (tmp_path / "shaped").rglob("*") if p.is_file()) == ["data.parquet"]


def test_a_table_kept_inside_duckdb_by_an_older_version_moves_to_files(con):
    con.execute("CREATE SCHEMA shaped")
    con.execute("CREATE TABLE shaped.pd_deals AS SELECT * FROM (VALUES ('full-a', 'w:1', '{}'), ('full-b', 'w:2', '{}')) "
                "t(run_key, source_id, payload)")
    with ShapedWriter(con, "delta-c") as w:
        w("pd_deals", _deals("w:3"))
    got = con.execute("SELECT run_key, source_id FROM shaped.pd_deals ORDER BY 1").fetchall()
    assert got == [("delta-c", "w:3"), ("full-a", "w:1"), ("full-b", "w:2")]
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'pd_deals'").fetchall()
    assert kind == [("VIEW",)]


def test_an_in_memory_connection_is_refused_clearly():
    with pytest.raises(UserError, match="beside the project's DuckDB file"):
        shaped_root(duckdb.connect())
