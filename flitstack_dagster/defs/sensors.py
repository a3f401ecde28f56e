"""Sensors: start a migration when a complete export lands in the drop folder, and resume a
migration the next day when Pipedrive's daily token budget stopped it.

`novo_export_sensor` is off by default: it starts loads into a customer's Pipedrive, so a person
turns it on. `budget_reset_sensor` is on by default: it only resumes a run someone already started,
once per stop, after the reset, and never when anything else ran for that partition since.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from flitstack_dagster.core.duck import connect
from flitstack_dagster.core.errors import BundleError, UserError
from flitstack_dagster.defs import jobs
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.loading.relaunch import (
    BudgetStop,
    Failure,
    due_relaunches,
    stop_from_failures,
    waiting_note,
)
from flitstack_dagster.novo.drop import DropCursor, Verified, drop_entries, new_entries, register_dropped, verify_entry
from flitstack_dagster.novo.runs import MigrationRun, find_by_fingerprint, get_run

EXPORT_SENSOR = "novo_export_sensor"
BUDGET_SENSOR = "budget_reset_sensor"
PARTITION_TAG = "dagster/partition"
TRIGGER_TAG = "flitstack/trigger"

# ------------------------------------------------------------------------------------ export sensor


def _has_runs(instance: dg.DagsterInstance, partition: str) -> bool:
    return bool(instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: partition}), limit=1))


def _request(run: MigrationRun, source: Path) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run.run_key, partition_key=run.run_key,
        tags={"flitstack/bundle": str(source), "flitstack/mode": run.mode, TRIGGER_TAG: EXPORT_SENSOR},
    )


@dg.sensor(
    name=EXPORT_SENSOR, job=jobs.migrate, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the export drop folder (<data>/drop): each new complete bundle (folder or .zip, "
    "every file's size and SHA-256 matching its manifest) becomes a migration run — `full-…` for a tenant "
    "with nothing loaded yet, else `delta-…` — and one `migrate` run. Half-copied bundles wait; the same "
    "bundle never starts twice; a damaged one is reported once, and looked at again only when re-copied.",
)
def novo_export_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource, project: ProjectPaths):
    paths = project.paths
    cursor = DropCursor.load(context.cursor)
    entries = drop_entries(paths.drop)
    cursor.keep_only({e.name for e in entries})
    fresh, notes = new_entries(entries, cursor)
    if not fresh:
        return dg.SensorResult(skip_reason=_skip(notes, paths.drop), cursor=cursor.dump())

    try:  # one attempt, no back-off: a tick must stay short
        con = connect(duckdb.database)
    except duckdb_lib.Error as e:  # another process (a running load) holds the DuckDB file
        context.log.info(f"DuckDB is busy ({type(e).__name__}); new bundles are picked up on a later tick")
        return dg.SensorResult(skip_reason="the project DuckDB file is in use by a running job; "
                               "new bundles are picked up on a later tick", cursor=context.cursor)
    partitions: list[str] = []
    requests: list[dg.RunRequest] = []
    try:
        verified: list[Verified] = []
        for entry, stamp in fresh:
            try:
                verified.append(verify_entry(entry, paths.work / "_sensor"))
            except BundleError as e:
                _refuse(context, cursor, entry.name, stamp, str(e), notes)
        # oldest export first, so a full export and its delta dropped together register in order
        for v in sorted(verified, key=lambda v: (v.manifest.exported_at, v.entry.name)):
            existing = find_by_fingerprint(con, v.fingerprint)
            if existing is not None:
                run = get_run(con, existing)
                if (run.registered_by == EXPORT_SENSOR and existing not in partitions
                        and not _has_runs(context.instance, existing)):
                    # registered by an earlier tick that did not get to submit its run
                    partitions.append(existing)
                    requests.append(_request(run, v.entry))
                else:
                    context.log.info(f"{v.entry.name}: the same bundle is already migration run {existing}; "
                                     "not started again")
                    notes.append(f"{v.entry.name}: already migration run {existing}")
                cursor.done[v.entry.name] = v.stamp
                continue
            try:
                run = register_dropped(con, v, who=EXPORT_SENSOR)
            except UserError as e:
                _refuse(context, cursor, v.entry.name, v.stamp, str(e), notes)
                continue
            context.log.info(f"{v.entry.name}: registered migration run {run.run_key} ({run.mode}); "
                             "requesting the migrate job")
            partitions.append(run.run_key)
            requests.append(_request(run, v.entry))
            cursor.done[v.entry.name] = v.stamp
    finally:
        con.close()
    if not requests:
        return dg.SensorResult(skip_reason=_skip(notes, paths.drop), cursor=cursor.dump())
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(migration_runs.name, partitions)],
        cursor=cursor.dump(),
    )


def _refuse(context, cursor: DropCursor, name: str, stamp: str, reason: str, notes: list[str]) -> None:
    """Report once; the same bytes are not verified again until the bundle is copied again."""
    context.log.warning(f"{name}: not started — {reason}")
    cursor.refused[name] = {"stamp": stamp, "reason": reason}
    notes.append(f"{name}: refused — {reason}")


def _skip(notes: list[str], drop: Path) -> str:
    return "; ".join(notes) if notes else f"no new complete export bundle in {drop}"


# ------------------------------------------------------------------------------------ budget sensor


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _load_asset_keys() -> list[dg.AssetKey]:
    from flitstack_dagster.defs.loading import load_assets

    return [key for a in load_assets for key in a.keys]


def budget_stops(instance: dg.DagsterInstance) -> list[BudgetStop]:
    """Partitions whose latest run is a `migrate` run that failed only because the daily budget was spent."""
    stops: list[BudgetStop] = []
    for partition in instance.get_dynamic_partitions(migration_runs.name):
        latest = instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: partition}), limit=1)
        if not latest:
            continue
        record = latest[0]
        run = record.dagster_run
        if run.job_name != jobs.migrate.name or run.status != dg.DagsterRunStatus.FAILURE:
            continue  # running, queued, succeeded, or something else (e.g. a rollback) came after
        failures = []
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            data = entry.dagster_event.step_failure_data if entry.dagster_event else None
            user = data.user_failure_data if data else None
            meta = {k: getattr(v, "value", v) for k, v in (user.metadata or {}).items()} if user else {}
            failures.append(Failure(entry.step_key or "", (user.description or "") if user else "", meta))
        stopped_at = datetime.fromtimestamp(record.end_time or record.update_timestamp.timestamp(), tz=UTC)
        stop = stop_from_failures(partition, run.run_id, stopped_at, failures)
        if stop is not None:
            stops.append(stop)
    return stops


def build_budget_reset_sensor(
    now: Callable[[], datetime] = _utc_now, account_timezone: str = "UTC", minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """The sensor, with the clock it reads (a test passes the sandbox's simulated clock)."""

    @dg.sensor(
        name=BUDGET_SENSOR, job=jobs.migrate, minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Resumes a migration run whose load stopped because Pipedrive's daily token budget "
        "(minus the reserve) was spent: once the budget has reset it requests the load assets again for "
        "that partition — once per stop, and only if nothing else ran for the partition since.",
    )
    def budget_reset_sensor(context: dg.SensorEvaluationContext):
        stops = budget_stops(context.instance)
        current = now()
        due = due_relaunches(stops, current, account_timezone)
        if not due:
            note = waiting_note(stops, current, account_timezone)
            return dg.SkipReason(note or "no migration run is stopped by the daily token budget")
        keys = _load_asset_keys()
        requests = []
        for stop in due:
            context.log.info(f"{stop.partition}: the daily token budget has reset; re-launching its loads "
                             f"(stopped in run {stop.run_id} at {', '.join(stop.steps)})")
            requests.append(dg.RunRequest(
                run_key=f"budget-reset-{stop.run_id}", partition_key=stop.partition, asset_selection=keys,
                tags={TRIGGER_TAG: BUDGET_SENSOR, "flitstack/resumes_run": stop.run_id},
            ))
        return dg.SensorResult(run_requests=requests)

    return budget_reset_sensor


budget_reset_sensor = build_budget_reset_sensor()
sensors = [novo_export_sensor, budget_reset_sensor]
