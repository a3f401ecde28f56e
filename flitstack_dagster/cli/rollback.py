"""`flitstack rollback RUN [--cascade] [--dry-run] [--yes]`: undo what one migration run did in Pipedrive
(same as the UI job). It first prints what it would delete and restore, and in which account."""

from __future__ import annotations

import argparse
import sys

from flitstack_dagster.core import duck
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.core.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="migration run key, e.g. delta-springfield-20261120T070000Z")
    p.add_argument("--cascade", action="store_true",
                   help="first roll back the later runs that built on RUN (newest first)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be deleted and restored, and in which account; change nothing")
    p.add_argument("--yes", action="store_true", help="roll back without asking (for scripts)")


def run(args: argparse.Namespace) -> int:
    """Errors people can fix (unknown run, nothing to roll back, needs --cascade, wrong account, refused
    token, Pipedrive not configured, budget spent) print one message and exit 2, like every command;
    declining the confirmation exits 1."""
    from flitstack_dagster.loading.ledger import Ledger, metered
    from flitstack_dagster.loading.rollback import ROLLBACK_PREFIX, plan_rollback, rollback_run, stopped_part_way
    from flitstack_dagster.pipedrive.client import PipedriveClient
    from flitstack_dagster.pipedrive.problems import human_message
    from flitstack_dagster.core.settings import pipedrive_settings

    paths = data_paths()
    if not paths.duckdb.exists():
        return _fail(f"no migration data at {paths.duckdb} (set FLITSTACK_DATA_DIR to the project's data folder)")
    try:
        with PipedriveClient.from_env() as client, duck.connect(paths.duckdb) as con, \
                metered(Ledger.in_folder(paths.root), client, ROLLBACK_PREFIX + args.run, "rollback"):
            plan = plan_rollback(con, client, args.run, cascade=args.cascade)
            if not plan.empty:
                print(plan.text(), flush=True)
            if args.dry_run:
                print("dry run: nothing was changed")
                return 0
            if not plan.empty and not args.yes and not _confirmed(plan.account.key):
                print("stopped: nothing was changed")
                return 1
            result = rollback_run(con, client, args.run, cascade=args.cascade, progress=lambda m: print(m, flush=True))
    except UserError as e:
        return _fail(str(e))
    except PipedriveError as e:  # the rollback stopped part-way; everything proven so far is recorded
        return _fail(human_message(e, pipedrive_settings().host)
                     or stopped_part_way(e, "rolled back", "run the same command"))
    for w in result.warnings:
        print(f"warning: {w}")
    print(result.summary())
    return 0


def _confirmed(company: str) -> bool:
    """Typing the company's domain: a person confirming must have read which account this changes."""
    if not sys.stdin.isatty():
        raise UserError("a rollback deletes records in Pipedrive and needs confirmation: run it in a terminal, "
                        "or pass --yes (check what it does first with --dry-run)")
    answer = input(f"type the Pipedrive company domain ({company}) to roll back, anything else to stop: ")
    return answer.strip() == company


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
