"""A delta run's read-back lists only what changed since it began writing (on Pipedrive's clock), so
its cost grows with the delta and not with the account, and it still finds a record it holds twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core import duck
from flitstack_dagster.defs.resources import build_resources
from flitstack_dagster.defs.verification import verify_migration_run
from flitstack_dagster.loading.readback import WINDOW_MARGIN, run_window, scan_entity
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster_tests.kit import migrated_through_dagster
from flitstack_dagster_tests.reliability.kit import read_csv

pytestmark = pytest.mark.slow


def _copy_of(client, pid: int) -> int:
    """Another writer creates the deal again, Novo Source ID included."""
    deal = next(iter(client.list_deals(ids=[pid])))
    return client.create_deal({"title": deal.title, "custom_fields": deal.custom_fields}).id


def _duplicates(paths, run_key: str) -> dict[str, bool]:
    with duck.connect(paths.duckdb, read_only=True) as con:
        return {sid: in_run for sid, in_run in con.execute(
            "SELECT source_value, in_run FROM verification.duplicates WHERE run_key = ?", [run_key]).fetchall()}


def _verify(m, run_key: str, **config) -> dg.AssetCheckEvaluation:
    result = dg.materialize([verify_migration_run], partition_key=run_key, instance=m.instance,
                            resources={**build_resources(m.paths.root), "pipedrive": m.pipedrive}, raise_on_error=False,
                            run_config={"ops": {"verify_migration_run": {"config": config}}} if config else None)
    shown = next(e.materialization.metadata["duplicates_looked_for_in"].value
                 for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("verified_records"))
    assert shown.startswith("the whole account" if config.get("whole_account") else "records changed since"), shown
    return {c.check_name: c for c in result.get_asset_check_evaluations()}["every_record_once"]


def test_a_delta_reads_back_its_own_window_and_still_finds_a_record_it_holds_twice(tmp_path):
    bundle, delta_bundle = tmp_path / "bundle", tmp_path / "delta"
    assert cli_main(["generate", "--work-orders", "8", "--seed", "7", "--mess", "0", "--out", str(bundle)]) == 0
    assert cli_main(["generate", "--delta-from", str(bundle), "--seed", "12", "--out", str(delta_bundle),
                     "--no-mess-log"]) == 0
    _, delta_wos, _ = read_csv(delta_bundle, "work_orders.csv")
    changed = {f"work_order:{r['WO Number']}" for r in delta_wos}
    with migrated_through_dagster(bundle, tmp_path / "data") as m:
        assert m.second.success
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            untouched, old_pid = next((s, p) for s, p in con.execute(
                "SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = 'deal' ORDER BY source_id").fetchall()
                if s not in changed)
        with m.pipedrive.client() as client:
            _copy_of(client, old_pid)  # a duplicate from before the delta, of a work order it does not touch
        m.sandbox.advance_clock(86_400)  # the delta comes a day later, on the sandbox's clock only: ours is a day behind
        with duck.connect(m.paths.duckdb) as con:
            delta = add_run(con, delta_bundle, "delta", m.paths.work).run_key
        m.instance.add_dynamic_partitions("migration_runs", [delta])
        result = m.job.execute_in_process(partition_key=delta, instance=m.instance, raise_on_error=False)
        assert result.success, [e.message for e in result.all_node_events if e.is_failure]
        assert untouched not in _duplicates(m.paths, delta)  # listed: only what the delta changed

        assert _verify(m, delta, whole_account=True).passed  # not this run's record, so not its failure ...
        assert _duplicates(m.paths, delta).get(untouched) is False  # ... but the whole account shows it

        with duck.connect(m.paths.duckdb, read_only=True) as con:
            created, new_pid = con.execute(
                "SELECT source_id, pipedrive_id FROM meta.audit_log WHERE run_key = ? AND entity = 'deal' "
                "AND operation = 'create' ORDER BY source_id LIMIT 1", [delta]).fetchone()
        with m.pipedrive.client() as client:
            copy = _copy_of(client, new_pid)
        once = _verify(m, delta)
        assert not once.passed and f"deal {created} (ids {new_pid}, {copy})" in once.description


def test_the_window_starts_at_the_runs_first_write_on_pipedrives_clock():
    with SandboxServer(state_path=None, port=0) as sb, \
            PipedriveClient(sb.base_url, sb.api_token) as client:
        before = [client.create_deal({"title": f"yesterday {i}"}).id for i in range(3)]
        sb.advance_clock(86_400)  # a whole day (the next midnight may be seconds away)
        ours = datetime.now(UTC)  # our clock: a day behind the sandbox's
        written = {client.create_deal({"title": f"today {i}"}).id: ours for i in range(2)}
        since = run_window(client, {"deal": written})
        assert since is not None
        theirs = {d.id: datetime.fromisoformat(d.update_time.replace("Z", "+00:00"))
                  for d in client.list_deals(ids=[*before, *written])}
        assert max(theirs[i] for i in before) < since <= min(theirs[i] for i in written) - WINDOW_MARGIN + timedelta(seconds=2)
        listed = scan_entity(client, "deal", None, updated_since=since, also=[before[0]])
        assert set(listed.records) == {*written, before[0]}  # the window, plus the one asked for by id
        assert run_window(client, {"deal": {}}) is None  # nothing written: the window can't be told
