"""`flitstack demo` as a person sees it, in a real subprocess: Ctrl-C says how to resume; run again, it
resumes and prints at most 60 lines — stage lines, the gate it stops at, the summary and where the
reports are — with no traceback and no Dagster DEBUG line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from flitstack_dagster.cli.demo import RESUME
from flitstack_dagster.cli.migrate import resume_sentence
from flitstack_dagster_tests.test_cli_errors import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

MAX_LINES = 60


def _env(data) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEDRIVE_", "FLITSTACK_"))}
    return {**base, "FLITSTACK_DATA_DIR": str(data)}


def _demo(data, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flitstack_dagster.cli", "demo", "--work-orders", "20", *args], cwd=REPO,
        env=_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal


def test_ctrl_c_then_the_demo_again_resumes_and_stays_short(tmp_path):
    data = tmp_path / "data"
    first = _demo(data)
    try:
        for line in first.stdout:
            if line.startswith("== 3."):
                break
        time.sleep(5)  # inside the `migrate` job
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    assert err.strip() == resume_sentence(RESUME) and "Traceback" not in err

    second = _demo(data)
    out, err = second.communicate(timeout=1800)
    text = out + err
    assert second.returncode == 0, text
    lines = text.splitlines()
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{text}"
    assert "Traceback" not in text and " - DEBUG - " not in text and "DEBUG" not in text
    assert [line[:5] for line in lines if line.startswith("== ")] == [f"== {n}." for n in range(1, 8)], text
    assert any(line.startswith("== 4. Stopped at the blocking `mapping_approved` check") for line in lines), text
    assert re.search(r"sample-\S+: Dagster run \S+: success", text) and re.search(r"full-\S+: Dagster run \S+: success", text)
    assert "every row accounted for" in text and "Read-back verification: clean" in text
    assert f"Reports in {data / 'reports'}/full-" in text and "field_diff.html" in text
    assert lines[-1].startswith("See it in the UI: DAGSTER_HOME=")
