"""The stage for the browser test: a small generated bundle registered as a sample run, the sandbox on
127.0.0.1, `dagster dev` on that data folder's instance, and Debian's chromium (installed when missing).

`dagster dev` runs as its own process group, stopped by its own id; the sandbox serves from a thread of
the test process, as in the other end-to-end tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from flitstack_dagster.core.settings import Paths
from flitstack_dagster_tests.kit import free_port, tail

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM_SCRIPT = REPO / ".ci" / "chromium.sh"
# Debian's chromium, headless, nothing fetched in the background (no updates, sync or QUIC probes).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ChromiumMissing(Exception):
    """The install script could not provide chromium (no root, apt refused): the reason, for the skip."""


def install_chromium() -> str:
    """.ci/chromium.sh: the path of Debian's chromium, installed first when it is missing."""
    r = subprocess.run(["bash", str(CHROMIUM_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        raise ChromiumMissing((r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1])
    return r.stdout.strip().splitlines()[-1]


@dataclass
class Stage:
    paths: Paths
    run_key: str
    ui: str  # the Dagster UI's base URL
    log: Path  # what `dagster dev` printed


def prepare_sample_run(root: Path, work_orders: int = 12) -> tuple[Paths, str]:
    """A generated bundle with a few problems, registered as a sample run in the DuckDB file and as a
    partition of the data folder's Dagster instance (what `flitstack demo` does before it materializes)."""
    from flitstack_dagster.cli import main as cli_main
    from flitstack_dagster.core import duck
    from flitstack_dagster.defs.instance import add_partition, dagster_home
    from flitstack_dagster.novo.runs import add_run
    import dagster as dg

    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", str(work_orders), "--seed", "5", "--mess", "0.05",
                     "--out", str(bundle), "--no-mess-log"]) == 0
    paths = Paths(root / "data").ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "sample", paths.work).run_key
    with dg.DagsterInstance.from_config(str(dagster_home(paths))) as instance:
        add_partition(instance, run_key)
    return paths, run_key


@contextmanager
def dagster_dev(paths: Paths, pipedrive_url: str, token: str, timeout: float = 240) -> Iterator[tuple[str, Path]]:
    """`dagster dev` (webserver, daemon, code server) on the data folder's instance; (UI URL, its log)."""
    from flitstack_dagster.defs.instance import dagster_home

    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "FLITSTACK_"))}
    env.update({"DAGSTER_HOME": str(dagster_home(paths)), "FLITSTACK_DATA_DIR": str(paths.root),
                "PIPEDRIVE_BASE_URL": pipedrive_url, "PIPEDRIVE_API_TOKEN": token, "PIPEDRIVE_PLAN": "ultimate",
                "FLITSTACK_DAGSTER_URL": ui})
    log = paths.root / "dagster_dev.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
                                 "-p", str(port)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_ui(ui, proc, log, timeout)
        yield ui, log
    finally:
        _stop(proc)


def _wait_for_ui(ui: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Up once the webserver answers and the code location has loaded."""
    deadline = time.monotonic() + timeout
    query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster dev exited {proc.returncode}:\n{tail(log)}")
        try:
            r = httpx.post(f"{ui}/graphql", json=query, timeout=5)
            entries = r.json()["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        time.sleep(1)
    raise AssertionError(f"dagster dev did not serve {ui} within {timeout:.0f} s:\n{tail(log)}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to dagster dev's own process group (it stops its webserver, daemon and code server)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
