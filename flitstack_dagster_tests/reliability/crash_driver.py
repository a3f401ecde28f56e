"""The load (or the rollback) of one migration run in its own process, so a test can SIGKILL it anywhere.

    PIPEDRIVE_API_TOKEN=... python -m flitstack_dagster_tests.reliability.crash_driver \
        load DB RUN_KEY BASE_URL [ENTITY ...]
    PIPEDRIVE_API_TOKEN=... python -m flitstack_dagster_tests.reliability.crash_driver rollback DB RUN_KEY BASE_URL

The token comes from the environment (never argv, which `ps` shows); CRASH_DRIVER_CONCURRENCY caps
the requests in flight (1 makes a kill land between two file uploads rather than after all of them). Exit 0 when the load finished
(or the rollback did), 3 when a load stopped for the daily budget.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flitstack_dagster import duck
from flitstack_dagster.loading.run import SHAPED_TABLE, load_shaped
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.runs import get_run


def main(argv: list[str]) -> int:
    action, db, run_key, base_url, *entities = argv
    client = PipedriveClient(base_url, os.environ["PIPEDRIVE_API_TOKEN"], plan="ultimate", seats=5,
                             max_concurrency=int(os.environ.get("CRASH_DRIVER_CONCURRENCY", "0")) or None, backoff_base=0.05, backoff_cap=1.0)
    with duck.connect(Path(db)) as con:
        if action == "rollback":
            from flitstack_dagster.loading.rollback import rollback_run

            print(rollback_run(con, client, run_key).summary(), flush=True)
            return 0
        bundle_root = Path(get_run(con, run_key).bundle_path)
        for entity in entities or SHAPED_TABLE:
            r = load_shaped(con, client, run_key, entity, bundle_root=bundle_root)
            print(f"{entity}: {r.created} created, {r.adopted} adopted, {r.skipped} skipped", flush=True)
            if r.stopped:
                return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
