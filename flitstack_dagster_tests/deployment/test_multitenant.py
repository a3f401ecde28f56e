"""The production shape for real: PostgreSQL, the daemon and one code location per tenant, two
Pipedrive accounts (sandboxes over HTTP), two tenants' bundles dropped at once.

What it shows: the drop-folder sensor starts each tenant's migration; each stops at the mapping gate
until the mapping is approved; after approval both migrations complete and every record the id map
names is in that tenant's Pipedrive (nothing else, nothing twice); two runs for one account queue
instead of running together, and every run carries its account tag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.mapping.demo_approval import approve_for_demo
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.defs.run_tags import ACCOUNT_TAG, pipedrive_account
from flitstack_dagster.core.settings import Paths
from flitstack_dagster_tests.deployment.rehearsal import Rehearsal, Tenant, free_port
from flitstack_dagster_tests.kit import waive_sample_gate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WORK_ORDERS = 12  # per tenant: small, so the whole rehearsal stays within a few minutes
PARTITION_TAG = "dagster/partition"
LOCATION_TAG = "dagster/code_location"
TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
LISTS = {"organization": "list_organizations", "person": "list_persons", "deal": "list_deals",
         "activity": "list_activities", "note": "list_notes", "file": "list_files"}


@dataclass
class Outcome:
    rehearsal: Rehearsal
    locations: dict[str, str] = field(default_factory=dict)
    first_runs: dict[str, dg.RunRecord] = field(default_factory=dict)
    first_checks: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    first_failed_steps: dict[str, set[str]] = field(default_factory=dict)
    approve_output: dict[str, str] = field(default_factory=dict)
    second_runs: dict[str, list[dg.RunRecord]] = field(default_factory=dict)
    queued_while_other_ran: dict[str, bool] = field(default_factory=dict)
    max_running_per_account: dict[str, int] = field(default_factory=dict)
    baseline: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    in_pipedrive: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    id_map: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    accounted: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)


def _records(instance: dg.DagsterInstance) -> list[dg.RunRecord]:
    return list(instance.get_run_records(dg.RunsFilter(job_name="migrate")))


def _wait(instance: dg.DagsterInstance, done, timeout: float, what: str, rehearsal: Rehearsal, on_poll=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = _records(instance)
        if on_poll:
            on_poll(records)
        if done(records):
            return records
        time.sleep(0.5)
    states = [(r.dagster_run.tags.get(LOCATION_TAG), r.dagster_run.status.value) for r in _records(instance)]
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; runs: {states}\n"
                         f"{rehearsal.service_logs()}")


def _listed(t: Tenant) -> dict[str, set[int]]:
    """Every record of each kind in the tenant's Pipedrive, read over HTTP."""
    with PipedriveClient(t.base_url, t.token, plan="premium", seats=5) as client:
        return {e: {int(r.id) for r in getattr(client, fn)()} for e, fn in LISTS.items()}


