"""Shape a staged migration run and keep the result (`shaped.*`, see shaped_store.py), one run at a time.

The glue between staging, the approved mapping, owner resolution and the shaping package; the
load assets then read `shaped.pd_*` for their partition.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.shaping.shaped_store import ShapedWriter
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.owners import OwnerResolution
from flitstack_dagster.novo.bundle import resolve_inside
from flitstack_dagster.novo.runs import bundle_root, get_run, mode_of
from flitstack_dagster.shaping.checks import CheckResult, check_values_mapped, run_checks
from flitstack_dagster.shaping.common import Owners, ShapeContext
from flitstack_dagster.shaping.inputs import read_staged
from flitstack_dagster.shaping.run import ShapedRun, shape_all
from flitstack_dagster.shaping.sample import select_sample

EXTRA_TABLES = ("set_aside", "warnings", "reconciliation")


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
    values_mapped = check_values_mapped(inputs, mapping)  # streamed shaping releases the staged frames
    with ShapedWriter(con, run_key) as writer:
        shaped = shape_all(inputs, mapping, Owners.of(owners.by_contact(), owners.fallback_user_id), ctx, sink=writer)
        del inputs
        results = run_checks(shaped, None, mapping, loaded, values_mapped=values_mapped)
        for table in EXTRA_TABLES:
            writer(table, getattr(shaped, table))
        shaped.reconciliation = shaped.reconciliation.clear()  # saved; at scale it is one row per source row
    return shaped, results
