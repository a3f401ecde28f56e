"""Helpers several test folders share: re-signing an edited bundle, starting the sandbox CLI and
migrating a bundle through Dagster in process."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.core.settings import Paths

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a server's log, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not written)"


def resign(bundle: Path, rows: dict[str, int] | None = None, **manifest_changes: Any) -> None:
    """Manifest sizes and SHA-256 match the edited files again (and row counts where given)."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(manifest_changes)
    for entry in manifest["files"]:
        p = bundle / entry["name"]
        if p.is_file():
            body = p.read_bytes()
            entry["bytes"], entry["sha256"] = len(body), hashlib.sha256(body).hexdigest()
        if rows and entry["name"] in rows:
            entry["rows"] = rows[entry["name"]]
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def start_sandbox_cli(state: Path, *args: str, env: dict[str, str] | None = None,
                      **popen: Any) -> tuple[subprocess.Popen, str, str]:
    """`flitstack sandbox --port 0 --state <state> <args>` as a child process, once it serves:
    (the process, everything it printed so far, its URL). The caller stops it."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0",
                             "--state", str(state), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env, **popen)
    lines, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C" in line or not line:
            break
    text = "".join(lines)
    url = next((w for w in text.split() if w.startswith("http://127.0.0.1:")), "")
    return proc, text, url


def run_quick_benchmark(script: str, tmp_path: Path, *args: str, timeout: float) -> tuple[str, dict]:
    """`benchmarks/<script> --quick --json <file>` as a child process with its own data folder:
    (what it printed, the results it wrote)."""
    out_json = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", "--json", str(out_json), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "FLITSTACK_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out_json.read_text())


def waive_sample_gate(paths: Paths) -> None:
    """These tests load a full run directly: waive the verified-sample gate, as mapping/approved.yaml allows."""
    from flitstack_dagster.mapping.approval import waive_sample_verification
    from flitstack_dagster.mapping.store import approved_path

    waive_sample_verification(approved_path(paths))


def choose_record_plan(paths: Paths, record_plan: str) -> None:
    """The approved mapping under another record plan, as the lead chooses it at approval."""
    from flitstack_dagster.mapping.approval import APPROVED_WHAT
    from flitstack_dagster.mapping.store import approved_path
    from flitstack_dagster.mapping.yamlio import load_mapping, write_mapping

    m = load_mapping(approved_path(paths))
    m.record_plan = record_plan
    write_mapping(approved_path(paths), m, APPROVED_WHAT)


@dataclass
class Migrated:
    """A full run migrated through Dagster in process into a sandbox that still serves."""

    paths: Paths
    run_key: str
    sandbox: SandboxServer
    pipedrive: PipedriveResource
    instance: dg.DagsterInstance
    job: dg.JobDefinition
    first: dg.ExecuteInProcessResult  # stopped at the mapping approval
    second: dg.ExecuteInProcessResult  # approved: loaded and verified


@contextmanager
def migrated_through_dagster(bundle: Path, data: Path, record_plan: str | None = None,
                             archive_before: str | None = None) -> Iterator[Migrated]:
    """Register `bundle` as a full run, run `migrate` (it stops at the approval), approve as the demo
    does (under `record_plan` when given; with `archive_before`, approved again with that cutoff), waive the sample gate and run it again; the sandbox serves
    until the block ends."""
    from flitstack_dagster.core import duck
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.mapping.demo_approval import approve_for_demo
    from flitstack_dagster.novo.runs import add_run

    paths = Paths(data).ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "full", paths.work).run_key
    with SandboxServer(state_path=None, plan="ultimate", seats=5, port=0) as sb:
        pipedrive = PipedriveResource(base_url=sb.base_url, api_token=sb.api_token, plan="ultimate", seats=5)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(migration_runs.name, [run_key])
        job = build_definitions(paths.root, pipedrive=pipedrive).resolve_job_def("migrate")
        first = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False)
        approve_for_demo(paths)
        if record_plan is not None:
            choose_record_plan(paths, record_plan)
        if archive_before is not None:
            from flitstack_dagster.mapping.approval import approve_proposed
            from flitstack_dagster.mapping.store import approved_path, proposed_path

            approve_proposed(proposed_path(paths), approved_path(paths), "flitstack test", archive_before=archive_before)
        waive_sample_gate(paths)  # a full run loaded on its own, without a verified sample first
        # what the first pass did not materialize: it ran everything up to the approval already
        done = {e.asset_key for e in first.get_asset_materialization_events()}
        rest = [k for k in job.asset_layer.selected_asset_keys if k not in done]
        second = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                        asset_selection=rest)
        yield Migrated(paths, run_key, sb, pipedrive, instance, job, first, second)
