"""The headless path: `flitstack migrate`, `status` and `summary` in a real subprocess, against a running
local sandbox — each message in a few lines, no Dagster log flood, no traceback, never the token. A
second generated bundle goes all the way into the sandbox with no Dagster command typed: migrate (it
stops at the mapping gate), approve with `flitstack mapping approve`, migrate again, summary."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flitstack_dagster.cli.migrate import resume_sentence
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.loading.ledger import Ledger
from flitstack_dagster.mapping.demo_approval import demo_decision
from flitstack_dagster.mapping.review import blocking_values
from flitstack_dagster.mapping.store import proposed_path
from flitstack_dagster.mapping.yamlio import load_mapping
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.test_cli_errors import REPO, TOKEN, flitstack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _quiet(text: str) -> None:
    assert " - DEBUG - " not in text and "Traceback" not in text and TOKEN not in text, text


def _register(root, env, name: str, exported_at: str) -> str:
    bundle = root / name
    made = flitstack("generate", "--work-orders", "12", "--seed", "3", "--exported-at", exported_at,
                     "--out", str(bundle), env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    added = flitstack("runs", "add", "--bundle", str(bundle), "--mode", "sample", env=env, timeout=300)
    assert added.returncode == 0, added.stderr
    return re.search(r"registered (\S+)", added.stdout).group(1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("headless")
    env = {"FLITSTACK_DATA_DIR": str(root / "data"), "PIPEDRIVE_PLAN": "premium", "PIPEDRIVE_SEATS": "5"}
    with SandboxServer(state_path=root / "sb" / "state.json", plan="premium", seats=5, api_token=TOKEN) as sb:
        yield root, {**env, "PIPEDRIVE_BASE_URL": sb.base_url, "PIPEDRIVE_API_TOKEN": TOKEN}


@pytest.fixture(scope="module")
def registered(sandbox):
    root, env = sandbox
    return _register(root, env, "bundle", "2026-11-20T07:00:00Z"), env


@pytest.fixture(scope="module")
def second(sandbox):
    root, env = sandbox
    return _register(root, env, "second", "2026-11-27T07:00:00Z"), env


def test_migrate_stops_at_approval_and_says_so_in_a_few_lines(registered):
    run_key, env = registered
    proc = flitstack("migrate", run_key, env=env, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 3, text
    assert proc.stdout.startswith(f"materializing `migrate` for {run_key} (sample, ")
    assert f"{run_key}: Dagster run " in text and "stopped at a blocking check" in text
    assert re.search(r"check \S+\.mapping_approved failed: ", text), text
    assert f"Migration run {run_key}" in text  # the summary follows the outcome
    _quiet(text)
    assert len(text.splitlines()) < 60, text


def test_status_of_a_run_stopped_at_the_gate_says_what_blocks_and_what_to_do(registered):
    run_key, env = registered
    proc = flitstack("status", run_key, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{run_key}: stopped at a blocking check (Dagster run "), lines
    assert lines[1].startswith("  stage: mapping (last materialized "), lines
    assert lines[2].startswith("  records: not shaped yet"), lines
    assert lines[3].startswith("  tokens: ") and "in all by this run's loads and read-back" in lines[3]
    assert re.match(r"  ETA: \d+ days? of token budget for the whole bundle \(not shaped yet\) — about [\d,]+ tokens "
                    r"left \(record plan complete, proposed\) at 600,000 usable a day \(premium", lines[4]), lines
    (gate,) = [line for line in lines if line.startswith("  blocks: ")]
    assert re.match(r"  blocks: blocking check \S+\.mapping_approved: .+; decide the values it names and approve: "
                    r"`flitstack mapping approve` \(or the `approve_mapping` job\), then run "
                    rf"`flitstack migrate {run_key}`\.$", gate), gate
    _quiet(proc.stdout + proc.stderr)

    every = flitstack("status", env=env, timeout=300)
    assert every.returncode == 0, every.stderr
    (line,) = [x for x in every.stdout.splitlines() if x.startswith(run_key)]
    assert "stopped at a blocking check" in line and "blocked: blocking check" in line


def test_summary_of_a_registered_run_and_of_an_unknown_one(registered):
    run_key, env = registered
    proc = flitstack("summary", run_key, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"Migration run {run_key}" in proc.stdout and "work_orders.csv" in proc.stdout
    for command in ("summary", "status", "migrate"):
        unknown = flitstack(command, "full-nope", env=env)
        assert unknown.returncode == 2, (command, unknown.stderr)
        assert unknown.stderr.startswith("error: migration run 'full-nope' is not registered"), unknown.stderr
        assert len(unknown.stderr.strip().splitlines()) == 1
        _quiet(unknown.stdout + unknown.stderr)


def test_a_step_error_exits_1_and_status_names_the_step(second):
    run_key, env = second
    proc = flitstack("migrate", run_key, env={**env, "PIPEDRIVE_API_TOKEN": "f" * 40}, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert f"{run_key}: Dagster run " in text and ": FAILED" in text
    assert re.search(r"step error: \S+: ", text), text
    _quiet(text)
    status = flitstack("status", run_key, env=env, timeout=300)
    assert f"{run_key}: stopped by an error" in status.stdout, status.stdout
    assert re.search(rf"  blocks: step \S+: .+; then run `flitstack migrate {run_key}` once it is fixed\.",
                     status.stdout), status.stdout


def _approve_as_a_lead(run_key: str, env: dict[str, str]) -> None:
    """What a lead does after reading the gate: `flitstack mapping approve` with a decision per blocking value."""
    paths = Paths(Path(env["FLITSTACK_DATA_DIR"]))
    proposal = load_mapping(proposed_path(paths))
    args = ["mapping", "approve", "--by", "Dana Lead", "--proposal-hash", proposal.content_hash()]
    for row in blocking_values(proposal):
        o, _ = demo_decision(proposal, row)
        args += ["--confirm", o.field, o.source_value] if o.target is None else [
            "--override", o.field, o.source_value, o.target]
    approved = flitstack(*args, env=env, timeout=300)
    assert approved.returncode == 0, approved.stdout + approved.stderr


def test_a_second_bundle_migrates_into_the_running_sandbox_with_no_dagster_command(second):
    run_key, env = second
    gate = flitstack("migrate", run_key, env=env, timeout=600)
    assert gate.returncode == 3, gate.stdout + gate.stderr
    _approve_as_a_lead(run_key, env)

    proc = flitstack("migrate", run_key, env=env, timeout=900)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert f"{run_key}: Dagster run " in text and ": success" in text
    assert "Loaded into Pipedrive (this run)" in text and "Read-back verification: clean" in text
    _quiet(text)

    summary = flitstack("summary", run_key, env=env, timeout=300)
    assert summary.returncode == 0, summary.stderr
    assert "Read-back verification: clean" in summary.stdout and "Reports in " in summary.stdout
    ledger = Ledger.in_folder(Path(env["FLITSTACK_DATA_DIR"]))
    spent = ledger.tokens(run_key=run_key)
    assert spent > 0
    steps = {p.step: p for p in ledger.progress(run_key)}  # the load and the read-back both report progress
    assert {"loaded_deals", "verified_records"} <= set(steps), steps
    assert steps["verified_records"].done == steps["verified_records"].total > 0

    status = flitstack("status", run_key, env=env, timeout=300)
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"{run_key}: finished (Dagster run "), lines
    assert lines[1].startswith("  stage: verification (last materialized "), lines
    done, total = map(lambda s: int(s.replace(",", "")),
                      re.match(r"  records: ([\d,]+) of ([\d,]+) done \(100%\)", lines[2]).groups())
    assert done == total > 0
    assert f"{spent:,} in all" in lines[3], lines
    # the loads' spend against what the approved record plan's estimate expected for the records they did
    eta = re.fullmatch(r"  ETA: every shaped record is done; loads so far: tokens ([\d,]+) of ~([\d,]+) estimated "
                       r"\(([+-]\d+\.\d)% vs plan\)", lines[4])
    assert eta, lines
    loads = [p for p in steps.values() if p.step.startswith("loaded_")]
    assert int(eta.group(1).replace(",", "")) == sum(p.tokens for p in loads) > 0
    assert int(eta.group(2).replace(",", "")) > 0 and abs(float(eta.group(3))) < 100
    assert lines[5] == "  blocks: nothing"


def _dagster_runs(env: dict[str, str], run_key: str) -> list:
    """The partition's Dagster runs, newest first, read from the data folder's instance as the UI reads it."""
    import dagster as dg

    home = Path(env["FLITSTACK_DATA_DIR"]) / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": run_key})))


def test_ctrl_c_during_migrate_says_how_to_resume_and_exits_130(registered):
    run_key, env = registered
    _approve_as_a_lead(run_key, env)
    before = {r.run_id for r in _dagster_runs(env, run_key)}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "FLITSTACK_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flitstack_dagster.cli", "migrate", run_key], cwd=REPO, env={**base, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        assert proc.stdout.readline().startswith("materializing `migrate`")
        deadline = time.monotonic() + 300
        while not {r.run_id for r in _dagster_runs(env, run_key)} - before and time.monotonic() < deadline:
            time.sleep(0.1)  # signalled as soon as the Dagster run exists: a small run may end in seconds
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert err.strip() == resume_sentence(f"flitstack migrate {run_key}"), err
    _quiet(out + err)

    status = flitstack("status", run_key, env=env, timeout=300)
    assert status.stdout.startswith(f"{run_key}: stopped before the end"), status.stdout
    assert (f"  blocks: the last Dagster run stopped before the end (interrupted); run `flitstack migrate {run_key}` "
            "to resume.") in status.stdout

    again = flitstack("migrate", run_key, env=env, timeout=900)
    assert again.returncode in (0, 3), again.stdout + again.stderr  # resumed: finished, or a later gate
    assert "Traceback" not in again.stdout + again.stderr
