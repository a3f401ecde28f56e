"""The project is a `dg` project: `dg check defs` and `dg list defs` work from the project root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flitstack_dagster.definitions import build_definitions

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")


def _dg(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # no activated environment: dg finds the project's .venv by itself
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(DAGSTER_HOME=str(tmp_path), FLITSTACK_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_dg_check_defs_passes(tmp_path):
    proc = _dg(tmp_path, "check", "defs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout


@pytest.mark.slow
def test_dg_list_defs_lists_the_code_locations_assets_jobs_and_sensors(tmp_path):
    proc = _dg(tmp_path, "list", "defs", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = json.loads(proc.stdout)
    defs = build_definitions(tmp_path / "data")
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {a["asset_key"] for a in listed["assets"]} == keys
    assert {"novo_export", "proposed_mapping", "verified_records"} <= keys
    assert {j["name"] for j in listed["jobs"]} == {"migrate", "approve_mapping", "register_migration_run", "rollback",
                                                 "repair"}
    assert {s["name"] for s in listed["sensors"]} == {"novo_export_sensor", "budget_reset_sensor"}
