"""Load one shaped table of a migration run: read its rows, resolve, upsert, report progress."""

from __future__ import annotations

from pathlib import Path

import duckdb

from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.group_commit import GroupCommitStore
from flitstack_dagster.loading.ledger import Ledger, SpendMeter
from flitstack_dagster.loading.loader import LoadResult, Progress, load_entity
from flitstack_dagster.loading.resolve import Registry, Resolver
from flitstack_dagster.novo.runs import check_account


def shaped_rows(con: duckdb.DuckDBPyConnection, run_key: str, entity: str) -> list[dict]:
    table = ENTITIES[entity].shaped_table
    cur = con.execute(f"SELECT * FROM shaped.{table} WHERE run_key = ? ORDER BY source_id", [run_key])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def load_shaped(
    con: duckdb.DuckDBPyConnection, client, run_key: str, entity: str, *,
    bundle_root: Path | None = None, progress: Progress | None = None, ledger: Ledger | None = None,
) -> LoadResult:
    """`ledger`: where the tokens spent and the progress go as the load runs (each second; `progress`
    still every 5 s)."""
    meter = SpendMeter(ledger, client, run_key, ENTITIES[entity].load_asset) if ledger is not None else None
    try:
        check_account(con, client, run_key)  # before any write: the run's own Pipedrive company, a real API
        store = GroupCommitStore(con)  # concurrent records share a commit; each call returns once committed
        registry = Registry.load(con, client.account())
        id_maps = {e: {s: m.pipedrive_id for s, m in store.id_map(e).items()} for e in ENTITIES.referenced}
        resolver = Resolver(registry, id_maps)
        rows = shaped_rows(con, run_key, entity)
        if meter is None:
            return load_entity(client, store, resolver, entity, rows, run_key, bundle_root=bundle_root,
                               progress=progress)
        meter.report(0, len(rows), 0, 0.0)
        result = load_entity(client, store, resolver, entity, rows, run_key, bundle_root=bundle_root,
                             progress=meter.wrap(progress, every=5.0), progress_every=1.0)
        meter.report(result.done, result.total, result.tokens, result.seconds)
        return result
    finally:
        if meter is not None:
            meter.flush()  # also when the load stops with an error: what it spent was spent
