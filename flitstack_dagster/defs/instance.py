"""Driving Dagster from the command line: the persistent instance and launching `migrate` for a run.

The CLI and the demo use the same instance as `dagster dev` (DAGSTER_HOME under the data folder), so
every run they start shows up in the UI afterwards.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from flitstack_dagster.core.errors import INTERRUPT_NAMES
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
    with _interrupt_after():  # a Ctrl-C while its SQLite files are created would leave them half made
        instance = dg.DagsterInstance.get()
        if _index_incomplete(instance):
            instance = _rebuilt_index(instance)
    return instance


@contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then deliver it as it would have been."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    previous = signal.signal(signal.SIGINT, lambda *sig: caught.append(sig))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])
        elif caught and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


def _index_incomplete(instance: dg.DagsterInstance) -> bool:
    """The local event-log index lacks its tables: an earlier process was stopped while creating it
    (Dagster creates the file once and never looks again)."""
    storage = instance.event_log_storage
    return type(storage).__name__ == "SqliteEventLogStorage" and not storage.has_table("dynamic_partitions")


def _rebuilt_index(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """Set the incomplete index aside and let Dagster create it again, re-indexed from the per-run event
    files; it held no run partitions (their table is the one missing), the runs re-add theirs."""
    index = Path(instance.event_log_storage.path_for_shard("index"))
    instance.dispose()
    stamp = f"incomplete-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    for part in (index, *(index.with_name(index.name + tail) for tail in ("-wal", "-shm"))):
        if part.exists():
            part.replace(part.with_name(f"{part.name}.{stamp}"))
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


def _causes(err) -> set[str]:
    return {err.cls_name, err.cause.cls_name if err.cause else ""}


def _is_error(err) -> bool:
    """A step failure that is an error: neither a blocking check doing its job nor a Ctrl-C."""
    return err is not None and not any("AssetCheckFailed" in c or c in INTERRUPT_NAMES for c in _causes(err))


def step_errors(result: dg.ExecuteInProcessResult) -> list[str]:
    """Step failures other than a blocking check doing its job or a Ctrl-C."""
    out = []
    for e in result.all_node_events:
        if e.is_step_failure and _is_error(err := e.step_failure_data.error):
            out.append(f"{e.step_key}: {err.cls_name}: {err.message.strip().splitlines()[0][:200]}")
    return out


def interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Ctrl-C stopped a step (Dagster turns it into a failed step and returns, instead of raising)."""
    return any(e.is_step_failure and e.step_failure_data.error is not None
               and _causes(e.step_failure_data.error) & INTERRUPT_NAMES for e in result.all_node_events)


UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def mark_interrupted(paths: Paths, run_key: str, since: datetime) -> None:
    """Ctrl-C before Dagster could record the end of the run this process launched: record it as canceled,
    so the UI and `flitstack status` do not show a run that nothing runs any more as running."""
    instance = get_instance(paths)
    for record in instance.get_run_records(filters=dg.RunsFilter(
            tags={"dagster/partition": run_key}, statuses=UNFINISHED, created_after=since)):
        instance.report_run_canceled(record.dagster_run, message="stopped by Ctrl-C in the terminal that launched it")


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


# -- what the instance knows about a run, for `flitstack status` --------------------------------------


@dataclass
class DagsterRunState:
    """The newest Dagster run of a migration run's partition: what it materialized and what stopped it."""

    run_id: str
    job: str
    status: str  # Dagster's run status, lower case: success, failure, started, canceled, ...
    started: datetime | None
    last_step: str | None  # the step that finished last
    last_group: str | None  # its asset group: the stage people see in the UI
    failed_steps: list[str] = field(default_factory=list)  # "step: one-line error" (no check failures)
    failed_checks: list[str] = field(default_factory=list)  # "asset.check: description" of blocking checks

    @property
    def running(self) -> bool:
        return self.status in ("started", "starting", "queued", "not_started", "canceling")


def latest_run_state(paths: Paths, run_key: str) -> DagsterRunState | None:
    """None when Dagster never ran anything for the run."""
    instance = get_instance(paths)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": run_key}), limit=1)
    if not runs:
        return None
    run = runs[0]
    stats = instance.get_run_step_stats(run.run_id)
    done = sorted((s for s in stats if s.status is not None and s.status.value == "SUCCESS" and s.end_time),
                  key=lambda s: s.end_time)
    last = done[-1].step_key if done else None
    starts = [s.start_time for s in stats if s.start_time]
    state = DagsterRunState(run.run_id, run.job_name, run.status.value.lower(),
                            datetime.fromtimestamp(min(starts), UTC) if starts else None, last, _group_of(paths, last))
    for entry in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                        dg.DagsterEventType.ASSET_CHECK_EVALUATION}):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            c = event.event_specific_data
            if not c.passed and c.severity.value == "ERROR":
                state.failed_checks.append(f"{c.asset_key.to_user_string()}.{c.check_name}: {c.description or ''}")
        elif _is_error(err := event.step_failure_data.error):
            state.failed_steps.append(f"{event.step_key}: {err.message.strip().splitlines()[0][:300]}")
    return state


def _group_of(paths: Paths, step: str | None) -> str | None:
    """The asset group of a step of the code location: the stage people see in the UI."""
    return None if step is None else _step_groups(paths.root).get(step)


@functools.cache
def _step_groups(root: Path) -> dict[str, str]:
    """Step (op) name -> asset group; a step that materializes several assets takes its first one's group."""
    from flitstack_dagster.definitions import build_definitions

    out: dict[str, str] = {}
    for node in build_definitions(root).resolve_asset_graph().asset_nodes:
        out.setdefault(node.assets_def.node_def.name, node.group_name)
        out.setdefault(node.key.path[-1], node.group_name)
    return out
