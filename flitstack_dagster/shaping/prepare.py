"""Shape a staged migration run and keep the result (`shaped.*`, see shaped_store.py), one run at a time.

The glue between staging, the approved mapping, owner resolution and the shaping package; the
load assets then read `shaped.pd_*` for their partition.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import duckdb
import polars as pl

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.shaping.shaped_store import ShapedWriter
from flitstack_dagster.mapping.archive import archived_earlier
from flitstack_dagster.mapping.model import FOLDS, Mapping
from flitstack_dagster.shaping import folding
from flitstack_dagster.mapping.owners import OwnerResolution
from flitstack_dagster.novo.bundle import resolve_inside
from flitstack_dagster.novo.runs import bundle_root, get_run, mode_of
from flitstack_dagster.shaping.checks import CheckResult, check_values_mapped, run_checks
from flitstack_dagster.shaping.common import OUTPUT_SCHEMA, Owners, ShapeContext
from flitstack_dagster.staging.frames import read_staged
from flitstack_dagster.shaping.run import ShapedRun, shape_all
from flitstack_dagster.shaping.sample import select_sample

EXTRA_TABLES = ("set_aside", "warnings", "reconciliation")
# big staged tables only the notes step reads (unless a record plan folds them): read when first needed
NOTES_ONLY = ("status_log", "notes", "pm_history")


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
    mode = mode_of(run_key)
    ctx = ShapeContext(
        run_key=run_key, exported_at=exported_at, timezone=tz, mode=mode, bundle_root=root,
        already_loaded=frozenset(loaded), resolve_inside=lambda rel: resolve_inside(root, rel), hash_on_save=True,
        archive_dir=Path(work_dir) / "archives" / run_key,
        archived_earlier=archived_earlier(con, run_key) if mapping.archive_before else None,
    )
    if mode == "delta":
        prior_lines, prior_deals = loaded_lines(con, run_key, mapping)
        ctx = replace(ctx, prior_lines=prior_lines, prior_deals=prior_deals)
    inputs = read_staged(con, run_key, defer=NOTES_ONLY)
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


FACT_TABLES = ("work_orders", "status_log", "parts_used", "labor", "notes")


def loaded_lines(con: duckdb.DuckDBPyConnection, run_key: str, mapping: Mapping) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """(The folded lines Pipedrive holds now for the work orders this delta touches: each deal's and
    timeline note's text as last sent, the shaped record of the run that last wrote it; the deals
    holding them, as last shaped, when the plan writes deal fields), or (None, None) when nothing folds."""
    if not FOLDS.get(mapping.record_plan) or not has_table(con, "meta", "id_map"):
        return None, None
    touched = " UNION ".join(f"SELECT 'work_order:' || wo_number FROM staging.stg_{t} WHERE _run_key = $1"
                             for t in FACT_TABLES if has_table(con, "staging", f"stg_{t}"))
    hosts: list[tuple[str, str | None, bool]] = []
    deals = None
    if touched and has_table(con, "shaped", "pd_deals") and folding.fold_fields(mapping):
        cols = [c for c in OUTPUT_SCHEMA if c != "run_key"]
        deals = pl.DataFrame(con.execute(
            f"SELECT {', '.join('s.' + c for c in cols)} FROM meta.id_map m JOIN shaped.pd_deals s "
            f"ON s.run_key = m.last_run AND s.source_id = m.source_id WHERE m.entity = 'deal' AND m.state <> 'deleted' "
            f"AND m.source_id IN ({touched})", [run_key]).fetchall(), schema={c: OUTPUT_SCHEMA[c] for c in cols},
            orient="row")
        for sid_, payload in deals.select("source_id", "payload").iter_rows():
            p = json.loads(payload)
            hosts += [(sid_, p.get(f), False) for f in folding.fold_fields(mapping)]
    if touched and has_table(con, "shaped", "pd_notes"):
        hosts += [(d, json.loads(p).get("content"), True) for d, p in con.execute(
            f"SELECT s.deal_ref, s.payload FROM meta.id_map m JOIN shaped.pd_notes s ON s.run_key = m.last_run "
            f"AND s.source_id = m.source_id WHERE m.entity = 'note' AND m.state <> 'deleted' AND s.kind = $2 "
            f"AND s.deal_ref IN ({touched})", [run_key, folding.TIMELINE_KIND]).fetchall()]
    return folding.prior_lines(hosts), deals
