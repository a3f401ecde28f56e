"""`flitstack sandbox` and PIPEDRIVE_API_TOKEN: a new account takes it, a saved account keeps its own
token unless `--token-from-env` says otherwise, and neither token is ever printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flitstack_dagster_tests.kit import start_sandbox_cli

REPO = Path(__file__).resolve().parents[2]
FIRST, SECOND = "1a" * 20, "2b" * 20


def run_sandbox(state: Path, env_token: str | None, *extra: str) -> tuple[str, str]:
    """Start the CLI, wait for it to serve, check the token file's token is accepted, stop it; return
    (everything it printed, the token file's token)."""
    env = {k: v for k, v in os.environ.items() if k != "PIPEDRIVE_API_TOKEN"}
    env.update({"PIPEDRIVE_API_TOKEN": env_token} if env_token else {})
    proc, text, url = start_sandbox_cli(state, *extra, env=env)
    try:
        assert url, text
        token = state.with_name("api_token").read_text().strip()
        assert httpx.get(url + "/v1/users/me", headers={"x-api-token": token}).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    printed = text + out + err
    assert FIRST not in printed and SECOND not in printed
    return printed, token


@pytest.mark.slow
def test_a_saved_account_keeps_its_token_and_says_how_to_use_another(tmp_path) -> None:
    state = tmp_path / "sb" / "state.sqlite"
    printed, token = run_sandbox(state, FIRST)
    assert token == FIRST and "warning" not in printed  # a new account takes the environment's token

    printed, token = run_sandbox(state, SECOND)
    assert token == FIRST
    warnings = [ln for ln in printed.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "--token-from-env" in warnings[0] and "PIPEDRIVE_API_TOKEN" in warnings[0]

    printed, token = run_sandbox(state, SECOND, "--token-from-env")
    assert token == SECOND and "warning" not in printed

    printed, token = run_sandbox(state, None)
    assert token == SECOND and "warning" not in printed


def test_token_from_env_without_the_variable_is_a_user_error(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PIPEDRIVE_API_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0", "--state",
                           str(tmp_path / "state.sqlite"), "--token-from-env"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --token-from-env needs PIPEDRIVE_API_TOKEN")
    assert "Traceback" not in proc.stderr
