"""`flitstack demo`: the README's main command — generate a messy export and migrate it end to end.

Each step prints what it did; the last lines say what landed, what was set aside, and where the
reports are. Re-running reuses the generated export and re-materializes the same run (idempotent).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

from flitstack_dagster.errors import UserError
from flitstack_dagster.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work-orders", type=int, default=2000, help="size of the generated export (default 2000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--mess", type=float, default=0.02, help="rate of injected export problems (default 0.02)")
    p.add_argument("--bundle", type=Path, help="migrate this bundle instead of generating one")


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.cli import main as cli_main
    from flitstack_dagster.orchestration import launch_migrate
    from flitstack_dagster.reports.summary import print_summary
    from flitstack_dagster.runs import add_run

    paths = data_paths().ensure()
    t0 = time.monotonic()
    bundle = args.bundle
    if bundle is None:
        bundle = paths.exports / f"demo-{args.work_orders}-seed{args.seed}-mess{args.mess:g}"
        if not (bundle / "manifest.json").exists():
            _step(f"1. Generating a Novo export ({args.work_orders:,} work orders, mess {args.mess:g}) in {bundle}")
            rc = cli_main(["generate", "--work-orders", str(args.work_orders), "--seed", str(args.seed),
                           "--mess", str(args.mess), "--out", str(bundle)])
            if rc:
                raise UserError("generating the demo export failed (see above)")
        else:
            _step(f"1. Reusing the generated export {bundle}")
    _step("2. Verifying the bundle and registering the migration run")
    with duckdb.connect(str(paths.duckdb)) as con:
        run_ = add_run(con, bundle, "full", paths.work)
    print(f"   run {run_.run_key}")
    _step("3. Materializing `migrate` for the run through Dagster (landing, staging, checks)")
    result = launch_migrate(paths, run_.run_key, run_.mode, str(bundle))
    _step(f"4. Done in {time.monotonic() - t0:.1f} s — Dagster run {result.run_id}: "
          f"{'success' if result.success else 'FAILED (see the step errors above)'}")
    print_summary(paths, run_.run_key)
    print(f"\nSee it in the UI: DAGSTER_HOME={paths.root / 'dagster_home'} .venv/bin/dagster dev -w workspace.yaml")
    return 0 if result.success else 1


def _step(msg: str) -> None:
    print(f"\n== {msg}", flush=True)
