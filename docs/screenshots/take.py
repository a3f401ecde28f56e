"""Retake the README screenshots from a real demo run, so they show what the product really does.

Usage (after `make demo`):  .venv/bin/python docs/screenshots/take.py data

Starts dagster-webserver on the demo's Dagster instance, drives headless Chromium (Debian's
`chromium`) over the DevTools protocol, and writes asset_graph.png, check_gate.png and
field_diff.png next to this script. Not a test: it needs Chromium and a finished demo.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import websockets

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WIDTH, HEIGHT = 1440, 900
# 63 assets don't fit one screen: groups stay collapsed (their flow order shows), and the groups
# that load and verify are opened to show their assets.
EXPANDED_GROUPS = os.environ.get("SHOT_GROUPS", "pipedrive_load,verification").split(",")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float) -> None:
    """Dagster loads the code location before it answers; give it time, but not forever."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"take.py: {url} did not answer within {timeout:.0f}s")


def gated_run(dagster_home: Path) -> tuple[str, str]:
    """The run whose blocking `mapping_approved` check failed: the load it stopped is the story."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = entry.dagster_event.event_specific_data
                if evaluation.check_name == "mapping_approved" and not evaluation.passed:
                    return run.run_id, run.tags.get("dagster/partition", "")
    raise SystemExit(f"take.py: no run in {dagster_home} stopped at the mapping_approved check; run `make demo` first")


def sample_diff_report(data_dir: Path) -> Path:
    reports = sorted((data_dir / "reports").glob("sample-*/field_diff.html"))
    if not reports:
        raise SystemExit(f"take.py: no sample run's field_diff.html under {data_dir / 'reports'}")
    return reports[-1]


class Page:
    """One Chromium tab over the DevTools protocol: navigate, wait for a condition, screenshot."""

    def __init__(self, ws) -> None:
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def shoot(self, url: str, ready_js: str, out: Path, settle: float = 2.0, expand_groups: str = "") -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_until(url, ready_js)
        if expand_groups:
            await self.press_alt_e()  # the lineage page's "expand all groups" shortcut
            await self.wait_until(url, expand_groups)
        await asyncio.sleep(settle)  # layout animations and lazy panels finish
        shot = await self.call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")

    async def press_alt_e(self) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, modifiers=1, key="e", code="KeyE",
                            windowsVirtualKeyCode=69)

    async def wait_until(self, url: str, ready_js: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = await self.call("Runtime.evaluate", expression=f"Boolean({ready_js})", returnByValue=True)
            if result["result"].get("value"):
                break
            if time.monotonic() > deadline:
                seen = await self.call("Runtime.evaluate", returnByValue=True,
                                       expression="location.href + '\\n' + (document.body ? document.body.innerText : '')")
                raise SystemExit(f"take.py: {url} never became ready ({ready_js}); page shows:\n"
                                 f"{seen['result'].get('value', '')[:1500]}")
            await asyncio.sleep(0.5)


def text_has(*words: str) -> str:
    return " && ".join(f"document.body && document.body.innerText.includes({json.dumps(w)})" for w in words)


async def take_all(chromium_port: int, web: str, run_id: str, diff: Path, out_dir: Path) -> None:
    async with httpx.AsyncClient() as client:
        targets = (await client.get(f"http://127.0.0.1:{chromium_port}/json/list", timeout=5)).json()
    page_target = next(t for t in targets if t["type"] == "page")
    async with websockets.connect(page_target["webSocketDebuggerUrl"], max_size=None) as ws:
        page = Page(ws)
        await page.call("Page.enable")
        await page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
        # Mark Dagster's "join the community" pop-up as seen in this throwaway profile only (clicking
        # Skip would also record it on the demo's instance).
        await page.call("Page.addScriptToEvaluateOnNewDocument",
                        source="localStorage.setItem('communityNux', JSON.stringify('1'));")
        expanded = ",".join(f"global@global:{group}" for group in EXPANDED_GROUPS)
        await page.shoot(
            f"{web}/asset-groups?expanded={quote(expanded)}", text_has("Global asset lineage", "novo_landing"),
            out_dir / "asset_graph.png", settle=6)
        # The gating step's own events: the failed check, its problems, and the step that stopped the run.
        await page.shoot(f"{web}/runs/{run_id}?logs={quote('step:proposed_mapping')}",
                         text_has("failed for materialization of", "DagsterAssetCheckFailedError"),
                         out_dir / "check_gate.png", settle=4)
        await page.shoot(diff.as_uri(), "document.readyState === 'complete'", out_dir / "field_diff.png", settle=1)


def chromium_devtools_port(profile: Path, timeout: float = 30) -> int:
    """With --remote-debugging-port=0 Chromium picks a port and writes it to DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.2)
    raise SystemExit("take.py: chromium did not open its DevTools port")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default="data", help="the demo's data folder (default: ./data)")
    parser.add_argument("--out", default=str(HERE), help="where the PNGs go (default: docs/screenshots)")
    args = parser.parse_args(argv)
    data_dir, out_dir = Path(args.data_dir).resolve(), Path(args.out).resolve()
    dagster_home = data_dir / "dagster_home"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("take.py: needs Debian's chromium package (apt-get install chromium)")
    run_id, partition = gated_run(dagster_home)
    diff = sample_diff_report(data_dir)
    print(f"gated run {run_id} ({partition}); diff report {diff}")

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "FLITSTACK_DATA_DIR": str(data_dir)}
    webserver_bin = Path(sys.executable).with_name("dagster-webserver")
    webserver = subprocess.Popen(
        [str(webserver_bin), "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = Path(tempfile.mkdtemp(prefix="flitstack-shots-"))
    browser = None
    try:
        web = f"http://127.0.0.1:{port}"
        wait_for_http(f"{web}/server_info", timeout=180)
        browser = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(take_all(chromium_devtools_port(profile), web, run_id, diff, out_dir))
    finally:
        for process in (browser, webserver):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
