"""`flitstack runs add|list|migrate|summary`: register, migrate and report on migration runs without the UI.

`migrate` materializes the same `migrate` job the UI does, on the same Dagster instance, so the run shows
up in the UI afterwards; it needs the same PIPEDRIVE_* settings (see `flitstack doctor`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


from flitstack_dagster.core import duck
from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.novo.runs import MODES, add_run, get_run, list_runs
from flitstack_dagster.core.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="verify a bundle and register a migration run for it")
    add.add_argument("--bundle", required=True, type=Path, help="bundle folder or .zip")
    add.add_argument("--mode", choices=MODES, default="full")
    sub.add_parser("list", help="list registered migration runs")
    migrate = sub.add_parser("migrate", help="materialize `migrate` for a registered run (as the UI does) and print "
                                             "its outcome and summary")
    migrate.add_argument("run", help="the run key (see `flitstack runs list`)")
    summary = sub.add_parser("summary", help="print a run's summary: accounting, set-asides, loads, verification, reports")
    summary.add_argument("run", help="the run key (see `flitstack runs list`)")


def run(args: argparse.Namespace) -> int:
    paths = data_paths().ensure()
    if args.action == "migrate":
        return _migrate(paths, args.run)
    with duck.connect(paths.duckdb) as con:
        if args.action == "add":
            r = add_run(con, args.bundle, args.mode, paths.work)
            from flitstack_dagster.defs.instance import add_partition, get_instance

            add_partition(get_instance(paths), r.run_key)
            print(f"registered {r.run_key}  ({r.mode}, {r.bundle_path})")
        elif args.action == "summary":
            get_run(con, args.run)  # an unknown run is named, with how to register it
        else:
            for r in list_runs(con):
                print(f"{r.run_key:50} {r.mode:6} {r.registered_at:%Y-%m-%d %H:%M} {r.bundle_path}")
    if args.action == "summary":
        from flitstack_dagster.reports.summary import print_summary

        print_summary(paths, args.run)
    return 0


def _migrate(paths, run_key: str) -> int:
    """0 when the run finished, 3 when a blocking check stopped it (what to do is printed), 1 on a step error."""
    from flitstack_dagster.defs.instance import launch_migrate, outcome_lines, step_errors
    from flitstack_dagster.reports.summary import print_summary

    with duck.connect(paths.duckdb) as con:
        r = get_run(con, run_key)
    print(f"materializing `migrate` for {r.run_key} ({r.mode}, {r.bundle_path}) ...", flush=True)
    result = launch_migrate(paths, r.run_key, r.mode, str(r.bundle_path))
    for line in outcome_lines(r.run_key, result):
        print(plain_line(line, 1000))
    print_summary(paths, r.run_key)
    if result.success:
        return 0
    return 1 if step_errors(result) else 3