def _read_store(t: Tenant, run_key: str) -> tuple[dict[str, set[int]], dict[str, tuple[int, int]]]:
    """From the tenant's DuckDB: Pipedrive ids per entity, and (shaped, loaded or set aside) for the run."""
    ids: dict[str, set[int]] = {}
    accounted: dict[str, tuple[int, int]] = {}
    with duck.connect(Paths(t.data_dir).duckdb, read_only=True) as con:
        for entity, table in ENTITIES.shaped_tables.items():
            ids[entity] = {r[0] for r in con.execute(
                "SELECT pipedrive_id FROM meta.id_map WHERE entity = ? AND state = 'active'", [entity]).fetchall()}
            shaped, landed = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM meta.id_map m WHERE m.entity = ? "
                f"AND m.source_id = s.source_id) OR EXISTS (SELECT 1 FROM meta.load_set_aside a WHERE a.run_key = ? "
                f"AND a.entity = ? AND a.source_id = s.source_id)) FROM shaped.{table} s WHERE s.run_key = ?",
                [entity, run_key, entity, run_key]).fetchall()[0]
            accounted[entity] = (shaped, landed)
    return ids, accounted


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> Outcome:
    root = tmp_path_factory.mktemp("deployment")
    tenants = [
        Tenant("springfield", "City of Springfield", 3, root / "tenants" / "springfield", free_port(), free_port()),
        Tenant("shelbyville", "City of Shelbyville", 4, root / "tenants" / "shelbyville", free_port(), free_port()),
    ]
    reh = Rehearsal(root, tenants)
    out = Outcome(reh)
    mp = pytest.MonkeyPatch()
    try:
        reh.start_postgres()
        for k in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
            mp.setenv(k, reh.env[k])
        reh.start_sandboxes()
        out.baseline = {t.name: _listed(t) for t in tenants}
        reh.start_deployment()
        instance = dg.DagsterInstance.from_config(str(reh.home))
        data = reh.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name "
                           "locationOrLoadError { __typename } } } } }")
        out.locations = {e["name"]: e["locationOrLoadError"]["__typename"]
                         for e in data["workspaceOrError"]["locationEntries"]}

        # 1. Both tenants' exports land at once; a person turns the sensors on; they start one run each.
        for t in tenants:
            reh.drop_bundle(t, WORK_ORDERS)
        reh.start_sensors()
        names = {t.name for t in tenants}

        def first_done(records):
            done = {r.dagster_run.tags.get(LOCATION_TAG) for r in records if r.dagster_run.status in TERMINAL}
            return names <= done

        records = _wait(instance, first_done, 420, "the sensor-started runs", reh)
        for r in records:
            loc = r.dagster_run.tags[LOCATION_TAG]
            out.first_runs[loc] = r
            evals = instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            out.first_checks[loc] = [(e.dagster_event.event_specific_data.check_name,
                                      e.dagster_event.event_specific_data.passed) for e in evals]
            fails = instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            out.first_failed_steps[loc] = {e.step_key for e in fails}

        # 2. A person approves each tenant's mapping (the demo's choices for what is left unmapped).
        for t in tenants:
            res = reh.approve(t)
            out.approve_output[t.name] = res.stdout + res.stderr
            approve_for_demo(Paths(t.data_dir))
            waive_sample_gate(Paths(t.data_dir))  # the sensor starts full runs: no sample run here

        # 3. Relaunch: twice for springfield's account (they must queue), once for shelbyville's.
        spring, shelby = tenants
        first_ids = {r.dagster_run.run_id for r in records}
        partitions = {loc: r.dagster_run.tags[PARTITION_TAG] for loc, r in out.first_runs.items()}
        reh.parallel([reh.launch_migrate(spring, partitions[spring.name]),
                      reh.launch_migrate(spring, partitions[spring.name]),
                      reh.launch_migrate(shelby, partitions[shelby.name])])
        out.queued_while_other_ran = {t.name: False for t in tenants}
        out.max_running_per_account = {}

        def observe(records):
            by_account: dict[str, list[dg.DagsterRunStatus]] = {}
            for r in records:
                if r.dagster_run.run_id in first_ids:
                    continue
                acct = r.dagster_run.tags.get(ACCOUNT_TAG) or r.dagster_run.tags.get(LOCATION_TAG)
                by_account.setdefault(acct, []).append(r.dagster_run.status)
            for r in records:
                loc = r.dagster_run.tags.get(LOCATION_TAG)
                acct = r.dagster_run.tags.get(ACCOUNT_TAG) or loc
                states = by_account.get(acct, [])
                running = sum(s in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED) for s in states)
                out.max_running_per_account[loc] = max(out.max_running_per_account.get(loc, 0), running)
                if running and dg.DagsterRunStatus.QUEUED in states:
                    out.queued_while_other_ran[loc] = True

        def second_done(records):
            new = [r for r in records if r.dagster_run.run_id not in first_ids]
            return len(new) == 3 and all(r.dagster_run.status in TERMINAL for r in new)

        records = _wait(instance, second_done, 600, "the relaunched runs", reh, on_poll=observe)
        for r in records:
            if r.dagster_run.run_id not in first_ids:
                out.second_runs.setdefault(r.dagster_run.tags[LOCATION_TAG], []).append(r)

        # 4. Read back: each tenant's DuckDB (id map, shaped rows) against its Pipedrive over HTTP.
        for t in tenants:
            out.in_pipedrive[t.name] = _listed(t)
            out.id_map[t.name], out.accounted[t.name] = _read_store(t, partitions[t.name])
        instance.dispose()
        return out
    except BaseException:
        print(reh.service_logs())
        raise
    finally:
        reh.stop()
        mp.undo()


