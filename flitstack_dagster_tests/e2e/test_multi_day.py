"""A load that needs about 2.5 days of Pipedrive token budget finishes on the third simulated day
with no one touching it, and never spends the reserve kept for the customer's other integrations.

Through Dagster in process, into the sandbox over HTTP. Each simulated morning the "other
integrations" have already spent most of the company's day; what is left above the 20% reserve is
about 1/2.5 of what the load needs. Day 1 a person starts the load and it stops cleanly; from then
on only the real `budget_reset_sensor` (reading the sandbox's clock) starts anything: the test
evaluates it each simulated day and runs exactly the run requests it returns, as the daemon would.

In each of the sandbox's signal modes. `extended`: every answer says the company's tokens left, so
the load stops at the reserve. `documented` (what a real account sends): nothing tells the client what
the others spent, so it keeps the reserve by its own count, and the company's budget runs out first:
the others leave the load only its share of the day, and the load stops on Pipedrive's 429, told
from a burst one by the documented headers alone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.loading import load_assets
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.defs.sensors import BUDGET_SENSOR, build_budget_reset_sensor
from flitstack_dagster.loading.relaunch import RESETS_AT_KEY, STOPPED_BY_BUDGET, STOPPED_BY_KEY
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.mapping.demo_approval import approve_for_demo
from flitstack_dagster.pipedrive.ratelimit import RateLimiter
from flitstack_dagster.pipedrive.costs import default_cost_table
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.core.settings import Paths
from flitstack_dagster_tests.kit import waive_sample_gate
from flitstack_dagster_tests.reliability.kit import generate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# The highest burst limit keeps the simulated days short; one seat, as the budget is set by pre-spending.
PLAN, SEATS, RESERVE = "ultimate", 1, 0.2
DAYS_OF_BUDGET = 2.4  # the load needs this many days of what is left each day (plus look-ups): ~2.5
LOAD_KEYS = [key for a in load_assets for key in a.keys]
PRE_LOAD_GROUPS = ("novo_landing", "novo_staging", "mapping", "pipedrive_shapes")
# What creating one record costs, per entity (the request the loader sends for a new record).
CREATE = {"organization": ("POST", "/api/v2/organizations"), "org_relationship": ("POST", "/v1/organizationRelationships"),
          "person": ("POST", "/api/v2/persons"), "deal": ("POST", "/api/v2/deals"),
          "activity": ("POST", "/api/v2/activities"), "note": ("POST", "/v1/notes"), "file": ("POST", "/v1/files")}
COLLECTION = {"organization": "organizations", "org_relationship": "organizationRelationships",
              "person": "persons", "deal": "deals", "activity": "activities", "note": "notes", "file": "files"}


# The most one request the load sends costs: a company within this of its budget has spent it.
MAX_REQUEST_TOKENS = 20


def simulated_pipedrive(sandbox: SandboxServer) -> PipedriveResource:
    """The destination resource, with the sandbox's simulated clock as the client's wall clock, so
    the run's rate limiter's "today" and budget reset are the sandbox's (in production both are real time)."""
    clock = sandbox.clock

    class SimulatedClockPipedrive(PipedriveResource):
        def new_limiter(self) -> RateLimiter:  # the run's one limiter, on the sandbox's clock
            return RateLimiter(self.plan, self.seats, daily_reserve_fraction=self.daily_reserve_fraction, pace=True,
                               wall_clock=clock.now)

    return SimulatedClockPipedrive(base_url=sandbox.base_url, api_token=sandbox.api_token, plan=PLAN, seats=SEATS,
                                   daily_reserve_fraction=RESERVE)


def _noon_today() -> Clock:
    """Simulated day 1 starts at noon UTC of today's date, far from a midnight the wall clock might cross."""
    now = datetime.now(UTC)
    noon = datetime(now.year, now.month, now.day, 12, tzinfo=UTC)
    return Clock(offset=noon.timestamp() - now.timestamp())


