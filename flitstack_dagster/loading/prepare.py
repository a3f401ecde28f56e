"""Shape a staged migration run and keep the result in DuckDB (`shaped.*`), one run's rows at a time.

The glue between staging, the approved mapping, owner resolution and the shaping package; the
load assets then read `shaped.pd_*` for their partition.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import duckdb
import polars as pl

from flitstack_dagster.duck import has_table
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.owners import OwnerResolution
from flitstack_dagster.novo.bundle import resolve_inside
from flitstack_dagster.runs import bundle_root, get_run, mode_of
from flitstack_dagster.shaping.common import Owners, ShapeContext, content_hash_sql
from flitstack_dagster.shaping.checks import CheckResult, run_checks
from flitstack_dagster.shaping.inputs import read_staged
from flitstack_dagster.shaping.sample import select_sample
from flitstack_dagster.shaping.run import ShapedRun, shape_all

EXTRA_TABLES = ("set_aside", "warnings", "reconciliation")
NO_COMPRESSION = "dict_fsst"


def shape_run(
    con: duckdb.DuckDBPyConnection, run_key: str, mapping: Mapping, owners: OwnerResolution, work_dir: Path
) -> tuple[ShapedRun, list[CheckResult]]:
    """Shape, check and store one run; staged rows and the id map are read once. Each output is saved
    as soon as it is shaped (while the next one is shaped) and dropped from memory."""
    run = get_run(con, run_key)
    exported_at, tz = con.execute(
        "SELECT exported_at, timezone FROM raw.bundles WHERE _run_key = ?", [run_key]
    ).fetchall()[0]
    loaded = {r[0] for r in con.execute("SELECT source_id FROM meta.id_map").fetchall()} if has_table(con, "meta", "id_map") else set()
    root = bundle_root(run, work_dir)
    ctx = ShapeContext(
        run_key=run_key, exported_at=exported_at, timezone=tz, mode=mode_of(run_key), bundle_root=root,
        already_loaded=frozenset(loaded), resolve_inside=lambda rel: resolve_inside(root, rel), hash_on_save=True,
    )
    inputs = read_staged(con, run_key)
    if ctx.mode == "sample":  # the stratified slice and everything it references, nothing else
        inputs = select_sample(inputs)
    with ShapedWriter(con, run_key) as writer:
        shaped = shape_all(inputs, mapping, Owners.of(owners.by_contact(), owners.fallback_user_id), ctx, sink=writer)
        results = run_checks(shaped, inputs, mapping, loaded)
        del inputs
        for table in EXTRA_TABLES:
            writer(table, getattr(shaped, table))
        shaped.reconciliation = shaped.reconciliation.clear()  # saved; at scale it is one row per source row
    return shaped, results


class ShapedWriter:
    """Replaces exactly one run's rows of every `shaped.*` table in one transaction, on its own DuckDB
    connection and thread: saving an output overlaps shaping the next. Computes `content_hash`
    (`common.content_hash_sql`) for outputs that arrive without it. Used as a context manager: commits
    on a clean exit, rolls back otherwise."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_key: str, depth: int = 1) -> None:
        self.run_key = run_key
        self._cur = con.cursor()
        self._queue: queue.Queue[tuple[str, pl.DataFrame] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._work, name=f"shaped-writer-{run_key}", daemon=True)

    def __enter__(self) -> "ShapedWriter":
        # DuckDB 2's default string compression (dict_fsst) costs twice the CPU of the whole insert for
        # these wide JSON payloads (measured: 4.8 vs 2.3 CPU-s per 100,000 work orders); shaped tables
        # are rewritten per run and read once by the loader, so they are stored without it.
        self._cur.execute(f"SET disabled_compression_methods = '{NO_COMPRESSION}'")
        self._cur.execute("CREATE SCHEMA IF NOT EXISTS shaped")
        self._cur.execute("BEGIN")
        self._thread.start()
        return self

    def __call__(self, name: str, df: pl.DataFrame) -> None:
        self._raise()
        self._queue.put((name, df))

    def __exit__(self, exc_type, exc, tb) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            if exc is None and self._error is None:
                self._cur.execute("COMMIT")
            else:
                self._cur.execute("ROLLBACK")
        finally:
            self._cur.execute("RESET disabled_compression_methods")
            self._cur.close()
        if exc is None:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as e:  # reported on the caller's thread
                    self._error = e

    def _write(self, name: str, df: pl.DataFrame) -> None:
        cur = self._cur
        if "run_key" not in df.columns:
            df = df.with_columns(pl.lit(self.run_key).alias("run_key"))
        select = "*"
        if name.startswith("pd_") and "content_hash" in df.columns and df["content_hash"].null_count() == df.height:
            select = f"* REPLACE ({content_hash_sql(files=name == 'pd_files')} AS content_hash)"
        cur.register("_frame", df)
        try:
            if name not in self._seen:
                cur.execute(f"CREATE TABLE IF NOT EXISTS shaped.{name} AS SELECT * FROM _frame LIMIT 0")
                cur.execute(f"DELETE FROM shaped.{name} WHERE run_key = ?", [self.run_key])
                self._seen.add(name)
            cur.execute(f"INSERT INTO shaped.{name} BY NAME SELECT {select} FROM _frame")
        finally:
            cur.unregister("_frame")
