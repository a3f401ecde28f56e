"""`flitstack summary RUN`: a run's summary at any point — accounting, set-asides, loads, verification,
reports."""

from __future__ import annotations

import argparse

from flitstack_dagster.core import duck
from flitstack_dagster.core.settings import data_paths
from flitstack_dagster.novo.runs import get_run


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="the run key (see `flitstack runs list`)")


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.reports.summary import print_summary

    paths = data_paths().ensure()
    with duck.connect(paths.duckdb) as con:
        get_run(con, args.run)  # an unknown run is named, with how to register it
    print_summary(paths, args.run)
    return 0
