"""End to end through Dagster into the sandbox: what the lead edits in the labor and PM rows of
mapping/approved.yaml is what loads — read back from Pipedrive: the labor entries' activity type and
note, and each PM task's duration from its estimated hours."""

from __future__ import annotations

import dagster as dg
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.mapping.demo_approval import approve_for_demo
from flitstack_dagster.mapping.store import approved_path
from flitstack_dagster.mapping.yamlio import load_mapping, write_mapping
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.core.settings import Paths
from flitstack_dagster_tests.reliability.kit import waive_sample_gate

pytestmark = pytest.mark.slow


def _edit_labor_rows(paths: Paths) -> None:
    """As a lead would in mapping/approved.yaml: labor goes to a type of their own, without its rate."""
    m = load_mapping(approved_path(paths))
    m.field("labor", "Labor ID").options = ["Field Labor"]
    rate = next(f for f in m.fields if f.source_entity == "labor" and f.source_column == "Rate"
                and f.target_entity == "activity")
    rate.target_entity, rate.target_field = "none", None
    write_mapping(approved_path(paths), m, "edited by the lead")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("approved_rows")
    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", "8", "--seed", "7", "--mess", "0.02", "--out", str(bundle)]) == 0
    paths = Paths(root / "data").ensure()
    with duck.connect(paths.duckdb) as con:
        run = add_run(con, bundle, "full", paths.work)
    with SandboxServer(state_path=None, plan="ultimate", seats=5, port=0) as sb:
        pipedrive = PipedriveResource(base_url=sb.base_url, api_token=sb.api_token, plan="ultimate", seats=5)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(migration_runs.name, [run.run_key])
        job = build_definitions(paths.root, pipedrive=pipedrive).resolve_job_def("migrate")
        job.execute_in_process(partition_key=run.run_key, instance=instance, raise_on_error=False)
        approve_for_demo(paths)
        _edit_labor_rows(paths)
        waive_sample_gate(paths)
        result = job.execute_in_process(partition_key=run.run_key, instance=instance, raise_on_error=False)
        with PipedriveClient(sb.base_url, sb.api_token, plan="ultimate", seats=5) as client:
            yield paths, run.run_key, result, client


def _loaded(paths: Paths, prefix: str) -> dict[str, int]:
    with duck.connect(paths.duckdb) as con:
        return dict(con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = 'activity' "
                                "AND source_id LIKE ?", [prefix + "%"]).fetchall())


def test_pm_tasks_carry_their_estimated_hours_as_duration(loaded):
    paths, run_key, result, client = loaded
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["no_unexplained_mismatches"].passed, checks["no_unexplained_mismatches"].description
    with duck.connect(paths.duckdb) as con:
        hours = dict(con.execute("SELECT pm_id, estimated_hours FROM staging.stg_pm_schedules WHERE _run_key = ? "
                                 "AND estimated_hours > 0", [run_key]).fetchall())
    tasks = {sid: pid for sid, pid in _loaded(paths, "pm_occurrence:").items() if sid.split(":")[1] in hours}
    assert tasks, "the bundle should load PM tasks with estimated hours"
    for sid, pid in tasks.items():
        a = client.get_activity(pid)
        minutes = round(float(hours[sid.split(":")[1]]) * 60)
        assert a.duration is not None and a.duration.startswith(f"{minutes // 60:02d}:{minutes % 60:02d}"), (sid, a.duration)
        assert "Estimated hours" not in (a.note or "")


def test_labor_entries_load_as_the_edited_type_without_their_rate(loaded):
    paths, _run_key, _result, client = loaded
    field_labor = next(t.key_string for t in client.list_activity_types() if t.name == "Field Labor")
    labor = _loaded(paths, "labor:")
    assert labor, "the bundle should load labor entries"
    for pid in labor.values():
        a = client.get_activity(pid)
        assert a.type == field_labor and "Rate" not in (a.note or ""), (pid, a.type, a.note)
