"""The drop-folder sensor and the budget-reset sensor, evaluated for real on a Dagster instance."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id

from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs import sensors as sensors_mod
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.core.duck import connect
from flitstack_dagster.loading.relaunch import next_midnight
from flitstack_dagster.loading.store import ensure_schema as ensure_load_schema
from flitstack_dagster.novo import drop as drop_mod
from flitstack_dagster.novo.generator import generate
from flitstack_dagster.novo.generator.options import GenOptions
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent
from flitstack_dagster.novo.runs import list_runs

FULL_KEY = "full-springfield-20261120T070000Z"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A full bundle (folder and .zip) and a delta of it, generated once outside any drop folder."""
    root = tmp_path_factory.mktemp("exports")
    generate(GenOptions(out=root / "x", work_orders=20, seed=1, zip=True, mess_log=False), log=lambda _: None)
    generate(GenOptions(out=root / "d", work_orders=20, seed=1, delta_from=root / "x", mess_log=False),
             log=lambda _: None)
    generate(GenOptions(out=root / "y", work_orders=20, seed=2, exported_at="2026-12-01T07:00:00Z", mess_log=False),
             log=lambda _: None)
    return root


@pytest.fixture(scope="module")
def shared_instance():
    """One on-disk instance for the module (creating one takes seconds); each test wipes it."""
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def instance(shared_instance):
    shared_instance.wipe()
    for key in shared_instance.get_dynamic_partitions(migration_runs.name):
        shared_instance.delete_dynamic_partition(migration_runs.name, key)
    return shared_instance


@pytest.fixture
def env(tmp_path, instance):
    data = tmp_path / "data"
    defs = build_definitions(data, pipedrive=PipedriveResource(base_url="http://127.0.0.1:9", api_token="unused"))
    return defs, instance, data


class Ticker:
    """Evaluates the export sensor the way the daemon does: cursor carried over, partitions added,
    and a (not executed) run record created for each run request, as the daemon creates one."""

    def __init__(self, defs, instance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self, submit: bool = True):
        # the daemon hands the code location's resources to the sensor; evaluate_tick needs them given
        ctx = dg.build_sensor_context(instance=self.instance, instance_ref=self.instance.get_ref(),
                                      cursor=self.cursor, definitions=self.defs, resources=self.defs.resources)
        with dg.partition_loading_context(dynamic_partitions_store=self.instance):  # as the daemon does
            data = self.defs.resolve_sensor_def("novo_export_sensor").evaluate_tick(ctx)
        if not submit:
            return data
        self.cursor = data.cursor
        for req in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        for req in data.run_requests:
            self.instance.add_run(dg.DagsterRun(job_name="migrate", run_id=make_new_run_id(),
                                                tags={**req.tags, "dagster/partition": req.partition_key}))
        return data


def _partitions(data) -> list[str]:
    return [k for req in (data.dynamic_partitions_requests or []) for k in req.partition_keys]


