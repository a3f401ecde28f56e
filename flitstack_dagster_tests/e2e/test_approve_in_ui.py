"""Approval without a terminal, as in the UI: the sample run's `migrate` stops at `mapping_approved`; the
lead reads the proposal hash and the blocking values from the metadata, launches `approve_mapping` with
the launchpad config the check shows (a stale hash is refused in one sentence), and the next
`migrate` passes the check and loads — through a real Dagster instance into the sandbox over HTTP."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core import duck
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.approval import OP
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.mapping.approval import STALE_PROPOSAL
from flitstack_dagster.mapping.store import approved_path
from flitstack_dagster.mapping.yamlio import STATUS_KEY, load_mapping
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.sandbox.server import SandboxServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _check(result, name: str = "mapping_approved") -> dg.AssetCheckEvaluation:
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def _fill_in(example: str, who: str) -> dict:
    """What the lead does with the launchpad example: their name, and a target for each unmapped value
    (a status parks on On Hold, a list value becomes an option of its own name); the rest as proposed."""
    config = yaml.safe_load(example)
    c = config["ops"][OP]["config"]
    c["approved_by"] = who
    for o in c["overrides"]:
        if o["target"] is None:
            o["target"] = "On Hold" if o["field"] == STATUS_KEY else o["source_value"]
    return config


def _failure_text(result) -> str:
    events = [e for e in result.all_node_events if e.is_step_failure]
    return " ".join((e.step_failure_data.user_failure_data.description or "") for e in events
                    if e.step_failure_data.user_failure_data)


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    root = tmp_path_factory.mktemp("approve_ui")
    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", "12", "--seed", "5", "--mess", "0.05", "--out", str(bundle)]) == 0
    paths = Paths(root / "data").ensure()
    (root / "dagster_home").mkdir()
    with duck.connect(paths.duckdb) as con:
        run = add_run(con, bundle, "sample", paths.work)
    with SandboxServer(state_path=None, plan="ultimate", seats=5, port=0) as sb, \
            dg.DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
        instance.add_dynamic_partitions(migration_runs.name, [run.run_key])
        defs = build_definitions(paths.root, pipedrive=PipedriveResource(
            base_url=sb.base_url, api_token=sb.api_token, plan="ultimate", seats=5))
        migrate, approve = defs.resolve_job_def("migrate"), defs.resolve_job_def("approve_mapping")

        def go():
            return migrate.execute_in_process(partition_key=run.run_key, instance=instance, raise_on_error=False)

        blocked = go()
        shown = instance.get_latest_materialization_event(dg.AssetKey("proposed_mapping")).asset_materialization
        proposal_hash = shown.metadata["proposal_hash"].value
        config = _fill_in(_check(blocked).metadata["launchpad_config"].value, "Dana Lead")
        stale_config = yaml.safe_load(yaml.safe_dump(config))
        stale_config["ops"][OP]["config"]["proposal_hash"] = "0" * 64
        stale = approve.execute_in_process(run_config=stale_config, instance=instance, raise_on_error=False)
        approved_after_stale = approved_path(paths).exists()
        approval = approve.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        again = go()
        yield {"paths": paths, "blocked": blocked, "shown": shown, "proposal_hash": proposal_hash, "config": config,
               "stale": stale, "approved_after_stale": approved_after_stale, "approval": approval, "again": again}


def test_the_sample_run_stops_at_the_check_which_says_what_blocks_and_how_to_approve(journey):
    blocked, config = journey["blocked"], journey["config"]
    check = _check(blocked)
    assert not check.passed and check.blocking
    assert not [e for e in blocked.all_node_events if e.is_step_success and e.step_key.startswith("loaded_")]
    meta = check.metadata
    assert "approve_mapping" in meta["how_to_approve"].value
    assert meta["proposal_hash"].value == journey["proposal_hash"]
    assert journey["proposal_hash"] in meta["cli"].value and meta["cli"].value.startswith("flitstack mapping approve")
    assert "/jobs/approve_mapping/playground/setup?config=" in meta["approve_in_the_ui"].value
    blocking = meta["values_needing_a_decision"].value
    assert blocking.records, "a messy bundle should leave values for the lead to decide"
    assert [c.name for c in blocking.schema.columns][:2] == ["field", "source_value"]
    example = config["ops"][OP]["config"]
    assert example["proposal_hash"] == journey["proposal_hash"] and example["record_plan"] == "complete"
    assert {(o["field"], o["source_value"]) for o in example["overrides"]} == \
        {(r.data["field"], r.data["source_value"]) for r in blocking.records}


def test_the_proposal_reads_as_typed_tables(journey):
    meta = journey["shown"].metadata
    statuses = meta["status_to_stage"].value
    types = {c.name: c.type for c in statuses.schema.columns}
    assert types["confidence"] == "float" and types["needs_decision"] == "bool" and types["stage"] == "string"
    assert statuses.records and all(r.data["reason"] for r in statuses.records)
    for name in ("priority", "request_type", "department"):
        assert meta[name].value.records, name
    assert meta["dagster/row_count"].value > 0


def test_a_stale_hash_is_refused_in_one_sentence_and_writes_nothing(journey):
    stale = journey["stale"]
    assert not stale.success and _failure_text(stale) == STALE_PROPOSAL
    assert not journey["approved_after_stale"]


def test_the_approval_is_written_and_the_next_run_passes_the_check_and_loads(journey):
    approval, again = journey["approval"], journey["again"]
    assert approval.success, _failure_text(approval)
    m = load_mapping(approved_path(journey["paths"]))
    assert m.approved_by == "Dana Lead" and m.record_plan == "complete" and m.proposal_hash == journey["proposal_hash"]
    check = _check(again)
    assert check.passed, check.description
    loaded = {e.step_key for e in again.all_node_events if e.is_step_success}
    assert "loaded_deals" in loaded, [c.description for c in again.get_asset_check_evaluations() if not c.passed]
    deals = next(m for m in again.asset_materializations_for_node("shape_pipedrive_records")
                 if m.asset_key == dg.AssetKey("pd_deals"))
    preview = deals.metadata["preview"].value
    assert [c.name for c in preview.schema.columns] == ["source_id", "kind", "payload"] and preview.records
