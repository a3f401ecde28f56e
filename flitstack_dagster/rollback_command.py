"""`flitstack rollback RUN [--cascade]`: undo what one migration run did in Pipedrive (same as the UI job)."""

from __future__ import annotations

import argparse
import sys

from flitstack_dagster import duck
from flitstack_dagster.errors import UserError
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="migration run key, e.g. delta-springfield-20261120T070000Z")
    p.add_argument("--cascade", action="store_true",
                   help="first roll back the later runs that built on RUN (newest first)")


def run(args: argparse.Namespace) -> int:
    """Errors people can fix (unknown run, nothing to roll back, needs --cascade, Pipedrive not
    configured, budget spent) print one message and exit 1, never a traceback."""
    from flitstack_dagster.loading.rollback import rollback_run
    from flitstack_dagster.pipedrive.client import PipedriveClient
    from flitstack_dagster.pipedrive.problems import human_message
    from flitstack_dagster.settings import pipedrive_settings

    paths = data_paths()
    if not paths.duckdb.exists():
        return _fail(f"no migration data at {paths.duckdb} (set FLITSTACK_DATA_DIR to the project's data folder)")
    try:
        with PipedriveClient.from_env() as client, duck.connect(paths.duckdb) as con:
            result = rollback_run(con, client, args.run, cascade=args.cascade, progress=lambda m: print(m, flush=True))
    except UserError as e:
        return _fail(str(e))
    except PipedriveError as e:  # the rollback stopped part-way; everything done so far is recorded
        return _fail(human_message(e, pipedrive_settings().host)
                     or f"{e}. What was rolled back so far is recorded: run the same command again to finish.")
    for w in result.warnings:
        print(f"warning: {w}")
    print(result.summary())
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
