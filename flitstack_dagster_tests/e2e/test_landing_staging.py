"""Landing + staging through Dagster (real materialize, real DuckDB file) on a generated messy bundle."""

from __future__ import annotations

import json
from collections import defaultdict

import dagster as dg
import duckdb
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.defs import landing, staging
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.resources import build_resources
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.staging.quarantine import accounting

pytestmark = pytest.mark.slow

# injected problem -> the quarantine reason codes that account for it
EXPECTED = {
    "impossible_date": {"bad_date", "bad_datetime"},
    "negative_number": {"negative_number"},
    "unknown_status": {"unknown_value"},
    "unknown_priority": {"unknown_value"},
    "unknown_choice_value": {"unknown_value"},
    "invalid_email": {"invalid_email"},
    "duplicate_id": {"duplicate_id"},
    "orphan_reference": {"orphan_reference"},
}


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", "600", "--seed", "11", "--mess", "0.03", "--out", str(bundle)]) == 0
    paths = Paths(root / "data").ensure()
    with duckdb.connect(str(paths.duckdb)) as con:
        run = add_run(con, bundle, "full", paths.work)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(migration_runs.name, [run.run_key])
    result = dg.materialize(
        [landing.land_novo_export, *staging.staging_assets, staging.novo_quarantine],
        partition_key=run.run_key, instance=instance, resources=build_resources(paths.root),
    )
    mess = json.loads((root / "bundle.mess.json").read_text())
    return result, paths, run.run_key, mess


def test_materialization_succeeds_and_checks_pass(landed):
    result, *_ = landed
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {"manifest_matches", "required_headers_present", "udf_columns_declared",
                                               "rows_accounted_for"}
    assert all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks if not c.passed]


def test_every_file_is_accounted_for(landed):
    _, paths, run_key, _ = landed
    with duckdb.connect(str(paths.duckdb), read_only=True) as con:
        accounts = accounting(con, run_key)
    assert len(accounts) >= 16
    for a in accounts:
        assert a.raw_rows == a.staged_rows + a.quarantined_rows, a


def test_injected_problems_appear_in_quarantine_with_their_reason(landed):
    _, paths, run_key, mess = landed
    with duckdb.connect(str(paths.duckdb), read_only=True) as con:
        q = con.execute(
            'SELECT file, row_number, reason_code, message FROM staging.quarantine WHERE _run_key = ?', [run_key]
        ).fetchall()
    at = defaultdict(set)
    for file, row, code, message in q:
        at[(file, row)].add(code)
        assert message and len(message) > 10, (file, row, code)
    for problem, codes in EXPECTED.items():
        injected = [m for m in mess if m["problem"] == problem]
        assert injected, f"the generator injected no {problem}"
        found = [m for m in injected if at[(m["file"], m["row_number"])] & codes]
        assert found, f"none of the {len(injected)} injected {problem} problems is quarantined as {codes}"


def test_documented_repairs_keep_the_record(landed):
    _, paths, run_key, mess = landed
    padded = [m for m in mess if m["problem"] == "padded_email"]
    assert padded, "the generator injected no padded email"
    table = {"contacts.csv": ("stg_contacts", "contact_id"), "accounts.csv": ("stg_accounts", "account_id")}
    with duckdb.connect(str(paths.duckdb), read_only=True) as con:
        for m in padded:
            email = con.execute(
                f"SELECT email FROM staging.{table[m['file']][0]} WHERE _run_key = ? AND {table[m['file']][1]} = ?",
                [run_key, m["id"]],
            ).fetchone()
            assert email is not None, m
            assert email[0] == m["value"].strip().lower()
        ids = con.execute("SELECT wo_number FROM staging.stg_work_orders WHERE _run_key = ?", [run_key]).fetchall()
    assert all(isinstance(i[0], str) for i in ids)