def _copy_bundle(src: Path, dest: Path, skip: tuple[str, ...] = ()) -> None:
    """Copy like a person would (new mtimes), leaving out `skip`."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if p.is_dir() or rel.as_posix() in skip:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest / rel)


def _registry(data: Path) -> dict[str, str]:
    con = connect(data / "flitstack.duckdb")
    try:
        return {r.run_key: r.registered_by for r in list_runs(con)}
    finally:
        con.close()


def _mark_loaded(data: Path, run_key: str, rolled_back: bool = False) -> None:
    """As the loader does when a record lands: one audit row for the run (and rollback marks it)."""
    con = connect(data / "flitstack.duckdb")
    try:
        ensure_load_schema(con)
        con.execute("INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, recorded_at, "
                    "rolled_back_by) VALUES (?, 'organization', 'A-1', 1, 'create', now(), ?)",
                    [run_key, f"rollback:{run_key}" if rolled_back else None])
    finally:
        con.close()


# ------------------------------------------------------------------------------------ export sensor


@pytest.mark.slow
def test_dropped_bundle_gives_one_partition_and_one_run_then_nothing(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    assert t.tick().run_requests == []  # empty drop folder
    _copy_bundle(source / "x", data / "drop" / "x")
    first = t.tick()
    assert _partitions(first) == [FULL_KEY]
    assert len(first.run_requests) == 1
    req = first.run_requests[0]
    assert req.partition_key == FULL_KEY and req.run_key == FULL_KEY
    assert req.tags["flitstack/mode"] == "full"
    assert req.tags["flitstack/bundle"] == str(data / "drop" / "x")
    assert _registry(data) == {FULL_KEY: "novo_export_sensor"}
    assert instance.has_dynamic_partition(migration_runs.name, FULL_KEY)
    second = t.tick()
    assert second.run_requests == [] and not _partitions(second)


def test_bundle_without_manifest_waits_until_it_is_complete(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    _copy_bundle(source / "x", data / "drop" / "x", skip=("manifest.json",))
    waiting = t.tick()
    assert waiting.run_requests == [] and not _partitions(waiting)
    assert "x: waiting for the copy to finish" in waiting.skip_message
    assert _registry(data) == {}
    shutil.copyfile(source / "x" / "manifest.json", data / "drop" / "x" / "manifest.json")
    done = t.tick()
    assert _partitions(done) == [FULL_KEY] and len(done.run_requests) == 1


def test_truncated_file_waits_until_it_is_complete(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    drop = data / "drop" / "x"
    _copy_bundle(source / "x", drop)
    whole = (source / "x" / "work_orders.csv").read_bytes()
    (drop / "work_orders.csv").write_bytes(whole[: len(whole) // 2])  # still being copied
    assert t.tick().run_requests == []
    assert t.tick().run_requests == []
    (drop / "work_orders.csv").write_bytes(whole)
    done = t.tick()
    assert _partitions(done) == [FULL_KEY] and len(done.run_requests) == 1
    assert t.tick().run_requests == []


def test_hash_mismatch_is_reported_once_and_retried_only_after_a_new_copy(env, source, monkeypatch):
    defs, instance, data = env
    t = Ticker(defs, instance)
    drop = data / "drop" / "x"
    _copy_bundle(source / "x", drop)
    whole = (source / "x" / "work_orders.csv").read_bytes()
    (drop / "work_orders.csv").write_bytes(whole[:-2] + b"!!")  # right size, wrong bytes
    opened = []
    real_open = drop_mod.open_bundle
    monkeypatch.setattr(drop_mod, "open_bundle", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    bad = t.tick()
    assert bad.run_requests == []
    assert "x: refused" in bad.skip_message and "SHA-256 does not match" in bad.skip_message
    assert "work_orders.csv" in bad.skip_message
    again = t.tick()
    assert again.run_requests == [] and "x: refused" in again.skip_message
    assert len(opened) == 1  # not verified again: the same bytes would fail the same way
    (drop / "work_orders.csv").write_bytes(whole)  # re-copied
    done = t.tick()
    assert _partitions(done) == [FULL_KEY] and len(done.run_requests) == 1
    assert len(opened) == 2


def test_zip_bundle_works_and_the_same_bundle_as_folder_does_not_start_twice(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    (data / "drop").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "x.zip", data / "drop" / "x.zip")
    first = t.tick()
    assert _partitions(first) == [FULL_KEY] and len(first.run_requests) == 1
    assert first.run_requests[0].tags["flitstack/bundle"] == str(data / "drop" / "x.zip")
    _copy_bundle(source / "x", data / "drop" / "x-again")  # same manifest, same fingerprint
    second = t.tick()
    assert second.run_requests == [] and not _partitions(second)
    assert f"already migration run {FULL_KEY}" in second.skip_message


def test_half_copied_zip_waits(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    (data / "drop").mkdir(parents=True, exist_ok=True)
    whole = (source / "x.zip").read_bytes()
    (data / "drop" / "x.zip").write_bytes(whole[: len(whole) * 2 // 3])
    assert t.tick().run_requests == []
    (data / "drop" / "x.zip").write_bytes(whole)
    assert len(t.tick().run_requests) == 1


def test_delta_bundle_after_a_full_run_registers_a_delta_run(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    _copy_bundle(source / "x", data / "drop" / "x")
    assert _partitions(t.tick()) == [FULL_KEY]
    _copy_bundle(source / "d", data / "drop" / "d")
    delta = t.tick()
    assert _partitions(delta) == ["delta-springfield-20261127T070000Z"]
    assert delta.run_requests[0].tags["flitstack/mode"] == "delta"
    assert set(_registry(data)) == {FULL_KEY, "delta-springfield-20261127T070000Z"}


def test_full_and_its_delta_dropped_together_register_in_export_order(env, source):
    defs, instance, data = env
    _copy_bundle(source / "d", data / "drop" / "a-delta")  # sorts first by name
    _copy_bundle(source / "x", data / "drop" / "b-full")
    result = Ticker(defs, instance).tick()
    assert _partitions(result) == [FULL_KEY, "delta-springfield-20261127T070000Z"]


def test_delta_bundle_with_no_full_run_is_refused_with_a_reason(env, source):
    defs, instance, data = env
    _copy_bundle(source / "d", data / "drop" / "d")
    result = Ticker(defs, instance).tick()
    assert result.run_requests == []
    assert "is a delta, but no full run of tenant 'City of Springfield' is registered" in result.skip_message
    assert _registry(data) == {}


def test_full_reexport_is_a_full_run_until_something_was_loaded_then_a_delta(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    _copy_bundle(source / "x", data / "drop" / "x")
    assert _partitions(t.tick()) == [FULL_KEY]
    _mark_loaded(data, FULL_KEY)
    _copy_bundle(source / "y", data / "drop" / "y")
    assert _partitions(t.tick()) == ["delta-springfield-20261201T070000Z"]


def test_full_reexport_before_anything_loaded_or_after_a_rollback_stays_full(env, source):
    defs, instance, data = env
    t = Ticker(defs, instance)
    _copy_bundle(source / "x", data / "drop" / "x")
    assert _partitions(t.tick()) == [FULL_KEY]
    _mark_loaded(data, FULL_KEY, rolled_back=True)  # loaded, then rolled back: nothing stands
    _copy_bundle(source / "y", data / "drop" / "y")
    assert _partitions(t.tick()) == ["full-springfield-20261201T070000Z"]


def test_a_lost_tick_is_resubmitted_but_a_started_run_is_never_started_again(env, source):
    defs, instance, data = env
    _copy_bundle(source / "x", data / "drop" / "x")
    t = Ticker(defs, instance)
    # the run was registered, then the daemon died before it created the run or saved the cursor
    assert len(t.tick(submit=False).run_requests) == 1
    retry = t.tick()
    assert [r.run_key for r in retry.run_requests] == [FULL_KEY] and _partitions(retry) == [FULL_KEY]
    assert set(_registry(data)) == {FULL_KEY}
    # a run exists for the partition now: even with a lost cursor it is never started again
    fresh = Ticker(defs, instance).tick()
    assert fresh.run_requests == [] and f"already migration run {FULL_KEY}" in fresh.skip_message


def test_busy_duckdb_is_a_skip_and_the_bundle_is_picked_up_later(env, source):
    defs, instance, data = env
    data.mkdir(parents=True, exist_ok=True)
    script = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", script, str(data / "flitstack.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        _copy_bundle(source / "x", data / "drop" / "x")
        t = Ticker(defs, instance)
        busy = t.tick()
        assert busy.run_requests == [] and "in use by a running job" in busy.skip_message
    finally:
        holder.kill()
        holder.wait()
    assert _partitions(t.tick()) == [FULL_KEY]


# ------------------------------------------------------------------------------------ budget sensor

BEHAVIOUR = {"organizations": "budget"}
LOAD_KEYS = [dg.AssetKey(n) for n in ("loaded_organizations", "loaded_org_relationships", "loaded_persons",
                                       "loaded_deals", "loaded_activities", "loaded_notes", "loaded_files",
                                       "applied_deletions")]


def _next_midnight() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


@dg.asset(name="loaded_organizations", partitions_def=migration_runs)
def _stand_in_orgs():
    """Stands in for the real load asset: raises what defs/loading.py raises when the budget is spent."""
    if BEHAVIOUR["organizations"] == "budget":
        err = DailyBudgetSpent(spent=240_000, budget=300_000, reserve=60_000, resets_at=_next_midnight(),
                               now=datetime.now(UTC))
        raise dg.Failure(
            description=f"loaded_organizations stopped after 3/10 records: {err}. Everything loaded so far is "
            "recorded; re-materialize the partition after the budget resets.",
            metadata={"total": 10, "tokens_spent": 30},
        )
    if BEHAVIOUR["organizations"] == "error":
        raise dg.Failure(description="HTTP 400 from Pipedrive: 'name' is required", metadata={"total": 10})


@dg.asset(name="loaded_persons", partitions_def=migration_runs, deps=[_stand_in_orgs])
def _stand_in_persons():
    return None


STAND_IN = dg.Definitions(
    assets=[_stand_in_orgs, _stand_in_persons],
    jobs=[dg.define_asset_job("migrate", selection=dg.AssetSelection.all())],
)


def _run_migrate(instance, partition: str, behaviour: str) -> dg.ExecuteInProcessResult:
    BEHAVIOUR["organizations"] = behaviour
    instance.add_dynamic_partitions(migration_runs.name, [partition])
    return STAND_IN.resolve_job_def("migrate").execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False)


def _budget_tick(instance, now: datetime, timezone: str = "UTC"):
    """Evaluated against the real code location, so the requested asset keys must exist in `migrate`."""
    sensor = sensors_mod.build_budget_reset_sensor(now=lambda: now, account_timezone=timezone)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(dg.build_sensor_context(
            instance=instance, instance_ref=instance.get_ref(), definitions=_real_defs()))


@functools.cache
def _real_defs() -> dg.Definitions:
    data = Path(tempfile.mkdtemp(prefix="sensors-defs-"))
    return build_definitions(data, pipedrive=PipedriveResource(base_url="http://127.0.0.1:9", api_token="unused"))


def test_budget_stop_waits_for_the_reset_then_relaunches_the_loads_once(instance):
    stopped = _run_migrate(instance, FULL_KEY, "budget")
    assert not stopped.success
    before = _budget_tick(instance, datetime.now(UTC))
    assert before.run_requests == []
    assert f"{FULL_KEY}: waiting for the budget reset at {_next_midnight():%Y-%m-%d} 00:00 UTC" in before.skip_message
    after = _budget_tick(instance, _next_midnight() + timedelta(seconds=1))
    assert len(after.run_requests) == 1
    req = after.run_requests[0]
    assert req.partition_key == FULL_KEY
    assert req.run_key == f"budget-reset-{stopped.run_id}"  # the daemon never submits a run key twice
    assert req.tags["flitstack/resumes_run"] == stopped.run_id
    assert sorted(req.asset_selection, key=str) == sorted(LOAD_KEYS, key=str)
    # with the account in Chicago it waits for the later of Chicago's midnight and the loader's reset
    chicago = max(_next_midnight(), next_midnight(datetime.now(UTC), "America/Chicago"))
    assert _budget_tick(instance, chicago - timedelta(seconds=1), "America/Chicago").run_requests == []
    assert len(_budget_tick(instance, chicago, "America/Chicago").run_requests) == 1


@pytest.mark.slow
def test_no_relaunch_when_a_later_run_succeeded_or_the_failure_was_not_the_budget(instance):
    _run_migrate(instance, FULL_KEY, "budget")
    assert _run_migrate(instance, FULL_KEY, "ok").success  # someone re-ran it by hand
    other = "full-other-20261120T070000Z"
    _run_migrate(instance, other, "error")
    later = _budget_tick(instance, _next_midnight() + timedelta(days=1))
    assert later.run_requests == []
    assert "no migration run is stopped by the daily token budget" in later.skip_message


@pytest.mark.slow
def test_each_stopped_partition_is_relaunched_and_a_new_stop_is_a_new_relaunch(instance):
    a = _run_migrate(instance, FULL_KEY, "budget")
    b = _run_migrate(instance, "delta-springfield-20261127T070000Z", "budget")
    due = _budget_tick(instance, _next_midnight() + timedelta(minutes=5))
    assert {r.run_key for r in due.run_requests} == {f"budget-reset-{a.run_id}", f"budget-reset-{b.run_id}"}
    a2 = _run_migrate(instance, FULL_KEY, "budget")  # the relaunch stopped again (multi-day load)
    assert FULL_KEY in _budget_tick(instance, datetime.now(UTC)).skip_message  # waits again
    again = _budget_tick(instance, _next_midnight() + timedelta(minutes=5))
    assert {r.run_key for r in again.run_requests} == {f"budget-reset-{a2.run_id}", f"budget-reset-{b.run_id}"}


def test_sensors_are_wired_with_safe_default_status(env):
    defs, _, _ = env
    export = defs.resolve_sensor_def("novo_export_sensor")
    budget = defs.resolve_sensor_def("budget_reset_sensor")
    assert export.default_status == dg.DefaultSensorStatus.STOPPED
    assert budget.default_status == dg.DefaultSensorStatus.RUNNING
    assert export.minimum_interval_seconds == 30
    assert export.job_name == budget.job_name == "migrate"
