"""`flitstack migrate RUN`: the UI's `migrate` job for a registered run, from a terminal.

It materializes the same job on the same Dagster instance (the run shows up in the UI afterwards) with
the PIPEDRIVE_* settings of the shell, and prints the outcome and the run's summary instead of
Dagster's event log.
"""

from __future__ import annotations

import argparse

from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.cli.registered import add_run_argument, registered_run

STOPPED_AT_GATE = 3  # exit code: a blocking check stopped the run; the printed check says what to do


def configure(p: argparse.ArgumentParser) -> None:
    add_run_argument(p)


def run(args: argparse.Namespace) -> int:
    """0 when the run finished, 3 when a blocking check stopped it, 1 on a step error."""
    from flitstack_dagster.defs.instance import launch_migrate, outcome_lines, step_errors
    from flitstack_dagster.reports.summary import print_summary

    paths, r = registered_run(args.run)
    print(f"materializing `migrate` for {r.run_key} ({r.mode}, {r.bundle_path}) ...", flush=True)
    result = launch_migrate(paths, r.run_key, r.mode, str(r.bundle_path))
    for line in outcome_lines(r.run_key, result):
        print(plain_line(line, 1000))
    print_summary(paths, r.run_key)
    if result.success:
        return 0
    return 1 if step_errors(result) else STOPPED_AT_GATE
