"""End to end through Dagster into a real sandbox: a small generated messy bundle is migrated, then
verification reads it all back clean; one field corrupted through the sandbox's admin channel shows
up as exactly that field of that record, and the reconciliation check fails."""

from __future__ import annotations

import dagster as dg
import httpx
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.resources import build_resources
from flitstack_dagster.defs.verification import verify_migration_run
from flitstack_dagster_tests.kit import migrated_through_dagster

from .test_report_reconcile import dump_dom

pytestmark = pytest.mark.slow


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_verify")
    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", "8", "--seed", "7", "--mess", "0.02", "--out", str(bundle)]) == 0
    with migrated_through_dagster(bundle, root / "data") as m:
        assert not _checks(m.first)["mapping_approved"].passed  # waits for the approval, as it must
        yield m.sandbox, m.paths, m.run_key, m.second, m.pipedrive, m.instance


def test_full_run_verifies_with_zero_unexplained_mismatches(migrated):
    _sb, paths, run_key, result, *_ = migrated
    checks = _checks(result)
    assert checks["reconciliation"].passed, checks["reconciliation"].description
    assert checks["no_unexplained_mismatches"].passed, checks["no_unexplained_mismatches"].description
    assert checks["every_record_once"].passed, checks["every_record_once"].description
    with duck.connect(paths.duckdb) as con:
        fields, bad, records = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE outcome <> 'match'), count(DISTINCT source_id) "
            "FROM verification.field_diff WHERE run_key = ?", [run_key]).fetchall()[0]
        entities = {r[0] for r in con.execute("SELECT DISTINCT entity FROM verification.records WHERE run_key = ?",
                                              [run_key]).fetchall()}
    assert bad == 0 and fields > 5 * records > 0
    assert {"organization", "person", "deal", "activity", "note"} <= entities
    report = paths.reports / run_key
    for name in ("field_diff.html", "audit_log.csv", "audit_log.parquet", "rebuild_reference.md"):
        assert (report / name).exists(), name


def test_one_corrupted_field_is_exactly_what_the_diff_shows(migrated):
    sb, paths, run_key, _, pipedrive, instance = migrated
    with duck.connect(paths.duckdb) as con:
        sid, pid = con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = 'deal' "
                               "ORDER BY source_id LIMIT 1").fetchall()[0]
    resp = httpx.patch(f"{sb.base_url}/_sandbox/records/deals/{pid}", headers={"x-api-token": sb.api_token},
                       json={"title": "Corrupted in Pipedrive"})
    assert resp.status_code == 200
    result = dg.materialize([verify_migration_run], partition_key=run_key, instance=instance,
                            resources={**build_resources(paths.root), "pipedrive": pipedrive}, raise_on_error=False)
    checks = _checks(result)
    assert not checks["reconciliation"].passed and not checks["no_unexplained_mismatches"].passed
    with duck.connect(paths.duckdb) as con:
        bad = con.execute("SELECT entity, source_id, field, actual, outcome FROM verification.field_diff "
                          "WHERE run_key = ? AND outcome <> 'match'", [run_key]).fetchall()
        expected_title = con.execute("SELECT expected FROM verification.field_diff WHERE run_key = ? AND source_id = ? "
                                     "AND field = 'title'", [run_key, sid]).fetchall()[0][0]
    assert bad == [("deal", sid, "title", "Corrupted in Pipedrive", "mismatch")]
    dom = dump_dom(paths.reports / run_key / "field_diff.html")
    row = dom.index(sid)
    assert expected_title.split(" · ")[0] in dom[row:row + 600] and "Corrupted in Pipedrive" in dom[row:row + 600]


def test_a_duplicated_note_fails_the_blocking_check_by_name_and_the_repair_job_deletes_it(migrated):
    _sb, paths, run_key, _, pipedrive, instance = migrated
    with duck.connect(paths.duckdb) as con:
        sid, pid = con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = 'note' "
                               "ORDER BY source_id LIMIT 1").fetchall()[0]
    with pipedrive.client() as client:
        original = client.get_note(pid)
        copy = client.create_note({"content": original.content, "deal_id": original.deal_id,
                                   "org_id": original.org_id}).id  # another writer sends the same note again
    resources = {**build_resources(paths.root), "pipedrive": pipedrive}
    result = dg.materialize([verify_migration_run], partition_key=run_key, instance=instance, resources=resources,
                            raise_on_error=False)
    once = _checks(result)["every_record_once"]
    assert not once.passed and once.blocking
    assert f"note {sid} (ids {pid}, {copy})" in once.description and f"flitstack repair {run_key}" in once.description
    repair = build_definitions(paths.root, pipedrive=pipedrive).resolve_job_def("repair")
    fixed = repair.execute_in_process(partition_key=run_key, instance=instance,
                                      run_config={"ops": {"repair_id_map": {"config": {"delete_duplicates": True}}}})
    assert fixed.success
    with pipedrive.client() as client:
        notes = {n.id for n in client.list_notes()}
    assert pid in notes and copy not in notes  # the mapped one kept, the copy deleted
    again = dg.materialize([verify_migration_run], partition_key=run_key, instance=instance, resources=resources,
                           raise_on_error=False)
    assert _checks(again)["every_record_once"].passed
