"""The load (or the rollback) of one migration run in its own process group, together with the sandbox
it talks to, so a test can SIGKILL the whole group anywhere.

    PIPEDRIVE_API_TOKEN=... python -m flitstack_dagster_tests.reliability.crash_driver \
        load DB RUN_KEY BASE_URL [ENTITY ...]
    PIPEDRIVE_API_TOKEN=... python -m flitstack_dagster_tests.reliability.crash_driver rollback DB RUN_KEY BASE_URL

With CRASH_DRIVER_SANDBOX_STATE set, the driver first serves that sandbox state on BASE_URL's port:
in its own process (CRASH_DRIVER_HOSTING=inprocess, as `flitstack demo` does) or as a `flitstack
sandbox` child process in the same process group (CRASH_DRIVER_HOSTING=process), with the faults
CRASH_DRIVER_FAULTS (JSON) on. The token comes from the environment (never argv, which `ps` shows);
CRASH_DRIVER_CONCURRENCY caps the requests in flight (1 makes a kill land between two file uploads
rather than after all of them). Exit 0 when the load finished (or the rollback did), 3 when a load
stopped for the daily budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from flitstack_dagster.core import duck
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.run import load_shaped
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.novo.runs import get_run

PLAN, SEATS = "ultimate", 5


def main(argv: list[str]) -> int:
    action, db, run_key, base_url, *entities = argv
    token = os.environ["PIPEDRIVE_API_TOKEN"]
    with hosted_sandbox(base_url, token):
        client = PipedriveClient(base_url, token, plan=PLAN, seats=SEATS,
                                 max_concurrency=int(os.environ.get("CRASH_DRIVER_CONCURRENCY", "0")) or None,
                                 backoff_base=0.05, backoff_cap=1.0)
        return run(action, Path(db), run_key, client, entities)


def run(action: str, db: Path, run_key: str, client: PipedriveClient, entities: list[str]) -> int:
    with duck.connect(db) as con:
        if action == "rollback":
            from flitstack_dagster.loading.rollback import rollback_run

            print(rollback_run(con, client, run_key).summary(), flush=True)
            return 0
        bundle_root = Path(get_run(con, run_key).bundle_path)
        for entity in entities or ENTITIES.shaped_tables:
            r = load_shaped(con, client, run_key, entity, bundle_root=bundle_root)
            print(f"{entity}: {r.created} created, {r.adopted} adopted, {r.skipped} skipped", flush=True)
            if r.stopped:
                return 3
    return 0


@contextlib.contextmanager
def hosted_sandbox(base_url: str, token: str) -> Iterator[None]:
    """Serve CRASH_DRIVER_SANDBOX_STATE on base_url's port for the duration, when set."""
    state = os.environ.get("CRASH_DRIVER_SANDBOX_STATE")
    if not state:
        yield
        return
    port = urlsplit(base_url).port
    faults = json.loads(os.environ.get("CRASH_DRIVER_FAULTS") or "{}")
    if os.environ.get("CRASH_DRIVER_HOSTING", "inprocess") == "inprocess":
        from flitstack_dagster.sandbox.faults import FaultConfig
        from flitstack_dagster.sandbox.server import SandboxServer

        with SandboxServer(state_path=Path(state), plan=PLAN, seats=SEATS, api_token=token, port=port,
                           faults=FaultConfig.from_dict(faults)):
            yield
        return
    child = subprocess.Popen([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", str(port),
                              "--plan", PLAN, "--seats", str(SEATS), "--state", state],
                             stdout=subprocess.DEVNULL, env={**os.environ, "PIPEDRIVE_API_TOKEN": token})
    try:
        _ready(base_url, token, child)
        if faults:
            httpx.post(f"{base_url}/_sandbox/faults", json=faults, headers={"x-api-token": token}).raise_for_status()
        yield
    finally:
        child.terminate()
        child.wait(timeout=30)


def _ready(base_url: str, token: str, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert child.poll() is None, "the sandbox process ended before it served"
        try:
            httpx.get(f"{base_url}/_sandbox/usage", headers={"x-api-token": token}, timeout=2).raise_for_status()
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the sandbox process did not serve within 30 s"
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
