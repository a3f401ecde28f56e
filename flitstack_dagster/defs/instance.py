"""Driving Dagster from the command line: the persistent instance and launching `migrate` for a run.

The CLI and the demo use the same instance as `dagster dev` (DAGSTER_HOME under the data folder), so
every run they start shows up in the UI afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from flitstack_dagster.core.settings import Paths


def dagster_home(paths: Paths) -> Path:
    home = paths.root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # a local instance: nothing phones home, the data stays in the folder
        config.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return home


def get_instance(paths: Paths) -> dg.DagsterInstance:
    os.environ["DAGSTER_HOME"] = str(dagster_home(paths))
    return dg.DagsterInstance.get()


def add_partition(instance: dg.DagsterInstance, run_key: str) -> None:
    from flitstack_dagster.defs.partitions import migration_runs

    if not instance.has_dynamic_partition(migration_runs.name, run_key):
        instance.add_dynamic_partitions(migration_runs.name, [run_key])


def launch_migrate(paths: Paths, run_key: str, mode: str, bundle: str, job: str = "migrate") -> dg.ExecuteInProcessResult:
    """Run a job for one partition in this process, on the persistent instance."""
    from flitstack_dagster.definitions import build_definitions

    instance = get_instance(paths)
    add_partition(instance, run_key)
    defs = build_definitions(paths.root)
    return defs.resolve_job_def(job).execute_in_process(
        partition_key=run_key,
        instance=instance,
        raise_on_error=False,
        tags={"flitstack/bundle": bundle, "flitstack/mode": mode},
    )
