"""Whether a run may load: a full run needs a verified sample of the same mapping (or a waiver),
and no run loads on top of an earlier run that did not reconcile."""

from __future__ import annotations

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.loading.reconcile import reconcile_run
from flitstack_dagster.loading.verified_samples import is_sample_verified
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.runs import get_run, mode_of


def load_gate(con: duckdb.DuckDBPyConnection, run_key: str, mapping: Mapping) -> list[str]:
    """What stops this run from loading (empty: it may load)."""
    problems: list[str] = []
    if mode_of(run_key) == "full" and not mapping.options.waive_sample_verification \
            and not is_sample_verified(con, mapping.content_hash()):
        problems.append(
            "no sample run of the approved mapping is verified yet: register one (`flitstack runs add --bundle "
            "BUNDLE --mode sample`), materialize `migrate` for it and let `verified_records` pass — or set "
            "`options.waive_sample_verification: true` in mapping/approved.yaml")
    prev = previous_loaded_run(con, run_key)
    if prev is not None:
        rec = reconcile_run(con, prev)
        if not rec.passed:
            problems.append(f"the earlier run {prev} does not reconcile ({'; '.join(rec.problems[:3])}): "
                            "fix it (re-materialize it, or roll it back with `flitstack rollback`) before loading more")
    return problems


def previous_loaded_run(con: duckdb.DuckDBPyConnection, run_key: str) -> str | None:
    """The latest run registered before this one that still has loaded records (not rolled back)."""
    if not has_table(con, "meta", "audit_log"):
        return None
    me = get_run(con, run_key)
    rows = con.execute(
        "SELECT r.run_key FROM meta.migration_runs r WHERE r.registered_at < ? AND r.run_key <> ? AND EXISTS ("
        "  SELECT 1 FROM meta.audit_log a WHERE a.run_key = r.run_key AND a.rolled_back_by IS NULL"
        "  AND a.operation IN ('create', 'update', 'adopt')) "
        "ORDER BY r.registered_at DESC LIMIT 1",
        [me.registered_at, run_key],
    ).fetchall()
    return rows[0][0] if rows else None
