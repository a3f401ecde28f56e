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


# At a terminal the command prints the outcome itself; every event stays in the run's log in the UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def launch_migrate(paths: Paths, run_key: str, mode: str, bundle: str, job: str = "migrate",
                   quiet: bool = True) -> dg.ExecuteInProcessResult:
    """Run a job for one partition in this process, on the persistent instance."""
    from flitstack_dagster.definitions import build_definitions

    instance = get_instance(paths)
    add_partition(instance, run_key)
    defs = build_definitions(paths.root)
    return defs.resolve_job_def(job).execute_in_process(
        partition_key=run_key,
        instance=instance,
        raise_on_error=False,
        run_config=QUIET_CONSOLE if quiet else None,
        tags={"flitstack/bundle": bundle, "flitstack/mode": mode},
    )


def step_errors(result: dg.ExecuteInProcessResult) -> list[str]:
    """Step failures other than a blocking check doing its job."""
    out = []
    for e in result.all_node_events:
        if e.is_step_failure and e.step_failure_data.error is not None:
            err = e.step_failure_data.error
            causes = {err.cls_name, err.cause.cls_name if err.cause else ""}
            if not any("AssetCheckFailed" in c for c in causes):
                out.append(f"{e.step_key}: {err.cls_name}: {err.message.strip().splitlines()[0][:200]}")
    return out


def blocked_on(result: dg.ExecuteInProcessResult, check: str) -> bool:
    return any(c.check_name == check and not c.passed for c in result.get_asset_check_evaluations())


def outcome_lines(run_key: str, result: dg.ExecuteInProcessResult) -> list[str]:
    """What a person needs from a finished run: its status, each blocking check that failed and why, each
    step error."""
    errors = step_errors(result)
    status = "success" if result.success else ("stopped at a blocking check" if not errors else "FAILED")
    lines = [f"{run_key}: Dagster run {result.run_id}: {status}"]
    for c in result.get_asset_check_evaluations():
        if not c.passed and c.severity.value == "ERROR":
            lines.append(f"check {c.asset_key.to_user_string()}.{c.check_name} failed: {c.description or ''}")
    lines += [f"step error: {e}" for e in errors]
    return lines
