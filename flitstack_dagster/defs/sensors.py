"""Sensors: start a migration when a complete export lands in the drop folder, and resume a
migration the next day when Pipedrive's daily token budget stopped it.

`novo_export_sensor` is off by default: it starts loads into a customer's Pipedrive, so a person
turns it on. `budget_reset_sensor` is on by default: it only resumes a run someone already started,
once per stop, after the reset, and never when anything else ran for that partition since.
"""

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from flitstack_dagster.defs import jobs
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import ProjectPaths
from flitstack_dagster.core.duck import connect, has_table
from flitstack_dagster.core.errors import BundleError, UserError
from flitstack_dagster.loading.relaunch import (
    BudgetStop,
    Failure,
    due_relaunches,
    stop_from_failures,
    waiting_note,
)
from flitstack_dagster.novo.bundle import Bundle, open_bundle
from flitstack_dagster.novo.manifest import MANIFEST_NAME, Manifest, load_manifest
from flitstack_dagster.novo.runs import (
    MigrationRun,
    find_by_fingerprint,
    get_run,
    list_runs,
    register_run,
    run_key_for,
)

EXPORT_SENSOR = "novo_export_sensor"
BUDGET_SENSOR = "budget_reset_sensor"
PARTITION_TAG = "dagster/partition"
TRIGGER_TAG = "flitstack/trigger"

# ------------------------------------------------------------------------------------ drop folder
# Plain helpers (no Dagster): what is in the drop folder, and which run a new bundle becomes.


def drop_entries(drop: Path) -> list[Path]:
    """Bundle candidates: folders and .zip files, not hidden ones (a copy tool's temp names start with '.')."""
    if not drop.is_dir():
        return []
    return sorted(p for p in drop.iterdir()
                  if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() == ".zip"))


def stamp_of(entry: Path) -> str:
    """Changes whenever any file of the entry is rewritten (size, mtime or ctime): a re-copy is new.

    Only stat() calls, so an unchanged bundle costs no hashing on every tick.
    """
    files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(entry.parent)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}\n".encode())
    return h.hexdigest()[:32]


@dataclass
class DropCursor:
    """What the sensor already handled, by entry name and stamp: started (done) or refused (why)."""

    done: dict[str, str]
    refused: dict[str, dict[str, str]]

    @classmethod
    def load(cls, text: str | None) -> "DropCursor":
        raw = json.loads(text) if text else {}
        return cls(dict(raw.get("done", {})), dict(raw.get("refused", {})))

    def dump(self) -> str:
        return json.dumps({"done": self.done, "refused": self.refused}, sort_keys=True)

    def keep_only(self, names: set[str]) -> None:
        """Forget entries no longer in the folder, so the cursor stays small."""
        self.done = {k: v for k, v in self.done.items() if k in names}
        self.refused = {k: v for k, v in self.refused.items() if k in names}


def read_manifest_of(path: Path) -> Manifest | None:
    """The manifest of a registered bundle (folder or .zip), without verifying the rest; None if unreadable."""
    try:
        if path.is_dir():
            return load_manifest((path / MANIFEST_NAME).read_bytes())
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n == MANIFEST_NAME or n.endswith("/" + MANIFEST_NAME)]
            return load_manifest(zf.read(min(names, key=len))) if names else None
    except (OSError, ValueError, zipfile.BadZipFile, BundleError):
        return None


def tenant_of(con: duckdb_lib.DuckDBPyConnection, run: MigrationRun) -> str | None:
    """A registered run's tenant: from the landed bundle if it landed, else from its manifest."""
    if has_table(con, "raw", "bundles"):
        rows = con.execute("SELECT tenant FROM raw.bundles WHERE _run_key = ? LIMIT 1", [run.run_key]).fetchall()
        if rows:
            return rows[0][0]
    manifest = read_manifest_of(run.bundle_path)
    return manifest.tenant if manifest else None


def has_loaded(con: duckdb_lib.DuckDBPyConnection, run_keys: list[str]) -> bool:
    """Whether any of these runs has a standing audit row (it loaded something not rolled back since)."""
    if not run_keys or not has_table(con, "meta", "audit_log"):
        return False
    marks = ", ".join("?" for _ in run_keys)
    return bool(con.execute(
        f"SELECT 1 FROM meta.audit_log WHERE run_key IN ({marks}) AND rolled_back_by IS NULL LIMIT 1", run_keys
    ).fetchall())


def choose_mode(con: duckdb_lib.DuckDBPyConnection, manifest: Manifest) -> str:
    """`delta` when the tenant's earlier full or delta run loaded something (or the export is a delta), else `full`.

    Sample runs do not count: a full run adopts what a sample created. Raises UserError for a delta
    export with no earlier run of its tenant to build on.
    """
    earlier = [r.run_key for r in list_runs(con)
               if r.mode in ("full", "delta") and tenant_of(con, r) == manifest.tenant]
    if manifest.kind == "delta":
        if not earlier:
            raise UserError(
                f"export {manifest.export_id} is a delta, but no full run of tenant "
                f"'{manifest.tenant or '(none)'}' is registered yet; drop (or `flitstack runs add`) the full "
                "export first, then copy this bundle into the drop folder again"
            )
        return "delta"
    return "delta" if has_loaded(con, earlier) else "full"


@dataclass(frozen=True)
class Verified:
    entry: Path
    stamp: str
    fingerprint: str
    manifest: Manifest


def verify_entry(entry: Path, scratch: Path) -> Verified:
    """Verify sizes and hashes of every listed file (a zip is extracted to a scratch folder, then removed)."""
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="verify-", dir=scratch))
    try:
        stamp = stamp_of(entry)
        bundle = open_bundle(entry, tmp)
        return Verified(entry, stamp, bundle.fingerprint, bundle.manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    notes: list[str] = []
    fresh: list[tuple[Path, str]] = []
    for entry in entries:
        if not Bundle.is_complete(entry):
            notes.append(f"{entry.name}: waiting for the copy to finish (manifest or a listed file missing or short)")
            continue
        stamp = stamp_of(entry)
        if cursor.done.get(entry.name) == stamp:
            continue
        if cursor.refused.get(entry.name, {}).get("stamp") == stamp:
            notes.append(f"{entry.name}: refused — {cursor.refused[entry.name]['reason']}")
            continue
        fresh.append((entry, stamp))
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
                mode = choose_mode(con, v.manifest)
                run = register_run(con, run_key_for(mode, v.manifest.export_id), v.entry, v.fingerprint,
                                   who=EXPORT_SENSOR)
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
