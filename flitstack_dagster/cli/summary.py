"""`flitstack summary RUN`: a run's summary at any point — accounting, set-asides, loads, verification,
reports."""

from __future__ import annotations

import argparse

from flitstack_dagster.cli.registered import add_run_argument, registered_run


def configure(p: argparse.ArgumentParser) -> None:
    add_run_argument(p)


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.reports.summary import print_summary

    paths, _ = registered_run(args.run)
    print_summary(paths, args.run)
    return 0
