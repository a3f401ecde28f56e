"""The headless path: `flitstack migrate` and `flitstack summary` in a real subprocess, against
the local sandbox — the outcome in a few lines, no Dagster log flood, no traceback, never the token."""

from __future__ import annotations

import re

import pytest

from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.test_cli_errors import TOKEN, flitstack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    root = tmp_path_factory.mktemp("headless")
    env = {"FLITSTACK_DATA_DIR": str(root / "data")}
    bundle = root / "bundle"
    made = flitstack("generate", "--work-orders", "30", "--seed", "3", "--out", str(bundle), env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    added = flitstack("runs", "add", "--bundle", str(bundle), "--mode", "sample", env=env, timeout=300)
    assert added.returncode == 0, added.stderr
    run_key = re.search(r"registered (\S+)", added.stdout).group(1)
    with SandboxServer(state_path=root / "sb" / "state.json", plan="premium", seats=5, api_token=TOKEN) as sb:
        yield run_key, {**env, "PIPEDRIVE_BASE_URL": sb.base_url, "PIPEDRIVE_API_TOKEN": TOKEN}


def test_migrate_stops_at_approval_and_says_so_in_a_few_lines(registered):
    run_key, env = registered
    proc = flitstack("migrate", run_key, env=env, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 3, text
    assert f"{run_key}: Dagster run " in text and "stopped at a blocking check" in text
    assert re.search(r"check \S+\.mapping_approved failed: ", text), text
    assert f"Migration run {run_key}" in text  # the summary follows the outcome
    assert " - DEBUG - " not in text and "Traceback" not in text and TOKEN not in text
    assert len(text.splitlines()) < 80, text


def test_summary_of_a_registered_run_and_of_an_unknown_one(registered):
    run_key, env = registered
    proc = flitstack("summary", run_key, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"Migration run {run_key}" in proc.stdout and "work_orders.csv" in proc.stdout
    unknown = flitstack("summary", "full-nope", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: migration run 'full-nope' is not registered"), unknown.stderr
    assert "Traceback" not in unknown.stderr
