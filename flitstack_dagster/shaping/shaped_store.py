"""Where shaped records live: one Parquet file per run and table beside the project's DuckDB file
(`shaped/<table>/run_key=<run>/data.parquet`), read through the views `shaped.<table>`.

Why files and not DuckDB tables: at a million work orders shaping writes ~10 M records of JSON; DuckDB
spends 2–4× the CPU of a Parquet write compressing them, and holds the inserted data in memory until
commit. Files also make "replace exactly this run's rows" a rename. Readers are unchanged: the loader,
verification and rollback query `shaped.pd_deals WHERE run_key = ?` as before (the run key is the
folder name, so a query reads only its run's files).
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import duckdb
import polars as pl

from flitstack_dagster.core.duck import database_file
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.shaping.common import with_content_hash

FILE = "data.parquet"


def shaped_root(con: duckdb.DuckDBPyConnection) -> Path:
    """`<folder of the project's DuckDB file>/shaped`."""
    db = database_file(con)
    if db is None:
        raise UserError("shaping stores its records beside the project's DuckDB file; this connection is in memory")
    return db.parent / "shaped"


def run_file(root: Path, table: str, run_key: str) -> Path:
    return root / table / f"run_key={run_key}" / FILE


def ensure_view(con: duckdb.DuckDBPyConnection, root: Path, table: str) -> None:
    """(Re)create `shaped.<table>` over its files; a table an older version stored inside DuckDB is
    moved to files first, so no run's rows are lost."""
    con.execute("CREATE SCHEMA IF NOT EXISTS shaped")
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = 'shaped' AND table_name = ?", [table]
    ).fetchall()
    if kind and kind[0][0] == "BASE TABLE":
        for (run_key,) in con.execute(f"SELECT DISTINCT run_key FROM shaped.{table}").fetchall():
            target = run_file(root, table, run_key)
            target.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY (SELECT * EXCLUDE (run_key) FROM shaped.{table} WHERE run_key = ?) TO '{_sql_path(target)}' "
                        "(FORMAT parquet)", [run_key])
        con.execute(f"DROP TABLE shaped.{table}")
    glob = _sql_path(root / table) + "/*/*.parquet"
    con.execute(
        f"CREATE OR REPLACE VIEW shaped.{table} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, "
        "hive_types = {'run_key': 'VARCHAR'}, union_by_name = true)"
    )


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


class ShapedWriter:
    """Writes one run's shaped tables on a background thread, so writing one output overlaps shaping
    the next; computes `content_hash` (`common.with_content_hash`) for outputs that arrive without it.
    A context manager: on a clean exit every file is moved into place and the views are (re)created;
    on an error nothing of this run's previous files is touched."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_key: str, depth: int = 1) -> None:
        self.con, self.run_key = con, run_key
        self.root = shaped_root(con)
        self._queue: queue.Queue[tuple[str, pl.DataFrame] | None] = queue.Queue()
        self._slots = threading.Semaphore(depth)  # outputs handed over and not yet written
        self._error: BaseException | None = None
        self._written: dict[str, list[Path]] = {}
        self._thread = threading.Thread(target=self._work, name=f"shaped-writer-{run_key}", daemon=True)

    def __enter__(self) -> "ShapedWriter":
        self._thread.start()
        return self

    def __call__(self, name: str, df: pl.DataFrame) -> None:
        """Hand over an output; waits while `depth` earlier ones are still being written, so at most
        that many outputs are alive besides the one being shaped."""
        self._raise()
        self._slots.acquire()
        self._queue.put((name, df))

    def __exit__(self, exc_type, exc, tb) -> None:
        self._queue.put(None)
        self._thread.join()
        if exc is None and self._error is None:
            self._publish()
        else:
            for parts in self._written.values():
                for p in parts:
                    p.unlink(missing_ok=True)
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
            del item  # the frame is freed before the next one is taken
            self._slots.release()

    def _write(self, name: str, df: pl.DataFrame) -> None:
        if name.startswith("pd_") and "content_hash" in df.columns and df["content_hash"].null_count() == df.height:
            df = with_content_hash(df, files=name == "pd_files")
        if "run_key" in df.columns:
            df = df.drop("run_key")  # the folder name carries it
        parts = self._written.setdefault(name, [])
        target = run_file(self.root, name, self.run_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{len(parts)}.{os.getpid()}.{FILE}.tmp")  # not matched by the views' glob
        df.write_parquet(part, compression="snappy")
        parts.append(part)

    def _publish(self) -> None:
        """Move each table's new part(s) into place, then drop the run's other files, (re)create the views."""
        for name, parts in self._written.items():
            folder = parts[0].parent
            finals = [folder / (FILE if i == 0 else f"data_{i}.parquet") for i in range(len(parts))]
            for part, final in zip(parts, finals):
                os.replace(part, final)  # atomic: readers see the old file or the new one
            for old in folder.glob("*.parquet"):
                if old not in finals:
                    old.unlink()
            ensure_view(self.con, self.root, name)
