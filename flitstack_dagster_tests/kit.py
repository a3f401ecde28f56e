"""Helpers several test folders share: re-signing an edited bundle and starting the sandbox CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def resign(bundle: Path, rows: dict[str, int] | None = None, **manifest_changes: Any) -> None:
    """Manifest sizes and SHA-256 match the edited files again (and row counts where given)."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(manifest_changes)
    for entry in manifest["files"]:
        p = bundle / entry["name"]
        if p.is_file():
            body = p.read_bytes()
            entry["bytes"], entry["sha256"] = len(body), hashlib.sha256(body).hexdigest()
        if rows and entry["name"] in rows:
            entry["rows"] = rows[entry["name"]]
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def start_sandbox_cli(state: Path, *args: str, env: dict[str, str] | None = None,
                      **popen: Any) -> tuple[subprocess.Popen, str, str]:
    """`flitstack sandbox --port 0 --state <state> <args>` as a child process, once it serves:
    (the process, everything it printed so far, its URL). The caller stops it."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0",
                             "--state", str(state), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env, **popen)
    lines, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C" in line or not line:
            break
    text = "".join(lines)
    url = next((w for w in text.split() if w.startswith("http://127.0.0.1:")), "")
    return proc, text, url