def test_every_tenant_is_its_own_code_location(outcome):
    assert outcome.locations == {"springfield": "RepositoryLocation", "shelbyville": "RepositoryLocation"}


def test_dropped_exports_start_runs_that_wait_for_the_mapping(outcome):
    for name in ("springfield", "shelbyville"):
        run = outcome.first_runs[name].dagster_run
        assert run.tags.get("flitstack/trigger") == "novo_export_sensor"
        assert run.tags[PARTITION_TAG].startswith("full-")
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert ("mapping_approved", False) in outcome.first_checks[name]
        assert outcome.first_failed_steps[name] == {"proposed_mapping"}, outcome.first_failed_steps[name]
        assert "approved" in outcome.approve_output[name]


def test_both_migrations_complete(outcome):
    for name, runs in outcome.second_runs.items():
        assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs), name
    assert sorted(len(v) for v in outcome.second_runs.values()) == [1, 2]


@pytest.mark.parametrize("name", ["springfield", "shelbyville"])
def test_pipedrive_holds_exactly_what_the_id_map_says(outcome, name):
    """Every mapped record is in this tenant's account, and nothing else arrived (no duplicates from
    the second run, nothing from the other tenant)."""
    baseline, now, ids = outcome.baseline[name], outcome.in_pipedrive[name], outcome.id_map[name]
    for entity in LISTS:
        assert ids[entity] <= now[entity], f"{entity}: mapped ids missing from Pipedrive"
        assert now[entity] - baseline[entity] == ids[entity] - baseline[entity], entity
    assert len(ids["deal"]) == WORK_ORDERS and ids["organization"] and ids["activity"] and ids["note"]


@pytest.mark.parametrize("name", ["springfield", "shelbyville"])
def test_every_shaped_record_is_loaded_or_set_aside(outcome, name):
    for entity, (shaped, landed) in outcome.accounted[name].items():
        assert shaped > 0 or entity == "file", entity
        assert landed == shaped, f"{entity}: {shaped - landed} of {shaped} shaped records neither loaded nor set aside"


def test_two_runs_for_one_account_queue_instead_of_running_together(outcome):
    a, b = sorted(outcome.second_runs["springfield"], key=lambda r: r.start_time or 0)
    assert a.end_time is not None and b.start_time is not None
    assert a.end_time <= b.start_time, "the second run for the account started before the first ended"
    assert outcome.queued_while_other_ran["springfield"] is True
    assert outcome.max_running_per_account["springfield"] == 1


def test_runs_carry_their_pipedrive_account(outcome):
    tenants = {t.name: t for t in outcome.rehearsal.tenants}
    accounts = set()
    for name, runs in outcome.second_runs.items():
        for r in [outcome.first_runs[name], *runs]:
            assert r.dagster_run.tags.get(ACCOUNT_TAG) == pipedrive_account(tenants[name].base_url), name
            accounts.add(r.dagster_run.tags.get(ACCOUNT_TAG))
    assert len(accounts) == 2


def test_no_token_in_the_instance(outcome):
    """The API tokens are in the code servers' environment only: never in run tags or the config Dagster stored."""
    home = Path(outcome.rehearsal.home)
    files = [home / "dagster.yaml", home / "workspace.yaml", outcome.rehearsal.tenants_file]
    for t in outcome.rehearsal.tenants:
        for f in files:
            assert t.token not in f.read_text(), f
        for r in [outcome.first_runs[t.name], *outcome.second_runs[t.name]]:
            assert t.token not in repr(r.dagster_run.tags) and t.token not in repr(r.dagster_run.run_config)
