"""`flitstack runs add|list`: register migration runs from the shell (same as the UI job)."""

from __future__ import annotations

import argparse
from pathlib import Path


from flitstack_dagster.core import duck
from flitstack_dagster.novo.runs import MODES, add_run, list_runs
from flitstack_dagster.core.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="verify a bundle and register a migration run for it")
    add.add_argument("--bundle", required=True, type=Path, help="bundle folder or .zip")
    add.add_argument("--mode", choices=MODES, default="full")
    sub.add_parser("list", help="list registered migration runs")


def run(args: argparse.Namespace) -> int:
    paths = data_paths().ensure()
    with duck.connect(paths.duckdb) as con:
        if args.action == "add":
            r = add_run(con, args.bundle, args.mode, paths.work)
            from flitstack_dagster.defs.instance import add_partition, get_instance

            add_partition(get_instance(paths), r.run_key)
            print(f"registered {r.run_key}  ({r.mode}, {r.bundle_path})")
        else:
            for r in list_runs(con):
                print(f"{r.run_key:50} {r.mode:6} {r.registered_at:%Y-%m-%d %H:%M} {r.bundle_path}")
    return 0
