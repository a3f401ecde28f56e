"""The journey in a real browser: `dagster dev` on a sample run's data, driven through headless Chromium
(Debian's, through Playwright). The lead opens the asset graph, materializes the sample run from the UI,
sees the blocking `mapping_approved` check fail, follows its link to the `approve_mapping` launchpad,
signs the example config and launches it, then materializes the run again and sees the loads.

Each step is asserted on what the page shows and on the Dagster instance's records. With
SCREENSHOTS=<folder> it also writes the README's screenshots there (docs/screenshots for the README).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from flitstack_dagster.defs.approval import OP
from flitstack_dagster.defs.instance import dagster_home
from flitstack_dagster.mapping.store import approved_path
from flitstack_dagster.mapping.yamlio import load_mapping
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.ui.stage import CHROMIUM_FLAGS, ChromiumMissing, dagster_dev, install_chromium, \
    prepare_sample_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

LOCATION = "flitstack_dagster"
GROUPS = ["novo_landing", "novo_staging", "mapping", "pipedrive_shapes", "pipedrive_load", "verification"]
RUN_TIMEOUT = 900  # seconds for one `migrate` run on a busy 2-core machine
UI_TIMEOUT = 120_000  # milliseconds for a page or a panel to show
LEAD = "Dana Lead"
SHOTS = Path(os.environ["SCREENSHOTS"]).resolve() if os.environ.get("SCREENSHOTS") else None


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return install_chromium()
    except ChromiumMissing as e:
        reason = f"the browser test needs Debian's chromium, which could not be installed: {e}"
        print(f"\nSKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def stage(tmp_path_factory, chromium):
    paths, run_key = prepare_sample_run(tmp_path_factory.mktemp("ui_journey"))
    with SandboxServer(state_path=None, plan="ultimate", seats=5, port=0) as sb, \
            dagster_dev(paths, sb.base_url, sb.api_token) as (ui, _log), \
            dg.DagsterInstance.from_config(str(dagster_home(paths))) as instance:
        yield {"paths": paths, "run_key": run_key, "ui": ui, "instance": instance}


@pytest.fixture(scope="module")
def page(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        # Dagster's "join the community" pop-up, marked as seen in this throwaway profile only
        context.add_init_script("localStorage.setItem('communityNux', JSON.stringify('1'));")
        context.set_default_timeout(UI_TIMEOUT)
        yield context.new_page()
        browser.close()


# -- what the lead does in the UI ------------------------------------------------------------------


def materialize_partition(page, ui: str, run_key: str) -> None:
    """The `migrate` job's page: Materialize all…, pick the run's partition, Launch 1 run."""
    page.goto(f"{ui}/locations/{LOCATION}/jobs/migrate")
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.locator(".dagster-dialog")
    dialog.get_by_text("Select a partition or create one").click()
    page.locator(".dagster-popover").get_by_text(run_key, exact=True).first.click()
    page.keyboard.press("Escape")
    dialog.get_by_role("button", name="Launch 1 run").click()
    dialog.wait_for(state="detached")


def shows(page, *texts: str) -> str:
    """Wait until the page shows every text; what the page shows."""
    for text in texts:
        page.get_by_text(text).first.wait_for()
    return page.locator("body").inner_text()


# The graph's bounding box on screen and the visible part of the canvas.
GRAPH_BOX = """() => {
  const graph = document.querySelector('svg[class*=svgContainer]');
  let view = graph.parentElement;
  while (getComputedStyle(view).overflow !== 'hidden') view = view.parentElement;
  const g = graph.getBoundingClientRect(), v = view.getBoundingClientRect();
  return {w: g.width, h: g.height, x: (g.left + g.right) / 2, y: (g.top + g.bottom) / 2,
          vw: v.width, vh: v.height};
}"""
# Tall groups get a tall page, so that their whole graph fits at a size that can be read.
SHOT_VIEWPORTS = {"novo_landing": (1300, 2000), "novo_staging": (1400, 1700)}


def fit_graph(page, margin: int = 30) -> None:
    """Zoom the lineage out (Ctrl + wheel, as a person would) until the whole group is on screen."""
    page.locator("svg[class*=svgContainer]").wait_for()
    for _ in range(40):
        b = page.evaluate(GRAPH_BOX)
        if b["w"] <= b["vw"] - 2 * margin and b["h"] <= b["vh"] - 2 * margin:
            return
        page.mouse.move(b["x"], b["y"])
        page.keyboard.down("Control")
        page.mouse.wheel(0, 40)
        page.keyboard.up("Control")
        page.wait_for_timeout(300)


def shoot_group(page, ui: str, group: str) -> None:
    page.set_viewport_size(dict(zip(("width", "height"), SHOT_VIEWPORTS.get(group, (1600, 1000)))))
    page.goto(f"{ui}/locations/{LOCATION}/asset-groups/{group}")
    shows(page, group)
    page.wait_for_timeout(3000)  # the graph's own zoom to its first view
    fit_graph(page)
    # a node's name tooltip, left open when zooming re-drew the node under the pointer, would hide another
    page.add_style_tag(content="[class*=Tooltip_tooltip] { display: none !important; }")
    shoot(page, f"group_{group}.png")


def shoot(page, name: str, settle_ms: int = 1500) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(settle_ms)  # layout and lazy panels finish
        page.screenshot(path=str(SHOTS / name))


# -- what the instance recorded ----------------------------------------------------------------------


def next_run(instance: dg.DagsterInstance, job: str, seen: set[str], timeout: float = 60) -> dg.DagsterRun:
    """The run the UI just launched, once it has finished."""
    deadline = time.monotonic() + timeout
    while (new := [r for r in instance.get_runs(dg.RunsFilter(job_name=job)) if r.run_id not in seen]) == []:
        assert time.monotonic() < deadline, f"the UI launched no {job} run within {timeout:.0f} s"
        time.sleep(1)
    run_id = new[0].run_id
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (run := instance.get_run_by_id(run_id)).is_finished:
        assert time.monotonic() < deadline, f"{job} run {run_id} did not finish within {RUN_TIMEOUT} s"
        time.sleep(2)
    return run


def run_ids(instance: dg.DagsterInstance, job: str) -> set[str]:
    return {r.run_id for r in instance.get_runs(dg.RunsFilter(job_name=job))}


def check_evaluation(instance: dg.DagsterInstance, run_id: str, name: str):
    return next(e.dagster_event.event_specific_data for e in
                instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
                if e.dagster_event.event_specific_data.check_name == name)


def materialized(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {e.dagster_event.asset_key.to_user_string()
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}


# -- the journey ---------------------------------------------------------------------------------------


def test_a_lead_materializes_the_sample_approves_in_the_launchpad_and_sees_the_load(stage, page):
    ui, run_key, instance, paths = stage["ui"], stage["run_key"], stage["instance"], stage["paths"]
    t0 = time.monotonic()

    # the asset graph: every group, in the UI of this instance and code location
    page.goto(f"{ui}/asset-groups")
    shows(page, "Global asset lineage", *GROUPS)

    # 1. materialize the sample run from the UI: it stops at the blocking check
    before = run_ids(instance, "migrate")
    materialize_partition(page, ui, run_key)
    blocked = next_run(instance, "migrate", before)
    assert blocked.status == dg.DagsterRunStatus.FAILURE and blocked.tags["dagster/partition"] == run_key
    gate = check_evaluation(instance, blocked.run_id, "mapping_approved")
    assert not gate.passed and gate.blocking
    done = materialized(instance, blocked.run_id)
    assert "proposed_mapping" in done and not [k for k in done if k.startswith("loaded_")], done

    page.goto(f"{ui}/assets/proposed_mapping?view=checks")
    text = shows(page, "This is a blocking asset check.", "Failed", "approve_in_the_ui", "values_needing_a_decision")
    assert "no approved mapping" in text
    shoot(page, "check_gate.png")

    # 2. the check's link opens the approve_mapping launchpad with the example config: sign it, launch it
    link = page.locator("a[href*='/jobs/approve_mapping/playground']").first
    href = link.get_attribute("href")
    assert href == gate.metadata["approve_in_the_ui"].value and href.startswith(f"{ui}/locations/{LOCATION}/"), href
    page.goto(href)
    page.wait_for_url("**/jobs/approve_mapping/playground")
    editor = page.locator(".CodeMirror")
    shows(page, "approved_by: YOUR NAME", "Launch Run")
    example = editor.evaluate("e => e.CodeMirror.getValue()")
    proposal_hash = gate.metadata["proposal_hash"].value
    assert yaml.safe_load(example)["ops"][OP]["config"]["proposal_hash"] == proposal_hash
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(example.replace("YOUR NAME", LEAD))  # what the lead pastes back, signed
    shows(page, f"approved_by: {LEAD}", "No errors")
    shoot(page, "approve_launchpad.png")
    before = run_ids(instance, "approve_mapping")
    page.get_by_role("button", name="Launch Run").click()
    approval = next_run(instance, "approve_mapping", before)
    assert approval.status == dg.DagsterRunStatus.SUCCESS
    shows(page, "Success")  # the launchpad opens the run's page
    approved = load_mapping(approved_path(paths))
    assert approved.approved_by == LEAD and approved.proposal_hash == proposal_hash

    # 3. materialize the sample again: the check passes and the loads materialize
    before = run_ids(instance, "migrate")
    materialize_partition(page, ui, run_key)
    loaded = next_run(instance, "migrate", before)
    assert loaded.status == dg.DagsterRunStatus.SUCCESS, f"run {loaded.run_id} ended {loaded.status}"
    assert check_evaluation(instance, loaded.run_id, "mapping_approved").passed
    loads = {k for k in materialized(instance, loaded.run_id) if k.startswith("loaded_")}
    assert {"loaded_organizations", "loaded_deals"} <= loads, loads

    page.goto(f"{ui}/runs/{loaded.run_id}")
    shows(page, "Success", "loaded_deals")
    page.goto(f"{ui}/assets/loaded_deals?partition={run_key}")
    shows(page, "loaded_deals", "Latest materialization", run_key)  # materialized for the sample's partition
    shoot(page, "loaded_asset.png")

    print(f"\nthe browser journey took {time.monotonic() - t0:.0f} s after dagster dev started", file=sys.stderr)
    if SHOTS is not None:
        page.get_by_text("Hide navigation").click()  # the graphs get the whole width
        for group in GROUPS:
            shoot_group(page, ui, group)
        diff = paths.reports / run_key / "field_diff.html"
        page.goto(diff.as_uri())
        shoot(page, "field_diff.png", settle_ms=500)
