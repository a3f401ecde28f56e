"""`flitstack repair RUN [--delete-duplicates]`: rebuild a run's id map from what the Pipedrive account
holds (same as the `repair` job in the UI)."""

from __future__ import annotations

import argparse

from flitstack_dagster.core import duck
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.core.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="migration run key, e.g. full-springfield-20261120T070000Z")
    p.add_argument("--delete-duplicates", action="store_true",
                   help="delete the extra records the account holds for one source record (keeps the one "
                   "the id map holds, else the lowest id)")


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.loading.ledger import Ledger, metered
    from flitstack_dagster.loading.repair import repair_run
    from flitstack_dagster.loading.rollback import stopped_part_way
    from flitstack_dagster.pipedrive.client import PipedriveClient

    paths = data_paths()
    if not paths.duckdb.exists():
        raise UserError(f"no migration data at {paths.duckdb} (set FLITSTACK_DATA_DIR to the project's data folder)")
    try:
        with PipedriveClient.from_env() as client, duck.connect(paths.duckdb) as con, \
                metered(Ledger.in_folder(paths.root), client, args.run, "repair"):
            result = repair_run(con, client, args.run, delete_duplicates=args.delete_duplicates,
                                progress=lambda m: print(m, flush=True))
    except PipedriveError as e:  # each row repair wrote is consistent on its own
        raise UserError(stopped_part_way(e, "repaired", "run the same command")) from None
    print(result.summary())
    return 0
