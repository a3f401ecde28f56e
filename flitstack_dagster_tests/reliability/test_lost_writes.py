"""A sandbox that forgets writes it acknowledged (its fault mode) hands their ids out again: the next load
stops with the clear message instead of mapping one Pipedrive id to two source records — in Dagster as
a failure without a traceback — and `flitstack repair RUN` brings the run to a state where the next
load finishes with nothing duplicated and nothing missing (read back)."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import dagster as dg
import httpx
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.loading.group_commit import GroupCommitStore
from flitstack_dagster.loading.loader import load_entity
from flitstack_dagster.loading.resolve import Registry, Resolver
from flitstack_dagster.loading.run import shaped_rows
from flitstack_dagster.loading.store import IdMapConflict, shared_ids
from flitstack_dagster.verification.verify import verify_run

from . import kit
from .oracle import destination_problems

pytestmark = pytest.mark.slow

CLEAR = re.compile(
    r"Pipedrive answered the (create|look-up) of deal (work_order:\S+) with id (\d+), which the id map already holds "
    r"for (work_order:\S+): the account lost records it had acknowledged, or someone else writes to it\. "
    r"Run `flitstack repair (\S+)` to rebuild the id map from what the account holds\.")


def load_some_deals(p: kit.Prepared, pd, count: int) -> None:
    with duck.connect(p.paths.duckdb) as con:
        store = GroupCommitStore(con)
        ids = {e: {s: m.pipedrive_id for s, m in store.id_map(e).items()} for e in ("organization", "person", "deal")}
        rows = shaped_rows(con, p.run_key, "deal")[:count]
        load_entity(pd, store, Resolver(Registry.load(con, pd.account()), ids), "deal", rows, p.run_key)


def forget(sb, creates: int, kind: str) -> list[dict]:
    """The fault mode over the sandbox's admin API: lose the newest acknowledged creates, reuse their ids."""
    r = httpx.post(sb.base_url + "/_sandbox/forget", json={"creates": creates, "kind": kind},
                   headers={"x-api-token": kit.TOKEN}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["forgotten"]


def load_deals_in_dagster(p: kit.Prepared, sb) -> str:
    """Materialize loaded_deals for the run; -> the step failure's description."""
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(migration_runs.name, [p.run_key])
    pipedrive = PipedriveResource(base_url=sb.base_url, api_token=kit.TOKEN, plan=kit.PLAN, seats=kit.SEATS)
    job = build_definitions(p.paths.root, pipedrive=pipedrive).resolve_job_def("migrate")
    result = job.execute_in_process(partition_key=p.run_key, instance=instance, raise_on_error=False,
                                    asset_selection=[dg.AssetKey("loaded_deals")])
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    error = failures[0].step_failure_data.error
    assert error.cls_name == "Failure" and "Traceback" not in (error.message or "")
    return failures[0].step_failure_data.user_failure_data.description


def test_forgotten_writes_stop_the_load_clearly_and_repair_brings_it_to_zero_duplicates_zero_missing(
        fresh, monkeypatch, capsys):
    p = fresh
    with kit.sandbox(p) as sb, kit.client(sb) as pd:
        baseline = sb.snapshot()
        kit.load_all(p, pd, entities=("organization", "org_relationship", "person"))
        load_some_deals(p, pd, 6)
        lost = forget(sb, 2, "deals")
        assert len(lost) == 2

        # the next load: a new deal is answered with a forgotten id -> stop, no second mapping
        with pytest.raises(IdMapConflict) as e:
            kit.load_all(p, pd)
        m = CLEAR.fullmatch(str(e.value))
        assert m, str(e.value)
        assert int(m.group(3)) in {x["id"] for x in lost} and m.group(2) != m.group(4) and m.group(5) == p.run_key
        del e  # its traceback holds the load's DuckDB connection open
        gc.collect()
        with duck.connect(p.paths.duckdb) as con:
            assert shared_ids(con) == []

        # the same stop through Dagster: a failure with the message, not a stack trace
        assert CLEAR.fullmatch(load_deals_in_dagster(p, sb))

        # repair, the way a person does it
        monkeypatch.setenv("FLITSTACK_DATA_DIR", str(p.paths.root))
        monkeypatch.setenv("PIPEDRIVE_BASE_URL", sb.base_url)
        monkeypatch.setenv("PIPEDRIVE_API_TOKEN", kit.TOKEN)
        monkeypatch.setenv("PIPEDRIVE_PLAN", kit.PLAN)
        assert cli_main(["repair", p.run_key]) == 0
        out = capsys.readouterr().out
        assert f"{p.run_key}: adopted " in out and "missing 2 (to be created again by the next load)" in out
        assert kit.TOKEN not in out

        # the re-run finishes unaided; the read-back finds every record exactly once
        results = kit.load_all(p, pd)
        assert list(results) == list(kit.ENTITIES) and not any(r.stopped for r in results.values())
        with duck.connect(p.paths.duckdb) as con:
            verified = verify_run(con, pd, p.run_key)
        assert verified.once_problems() == []
        assert verified.run_duplicates().height == 0 and verified.missing().height == 0
        assert destination_problems(p.paths.duckdb, p.run_key, sb.snapshot(), baseline) == []


def test_repair_of_an_unknown_run_is_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("FLITSTACK_DATA_DIR", str(tmp_path))
    assert cli_main(["repair", "full-nothing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no migration data at") and "Traceback" not in err and err.count("\n") == 1