def _next_midnight(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def _budget_failures(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """step -> metadata of each failed step (plain values)."""
    out = {}
    for event in result.all_events:
        if event.is_step_failure:
            user = event.step_failure_data.user_failure_data
            out[event.step_key] = {k: getattr(v, "value", v) for k, v in (user.metadata if user else {}).items()}
    return out


def _tick(sandbox: SandboxServer, defs: dg.Definitions, instance: dg.DagsterInstance):
    """One evaluation of the real budget sensor, reading the sandbox's simulated clock."""
    sensor = build_budget_reset_sensor(now=sandbox.clock.now_dt)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(dg.build_sensor_context(
            instance=instance, instance_ref=instance.get_ref(), definitions=defs))


def _launch(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon does with a run request: a `migrate` run of its selection, partition and tags."""
    tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": BUDGET_SENSOR}
    return defs.resolve_job_def("migrate").execute_in_process(
        partition_key=request.partition_key, instance=instance, asset_selection=list(request.asset_selection),
        tags=tags, raise_on_error=False)


def _prepare(root, sandbox: SandboxServer, instance: dg.DagsterInstance):
    """Generate a small bundle, register a full run, materialize everything before the loads (approved,
    sample gate waived) on the day before: shaped records ready to load."""
    bundle = generate(root / "bundle", 15, 5, 0.03)
    paths = Paths(root / "data").ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "full", paths.work).run_key
    instance.add_dynamic_partitions(migration_runs.name, [run_key])
    defs = build_definitions(paths.root, pipedrive=simulated_pipedrive(sandbox))
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name in PRE_LOAD_GROUPS]
    job = defs.resolve_job_def("migrate")
    job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False, asset_selection=keys)
    approve_for_demo(paths)
    waive_sample_gate(paths)
    after = [k for k in keys if graph.get(k).group_name == "pipedrive_shapes"
             or k.path[-1] in ("pipedrive_schema", "owner_resolution", "scope_doc")]
    shaped = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                    asset_selection=after)
    assert shaped.success, _budget_failures(shaped)
    return paths, run_key, defs, str(bundle)


def _create_tokens(paths: Paths, run_key: str) -> int:
    """Tokens the load needs to create every shaped record of the run (look-ups not counted)."""
    costs = default_cost_table()
    with duck.connect(paths.duckdb, read_only=True) as con:
        return sum(
            costs.cost(*CREATE[entity])
            * con.execute(f"SELECT count(*) FROM shaped.{table} WHERE run_key = ?", [run_key]).fetchall()[0][0]
            for entity, table in ENTITIES.shaped_tables.items())


def _loaded(paths: Paths) -> int:
    with duck.connect(paths.duckdb, read_only=True) as con:
        return con.execute("SELECT count(*) FROM meta.id_map").fetchall()[0][0]


@pytest.mark.parametrize("signals", ["documented", "extended"])
def test_two_and_a_half_days_of_budget_finish_on_day_three_without_touching_the_reserve(tmp_path, signals):
    with dg.instance_for_test() as instance, SandboxServer(
            state_path=tmp_path / "sandbox" / "state.json", plan=PLAN, seats=SEATS, clock=_noon_today(),
            signals=signals) as sandbox:
        paths, run_key, defs, bundle = _prepare(tmp_path, sandbox, instance)
        budget = sandbox.usage()["daily_budget"]
        ceiling = budget - round(budget * RESERVE)  # the most the load may spend in a day
        need = _create_tokens(paths, run_key)
        per_day = math.ceil(need / DAYS_OF_BUDGET)
        # what the customer's other integrations spend every day: with extended signals the load sees it
        # and stops at the reserve; with documented ones it cannot, and the company's budget runs out
        others = (ceiling if signals == "extended" else budget) - per_day
        shaped_total = sum(_count_shaped(paths, run_key).values())

        def check_day(day: int, stopped: bool) -> None:
            usage = sandbox.usage()
            spent_by_day[day] = usage["tokens_today"]
            load = usage["tokens_today"] - others
            assert 0 < load <= ceiling, f"day {day}: the load spent {load} tokens: {usage}"
            if signals == "extended":
                assert usage["tokens_today"] <= ceiling, f"day {day} spent into the reserve: {usage}"
            elif stopped:  # the load ran until Pipedrive refused: the company's budget, not the client, stopped it
                assert budget - usage["tokens_today"] < MAX_REQUEST_TOKENS, f"day {day}: {usage}"

        day, spent_by_day, runs, run_keys = 1, {}, [], set()
        sandbox.next_day()
        sandbox.set_tokens_spent(others)
        # day 1: a person starts the load
        first = defs.resolve_job_def("migrate").execute_in_process(
            partition_key=run_key, instance=instance, asset_selection=LOAD_KEYS, raise_on_error=False,
            tags={"flitstack/bundle": bundle, "flitstack/mode": "full"})
        runs.append((day, first))
        assert not first.success
        failures = _budget_failures(first)
        assert failures, "day 1: the load did not stop"
        for meta in failures.values():  # every step that ran out stopped for the budget, until the reset
            assert meta[STOPPED_BY_KEY] == STOPPED_BY_BUDGET
            assert datetime.fromisoformat(meta[RESETS_AT_KEY]) == _next_midnight(sandbox.clock.now_dt())
        assert 0 < _loaded(paths) < shaped_total  # progress recorded, not finished

        while True:
            # the same simulated day: the sensor waits for the reset and starts nothing
            waiting = _tick(sandbox, defs, instance)
            assert waiting.run_requests == [], f"day {day}: relaunched before the budget reset"
            assert f"{run_key}: waiting for the budget reset at {_next_midnight(sandbox.clock.now_dt()):%Y-%m-%d} 00:00 UTC" \
                in waiting.skip_message
            check_day(day, stopped=True)

            day += 1
            assert day <= 4, f"not finished by day {day - 1}: {spent_by_day}"
            sandbox.next_day()
            sandbox.set_tokens_spent(others)
            tick = _tick(sandbox, defs, instance)
            assert len(tick.run_requests) == 1, tick.skip_message
            request = tick.run_requests[0]
            assert request.partition_key == run_key and set(request.asset_selection) == set(LOAD_KEYS)
            assert request.tags["flitstack/resumes_run"] == runs[-1][1].run_id
            assert request.run_key not in run_keys
            run_keys.add(request.run_key)
            result = _launch(defs, instance, request)
            runs.append((day, result))
            if result.success:
                break
            failed = _budget_failures(result)
            assert failed and all(m.get(STOPPED_BY_KEY) == STOPPED_BY_BUDGET for m in failed.values()), failed

        check_day(day, stopped=False)
        assert day == 3, f"finished on day {day}; spent per day {spent_by_day}"
        # nothing left to resume the next day
        sandbox.next_day()
        assert _tick(sandbox, defs, instance).run_requests == []

        _assert_loaded_once(paths, run_key, sandbox.snapshot())


def _count_shaped(paths: Paths, run_key: str) -> dict[str, int]:
    with duck.connect(paths.duckdb, read_only=True) as con:
        return {entity: con.execute(f"SELECT count(*) FROM shaped.{table} WHERE run_key = ?", [run_key]).fetchall()[0][0]
                for entity, table in ENTITIES.shaped_tables.items()}


def _assert_loaded_once(paths: Paths, run_key: str, snap: dict) -> None:
    """Every shaped record is in the id map or set aside with a reason, once in Pipedrive."""
    with duck.connect(paths.duckdb, read_only=True) as con:
        for entity, table in ENTITIES.shaped_tables.items():
            shaped = {r[0] for r in con.execute(f"SELECT source_id FROM shaped.{table} WHERE run_key = ?",
                                                [run_key]).fetchall()}
            aside = {r[0] for r in con.execute("SELECT source_id FROM meta.load_set_aside WHERE run_key = ? "
                                               "AND entity = ?", [run_key, entity]).fetchall()}
            id_map = dict(con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = ?",
                                      [entity]).fetchall())
            assert shaped, entity
            assert shaped - aside == set(id_map), entity
            assert len(set(id_map.values())) == len(id_map), entity
            live = [int(r["id"]) for r in _records(snap, COLLECTION[entity])]
            assert len(live) == len(set(live)), f"{entity}: duplicate in the sandbox"
            assert set(live) == set(id_map.values()), entity


def _records(snap: dict, coll: str) -> list[dict]:
    recs = snap["records"][coll]
    recs = recs.values() if isinstance(recs, dict) else recs
    return [r for r in recs if not r.get("is_deleted") and r.get("active_flag", True) is not False]
