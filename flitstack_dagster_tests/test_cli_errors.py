"""The `flitstack` CLI in a real subprocess: bad settings, a refused token, an unreachable host, a spent
budget, Ctrl-C and a bug each end in one or two lines and a non-zero exit, never a traceback, and
never with the API token in the output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.kit import free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
STOPPED = "stopped; run the same command again to resume"


def flitstack(*args: str, env: dict[str, str], timeout: float = 120, pythonpath: Path | None = None,
              code: str | None = None) -> subprocess.CompletedProcess:
    """`python -m flitstack_dagster.cli ARGS` (or `python -c CODE`) with only the given settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "FLITSTACK_"))}
    if pythonpath is not None:
        base["PYTHONPATH"] = os.pathsep.join([str(pythonpath), base.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "flitstack_dagster.cli"]
    return subprocess.run([*cmd, *args], cwd=REPO, env={**base, **env}, capture_output=True, text=True,
                          timeout=timeout)


def assert_human(proc: subprocess.CompletedProcess, expected: str, code: int | None = None) -> None:
    text = proc.stdout + proc.stderr
    assert expected in text, text
    assert "Traceback" not in text and TOKEN not in text
    assert proc.returncode != 0 if code is None else proc.returncode == code, (proc.returncode, text)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data folder with a DuckDB file (so `rollback` gets as far as reading the settings)."""
    data = tmp_path / "data"
    data.mkdir()
    duck.connect(data / "flitstack.duckdb").close()
    return data


BAD_SETTINGS = [
    ({"PIPEDRIVE_BASE_URL": "yourcompany.pipedrive.com"},
     "PIPEDRIVE_BASE_URL must start with https:// (e.g. https://yourcompany.pipedrive.com)"),
    ({"PIPEDRIVE_SEATS": "five"}, "PIPEDRIVE_SEATS must be a whole number of seats, e.g. 5 (got 'five')"),
    ({"PIPEDRIVE_PLAN": "gold"}, "PIPEDRIVE_PLAN must be one of lite, growth, premium, ultimate (or an older plan's "
                                 "name: essential, advanced, power, enterprise, professional), e.g. growth (got 'gold')"),
    ({"PIPEDRIVE_DAILY_RESERVE": "half"}, "PIPEDRIVE_DAILY_RESERVE must be a fraction of the daily token budget"),
    ({"PIPEDRIVE_API_TOKEN": ""}, "PIPEDRIVE_API_TOKEN is not set: set it to the API token alone"),
    ({"PIPEDRIVE_BASE_URL": f"https://acme.pipedrive.com/?api_token={TOKEN}"},
     "PIPEDRIVE_BASE_URL must be the company URL alone"),
    ({"PIPEDRIVE_BASE_URL": f"https://me:{TOKEN}@acme.pipedrive.com"}, "PIPEDRIVE_BASE_URL must be the company URL alone"),
]


@pytest.mark.parametrize("command", [["doctor"], ["rollback", "full-x"]])
@pytest.mark.parametrize("settings,message", BAD_SETTINGS, ids=[next(iter(s)) + "-" + str(i) for i, (s, _) in
                                                                enumerate(BAD_SETTINGS)])
def test_bad_settings_are_named_in_one_line(command, settings, message, data_dir):
    env = {"FLITSTACK_DATA_DIR": str(data_dir), "PIPEDRIVE_BASE_URL": "https://acme.pipedrive.com",
           "PIPEDRIVE_API_TOKEN": TOKEN, **settings}
    proc = flitstack(*command, env=env)
    assert_human(proc, message)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if message[:30] in ln]
    assert len(lines) == 1, proc.stdout + proc.stderr


def test_a_data_dir_that_is_a_file(tmp_path):
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    proc = flitstack("runs", "list", env={"FLITSTACK_DATA_DIR": str(afile)})
    assert_human(proc, f"error: FLITSTACK_DATA_DIR must be a folder path, e.g. /srv/flitstack/data (got '{afile}', "
                       "which is a file)", code=2)
    assert len(proc.stderr.splitlines()) == 1


# A subcommand that talks to Pipedrive the way every command does (PipedriveClient.from_env), or fails
# like a bug would: what the CLI prints is the same for any command.
PROBE = textwrap.dedent('''
    import os

    def configure(p):
        p.add_argument("what", choices=["me", "bug"])

    def run(args):
        if args.what == "bug":
            raise RuntimeError("bad state near " + os.environ["PIPEDRIVE_API_TOKEN"])
        from flitstack_dagster.pipedrive.client import PipedriveClient
        with PipedriveClient.from_env(max_retries=0) as client:
            client.me()
        return 0
''')
RUN_PROBE = ("import sys; from flitstack_dagster import cli; cli.SUBCOMMANDS['probe'] = ('probe_command', 'test'); "
             "sys.exit(cli.main(sys.argv[1:]))")


@pytest.fixture
def probe(tmp_path) -> Path:
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "probe_command.py").write_text(PROBE)
    return folder


@pytest.fixture
def sb(tmp_path):
    with SandboxServer(state_path=tmp_path / "sb" / "state.json", plan="lite", seats=1, api_token=TOKEN) as server:
        yield server


def run_probe(what: str, probe: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return flitstack("probe", what, env=env, pythonpath=probe, code=RUN_PROBE)


def test_a_refused_token_names_the_host(probe, sb):
    proc = run_probe("me", probe, {"PIPEDRIVE_BASE_URL": sb.base_url, "PIPEDRIVE_API_TOKEN": "not-" + TOKEN})
    host = sb.base_url.split("://")[1]
    assert_human(proc, f"error: Pipedrive at {host} refused the API token: fix PIPEDRIVE_API_TOKEN", code=2)
    assert "not-" + TOKEN not in proc.stdout + proc.stderr and len(proc.stderr.splitlines()) == 1


def test_an_unreachable_host_says_what_to_check(probe):
    port = free_port()
    proc = run_probe("me", probe, {"PIPEDRIVE_BASE_URL": f"http://127.0.0.1:{port}", "PIPEDRIVE_API_TOKEN": TOKEN})
    assert_human(proc, f"error: could not reach 127.0.0.1:{port}: check PIPEDRIVE_BASE_URL and your network", code=2)
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


def test_a_spent_budget_says_when_it_resets(probe, sb):
    sb.set_tokens_spent(30_000)  # lite, 1 seat: the whole day
    proc = run_probe("me", probe, {"PIPEDRIVE_BASE_URL": sb.base_url, "PIPEDRIVE_API_TOKEN": TOKEN,
                                   "PIPEDRIVE_PLAN": "lite", "PIPEDRIVE_SEATS": "1"})
    assert_human(proc, "error: Pipedrive refused the request: the company's daily API token budget is spent", code=2)
    assert "The budget resets at" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_bug_is_one_line_with_the_token_scrubbed_unless_debugging(probe):
    env = {"PIPEDRIVE_API_TOKEN": TOKEN}
    proc = run_probe("bug", probe, env)
    assert_human(proc, "unexpected error: RuntimeError: bad state near *** (set FLITSTACK_DEBUG=1 for details)", code=1)
    assert len(proc.stderr.splitlines()) == 1
    debug = run_probe("bug", probe, {**env, "FLITSTACK_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "probe_command.py" in debug.stderr
    assert "RuntimeError: bad state near ***" in debug.stderr and TOKEN not in debug.stderr


def test_ctrl_c_stops_with_130_and_says_how_to_resume(tmp_path):
    """SIGINT to a real long-running command (a 200,000-work-order export takes minutes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "FLITSTACK_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flitstack_dagster.cli", "generate", "--work-orders", "200000",
         "--out", str(tmp_path / "big")],
        cwd=REPO, env={**env, "FLITSTACK_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as in a terminal: a test run started as a background job would hand SIGINT down ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stdout.readline()  # the command is running its work
        assert "generating" in first, first
        time.sleep(1.0)
        assert proc.poll() is None, "the export finished before it could be interrupted"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)  # SIGINT is handled once a long native call returns
    assert proc.returncode == 130, (out, err)
    assert err.strip() == STOPPED and "Traceback" not in out + err
