"""The HTML diff report opens offline in headless Chromium and shows source vs destination values;
reconciliation passes on a faithful run and fails once a record no longer reads back as sent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from flitstack_dagster.loading.reconcile import reconcile_run
from flitstack_dagster.verification.report_html import write_field_diff_report
from flitstack_dagster.verification.verify import verify_run

from .handmade import RUN

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--dump-dom"]


def chromium() -> str:
    """Debian's chromium; installed when missing. Never a silent skip: failing to get it fails the test."""
    found = shutil.which("chromium") or (Path("/usr/bin/chromium").exists() and "/usr/bin/chromium")
    if not found:
        proc = subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, capture_output=True, text=True, timeout=900)
        found = shutil.which("chromium")
        assert found, f"headless Chromium is needed for this test and could not be installed:\n{proc.stderr[-2000:]}"
    return str(found)


def dump_dom(html: Path) -> str:
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, html.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_reconciliation_passes_then_fails_when_a_field_is_corrupted(world):
    sb, client, hm = world
    verify_run(hm.con, client, RUN)
    ok = reconcile_run(hm.con, RUN)
    assert ok.passed, ok.problems
    deals = next(r for r in ok.destinations if r["entity"] == "deal")
    assert deals == {"entity": "deal", "shaped": 2, "in_id_map": 2, "set_aside_at_load": 0, "not_loaded": 0,
                     "in_pipedrive": 2, "verified": 2, "reasons": "", "ok": True}
    rules = next(r for r in ok.sources if r["file"] == "workflow_rules.json")
    assert rules["source_rows"] == rules["not_migrated"] == 1 and rules["ok"]
    [(code,)] = hm.con.execute("SELECT DISTINCT reason_code::VARCHAR FROM shaped.reconciliation "
                               "WHERE file = 'workflow_rules.json'").fetchall()
    assert rules["reasons"] == f"{code} 1"  # why the row is not migrated, with its count

    sb.patch_record("deals", hm.ids["work_order:WO-2"], {"title": "WO-2 · Boiler (edited in Pipedrive)"})
    verify_run(hm.con, client, RUN)
    bad = reconcile_run(hm.con, RUN)
    assert not bad.passed
    assert bad.problems == ["deal: 1 records read back differently from what was sent (see the field diff)"]


def test_reconciliation_fails_before_verification_and_for_unloaded_records(world):
    _sb, client, hm = world
    assert reconcile_run(hm.con, RUN).problems == ["the run's records are not verified yet: materialize verified_records first"]
    hm.con.execute("DELETE FROM meta.id_map WHERE source_id = 'labor:100001'")
    verify_run(hm.con, client, RUN)
    r = reconcile_run(hm.con, RUN)
    assert "activity: 1 of 1 shaped records are not in the id map" in r.problems
    hm.con.execute("INSERT INTO meta.load_set_aside VALUES (?, 'activity', 'labor:100001', 'reference_not_loaded', "
                   "'work_order:WO-1 is not in Pipedrive yet', now())", [RUN])
    result = verify_run(hm.con, client, RUN)
    assert dict(zip(result.records["source_id"], result.records["status"]))["labor:100001"] == "set_aside"
    assert reconcile_run(hm.con, RUN).passed  # set aside by the loader, with its reason, is accounted for


@pytest.mark.slow
def test_html_report_opens_offline_in_headless_chromium(world, tmp_path):
    sb, client, hm = world
    sb.patch_record("deals", hm.ids["work_order:WO-1"], {"title": "Tampered <b>title</b>"})
    result = verify_run(hm.con, client, RUN)
    path = write_field_diff_report(result, tmp_path / "reports" / RUN / "field_diff.html")
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # nothing to fetch: opens offline
    dom = dump_dom(path)
    assert "Field-level diff — " + RUN in dom
    assert "1 unexplained differences" in dom
    # the mismatching row, source vs destination, listed before any matching deal row
    row = dom.index("WO-1 · Pothole")
    assert "Tampered &lt;b&gt;title&lt;/b&gt;" in dom[row:row + 400]
    assert dom.index('data-outcome="mismatch"') < dom.index('data-outcome="match"')
    assert 'id="f-count"' in dom and "rows shown" in dom  # the inline filter script ran
