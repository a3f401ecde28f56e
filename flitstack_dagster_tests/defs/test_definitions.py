"""The code location loads the way `dagster dev` loads it, and every asset reads well in the UI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.staging.models import discover_models

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_workspace_loads_like_dagster_dev(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "FLITSTACK_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Validation successful for code location flitstack_dagster" in out
    # no warnings of our own making: any warning that points into our package fails the test
    ours = [line for line in out.splitlines() if "warning" in line.lower() and "flitstack_dagster" in line
            and "Validation successful" not in line]
    assert not ours, "\n".join(ours)


def test_every_asset_and_check_is_described_and_grouped(tmp_path):
    defs = build_definitions(tmp_path)
    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys(), "no assets"
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.group_name and node.group_name != "default", f"{key.to_user_string()} has no group"
        assert node.kinds, f"{key.to_user_string()} has no kinds"
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        assert spec.description, f"check {check_key.name} has no description"


def test_staging_graph_comes_from_sql_refs(tmp_path):
    graph = build_definitions(tmp_path).resolve_asset_graph()
    wo = graph.get(dg.AssetKey("stg_work_orders"))
    assert dg.AssetKey("raw_work_orders") in wo.parent_keys
    sql = (REPO / "dbt_like_sql" / "staging" / "stg_work_orders.sql").read_text().replace('"', "'")
    model = next(m for m in discover_models() if m.name == "stg_work_orders")
    parents = {p.to_user_string() for p in wo.parent_keys if p.to_user_string().startswith("stg_")}
    assert parents == set(model.refs) and parents
    for name in parents:  # each written in the model: a ref() or a link() to one of its columns
        assert f"ref('{name}')" in sql or f"'{name}." in sql, f"{name} is a dependency the SQL does not name"
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= {"novo_export", "raw_work_orders", "stg_work_orders", "novo_quarantine"}
