"""The RUN argument the per-run commands share, and the registered run it names."""

from __future__ import annotations

import argparse

from flitstack_dagster.core import duck
from flitstack_dagster.core.settings import Paths, data_paths
from flitstack_dagster.novo.runs import MigrationRun, get_run


def add_run_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="the run key (see `flitstack runs list`)")


def registered_run(run_key: str) -> tuple[Paths, MigrationRun]:
    """The data folder and the run; an unknown run is named, with how to register it."""
    paths = data_paths().ensure()
    with duck.connect(paths.duckdb) as con:
        return paths, get_run(con, run_key)
