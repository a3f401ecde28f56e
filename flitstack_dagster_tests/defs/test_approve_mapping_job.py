"""The `approve_mapping` job and `flitstack mapping approve` write the same approved file; the job refuses
what a person can fix (an unknown record plan, a value the mapping lacks) in one sentence, writing nothing."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.approval import OP
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.store import approved_path, proposed_path
from flitstack_dagster.mapping.yamlio import load_mapping, write_proposal
from flitstack_dagster_tests.mapping.conftest import build_source, stage

DECISIONS = [{"field": "work_orders.Status", "source_value": "Stage 7", "target": "In Progress"},
             {"field": "work_orders.Priority", "source_value": "Urgent", "target": "Critical"}]


@pytest.fixture
def world(tmp_path):
    con = duckdb.connect()
    build_source(con)
    stage(con, "work_orders", [{"wo_number": "WO-9", "title": "odd", "status": "Stage 7", "priority": "Low"}])
    proposal = propose_mapping(profile_source(con, "full-1"))
    con.close()
    paths = Paths(tmp_path / "data").ensure()
    write_proposal(proposed_path(paths), proposal)
    return paths, proposal.content_hash(), build_definitions(paths.root).resolve_job_def("approve_mapping")


def _run(job, **config):
    return job.execute_in_process(run_config={"ops": {OP: {"config": config}}}, raise_on_error=False)


def _failure(result) -> str:
    return " ".join(e.step_failure_data.user_failure_data.description for e in result.all_node_events
                    if e.is_step_failure and e.step_failure_data.user_failure_data)


def test_job_and_cli_write_the_same_approved_file(world, tmp_path):
    paths, h, job = world
    result = _run(job, approved_by="dana", proposal_hash=h, record_plan="complete", archive_before="2024-03-01",
                  overrides=DECISIONS)
    assert result.success, _failure(result)
    assert result.output_for_node(OP) == str(approved_path(paths))
    cli_file = tmp_path / "cli.yaml"
    args = ["mapping", "approve", "--by", "dana", "--proposal", str(proposed_path(paths)), "--approved", str(cli_file),
            "--proposal-hash", h, "--record-plan", "complete", "--archive-before", "2024-03-01"]
    for d in DECISIONS:
        args += ["--override", d["field"], d["source_value"], d["target"]]
    assert cli_main(args) == 0
    job_m, cli_m = load_mapping(approved_path(paths)), load_mapping(cli_file)
    assert job_m.model_dump(exclude={"approved_at"}) == cli_m.model_dump(exclude={"approved_at"})
    assert job_m.status_map["Stage 7"].stage == "In Progress" and job_m.approved_by == "dana"
    assert job_m.archive_before == date(2024, 3, 1) and "archive_before: '2024-03-01'" in approved_path(paths).read_text()


@pytest.mark.parametrize("config, sentence", [
    ({"record_plan": "tiny"}, "record plan 'tiny' does not exist: choose one of complete, balanced, compact."),
    ({"archive_before": "March 2024"}, "archive cutoff 'March 2024' is not a date: write it as YYYY-MM-DD"),
    ({"overrides": [{"field": "work_orders.Status", "source_value": "Stage 7", "target": "Waiting"}]},
     "work order status 'Stage 7': 'Waiting' is not a stage of the pipeline"),
])
def test_the_job_refuses_what_a_person_can_fix_in_one_sentence(world, config, sentence):
    paths, h, job = world
    result = _run(job, approved_by="dana", proposal_hash=h, **config)
    assert not result.success and _failure(result).startswith(sentence)
    assert "Traceback" not in _failure(result) and not approved_path(paths).exists()
