"""Shape a staged migration run and keep the result in DuckDB (`shaped.*`), one run's rows at a time.

The glue between staging, the approved mapping, owner resolution and the shaping package; the
load assets then read `shaped.pd_*` for their partition.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from flitstack_dagster.duck import has_table
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.owners import OwnerResolution
from flitstack_dagster.novo.bundle import resolve_inside
from flitstack_dagster.runs import bundle_root, get_run, mode_of
from flitstack_dagster.shaping.common import Owners, ShapeContext
from flitstack_dagster.shaping.checks import CheckResult, run_checks
from flitstack_dagster.shaping.inputs import read_staged
from flitstack_dagster.shaping.sample import select_sample
from flitstack_dagster.shaping.run import ShapedRun, shape_all

EXTRA_TABLES = ("set_aside", "warnings", "reconciliation")


def shape_run(
    con: duckdb.DuckDBPyConnection, run_key: str, mapping: Mapping, owners: OwnerResolution, work_dir: Path
) -> tuple[ShapedRun, list[CheckResult]]:
    """Shape, store and check one run; staged rows and the id map are read once."""
    run = get_run(con, run_key)
    exported_at, tz = con.execute(
        "SELECT exported_at, timezone FROM raw.bundles WHERE _run_key = ?", [run_key]
    ).fetchall()[0]
    loaded = {r[0] for r in con.execute("SELECT source_id FROM meta.id_map").fetchall()} if has_table(con, "meta", "id_map") else set()
    root = bundle_root(run, work_dir)
    ctx = ShapeContext(
        run_key=run_key, exported_at=exported_at, timezone=tz, mode=mode_of(run_key), bundle_root=root,
        already_loaded=frozenset(loaded), resolve_inside=lambda rel: resolve_inside(root, rel),
    )
    inputs = read_staged(con, run_key)
    if ctx.mode == "sample":  # the stratified slice and everything it references, nothing else
        inputs = select_sample(inputs)
    shaped = shape_all(inputs, mapping, Owners.of(owners.by_contact(), owners.fallback_user_id), ctx)
    results = run_checks(shaped, inputs, mapping, loaded)
    del inputs  # at a million work orders the staged frames are gigabytes; saving does not need them
    save_shaped(con, run_key, shaped)
    return shaped, results


def save_shaped(con: duckdb.DuckDBPyConnection, run_key: str, shaped: ShapedRun) -> None:
    """Replace exactly this run's rows of every shaped table, in one transaction."""
    frames: dict[str, pl.DataFrame] = {**shaped.outputs(), **{t: getattr(shaped, t) for t in EXTRA_TABLES}}
    con.execute("CREATE SCHEMA IF NOT EXISTS shaped")
    con.execute("BEGIN")
    try:
        for name, df in frames.items():
            if "run_key" not in df.columns:
                df = df.with_columns(pl.lit(run_key).alias("run_key"))
            con.register("_frame", df)
            con.execute(f"CREATE TABLE IF NOT EXISTS shaped.{name} AS SELECT * FROM _frame LIMIT 0")
            con.execute(f"DELETE FROM shaped.{name} WHERE run_key = ?", [run_key])
            con.execute(f"INSERT INTO shaped.{name} BY NAME SELECT * FROM _frame")
            con.unregister("_frame")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
