"""What the data folder's Dagster instance says about a run's partition, for `flitstack status`, and a run
Ctrl-C left unfinished recorded as canceled."""

from __future__ import annotations

import time
from pathlib import Path
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from flitstack_dagster.core.settings import Paths
from flitstack_dagster.defs.instance import get_instance, latest_run_state, mark_interrupted


pytestmark = pytest.mark.slow  # a Dagster instance on disk and three runs: seconds


@dg.op
def _step():
    pass


@dg.job
def _job():
    _step()


def test_an_unfinished_run_of_this_launch_is_recorded_as_canceled_and_others_are_left_alone(tmp_path):
    paths = Paths(tmp_path).ensure()
    instance = get_instance(paths)
    before = instance.create_run_for_job(_job, tags={"dagster/partition": "full-x"}, status=dg.DagsterRunStatus.STARTED)
    since = datetime.now(UTC) + timedelta(seconds=1)
    other = instance.create_run_for_job(_job, tags={"dagster/partition": "full-y"}, status=dg.DagsterRunStatus.STARTED)
    assert latest_run_state(paths, "full-z") is None

    time.sleep(1.5)
    mine = instance.create_run_for_job(_job, tags={"dagster/partition": "full-x"}, status=dg.DagsterRunStatus.STARTED)
    assert latest_run_state(paths, "full-x").running
    mark_interrupted(paths, "full-x", since)

    assert instance.get_run_by_id(mine.run_id).status == dg.DagsterRunStatus.CANCELED
    assert instance.get_run_by_id(before.run_id).status == dg.DagsterRunStatus.STARTED  # launched before this one
    assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.STARTED  # another partition
    state = latest_run_state(paths, "full-x")
    assert (state.run_id, state.status, state.running) == (mine.run_id, "canceled", False)
    assert state.last_step is None and state.failed_steps == [] and state.failed_checks == []


def test_an_index_left_half_made_by_a_ctrl_c_is_rebuilt(tmp_path):
    """Stopped while Dagster created its event-log index, the next command found the file without the
    run partitions table and failed on every run ("run `dagster instance migrate`"): it is rebuilt."""
    import sqlite3

    from flitstack_dagster.defs.instance import add_partition

    paths = Paths(tmp_path).ensure()
    instance = get_instance(paths)
    index = instance.event_log_storage.path_for_shard("index")
    instance.dispose()
    with sqlite3.connect(index) as db:
        db.execute("DROP TABLE dynamic_partitions")
    instance = get_instance(paths)
    add_partition(instance, "full-x")
    assert instance.has_dynamic_partition("migration_runs", "full-x")
    assert [p.name for p in Path(index).parent.glob("index.db.incomplete-*")]
    instance.dispose()
