"""The archive cutoff end to end: a generated bundle approved with `archive_before` goes through
`migrate` into the sandbox; the work orders closed before the cutoff (and their rows) become one CSV and
one HTML archive on their organization instead of deals, every other work order loads as a deal, the
read-back downloads each archive and finds every archived work order in it, hostile source text is
neutralised in both files, and rolling the run back deletes the archives."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core import duck
from flitstack_dagster.loading.marker import marked_file_name
from flitstack_dagster.mapping.eta import eta_text
from flitstack_dagster.mapping.scope import RECORD_PLAN_COSTS
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.shaping.archive import archive_id
from flitstack_dagster_tests.kit import migrated_through_dagster, resign
from flitstack_dagster_tests.loading.test_rollback import live_state
from flitstack_dagster_tests.reliability.kit import read_csv, write_csv

pytestmark = pytest.mark.slow

FORMULA = "=cmd|' /C calc'!A0"
SCRIPT = "<script>alert('archive')</script>"
ATTACHMENT_ID, ATTACHMENT_PATH = "ATT-ARCHIVED-1", "files/archived/closed job sheet.txt"
ATTACHMENT_BODY = b"Job sheet of a work order closed before the cutoff: pump reseated, signed off.\n"
ARCHIVED_FILES = ("work_orders.csv", "status_log.csv", "labor.csv", "parts_used.csv", "notes.csv", "attachments.csv")


def _completed(text: str) -> date | None:
    """A generated Date Completed (ISO or the US format the generator also writes) as a date."""
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %I:%M %p", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return date.fromisoformat(text[:10])


def _bundle(tmp_path: Path) -> tuple[Path, date, set[str], set[str]]:
    """A generated bundle with a cutoff between its closed work orders, the earliest closed one carrying
    hostile text. Returns (bundle, cutoff, work orders closed before it, the other work orders)."""
    bundle = tmp_path / "bundle"
    assert cli_main(["generate", "--work-orders", "8", "--seed", "5", "--mess", "0", "--out", str(bundle),
                     "--no-mess-log"]) == 0
    header, wos, enc = read_csv(bundle, "work_orders.csv")
    closed = sorted((d, r["WO Number"]) for r in wos if (d := _completed(r["Date Completed"])))
    assert len(closed) >= 2 and closed[0][0] < closed[-1][0]
    cutoff = closed[-1][0]  # the last closed one stays a deal (one day margin either side of the zone)
    before = {wo for d, wo in closed if (cutoff - d).days > 1}
    assert before
    hostile = min(before)
    for r in wos:
        if r["WO Number"] == hostile:
            r["Title"], r["Description"] = FORMULA, SCRIPT
    write_csv(bundle, "work_orders.csv", header, wos, enc)
    header, rows, enc = read_csv(bundle, "attachments.csv")
    (bundle / ATTACHMENT_PATH).parent.mkdir(parents=True, exist_ok=True)
    (bundle / ATTACHMENT_PATH).write_bytes(ATTACHMENT_BODY)
    rows.append({"Attachment ID": ATTACHMENT_ID, "Parent Type": "Work Order", "Parent ID": hostile,
                 "File Name": "closed job sheet.txt", "Bundle Path": ATTACHMENT_PATH, "Size": str(len(ATTACHMENT_BODY)),
                 "Content Type": "text/plain", "SHA-256": hashlib.sha256(ATTACHMENT_BODY).hexdigest(),
                 "Uploaded At": "2019-10-01T12:00:00Z", "Uploaded By ID": "", "Description": "signed job sheet"})
    write_csv(bundle, "attachments.csv", header, rows, enc)
    resign(bundle, {"attachments.csv": len(rows)})
    return bundle, cutoff, before, {r["WO Number"] for r in wos} - before


def _calendar_rows(lines: list[str], sep: str) -> list[tuple[str, ...]]:
    """(record plan, Pipedrive plan, tokens, days) of each calendar row, from the terminal's or the
    Markdown table."""
    plans = {rp.name for rp in RECORD_PLAN_COSTS}
    cells = [[c for c in re.split(sep, line.strip()) if c] for line in lines]
    rows = [(c[0], c[1], c[4], c[5]) for c in cells if c and c[0] in plans]
    assert len(rows) >= len(plans)
    return rows


def test_a_cutoff_archives_the_closed_work_orders_per_organization_verified_and_rolled_back(tmp_path, monkeypatch,
                                                                                            capsys):
    bundle, cutoff, before, rest = _bundle(tmp_path)
    with migrated_through_dagster(bundle, tmp_path / "data", archive_before=cutoff.isoformat()) as m:
        assert m.second.success, [e.message for e in m.second.all_node_events if e.is_failure]
        checks = {c.check_name: c.passed for c in m.second.get_asset_check_evaluations()}
        assert checks["reconciliation"] and checks["every_record_once"] and checks["no_unexplained_mismatches"]
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            deals = {r[0] for r in con.execute("SELECT source_id FROM meta.id_map WHERE entity = 'deal'").fetchall()}
            archives = con.execute(
                "SELECT m.source_id, m.pipedrive_id, s.org_ref, s.file_name FROM meta.id_map m JOIN shaped.pd_files s "
                "ON s.source_id = m.source_id AND s.run_key = ? WHERE m.entity = 'file' AND s.kind = 'archive'",
                [m.run_key]).fetchall()
            recon = con.execute(
                "SELECT file, source_id, outcome, CAST(targets AS VARCHAR) FROM shaped.reconciliation WHERE run_key = ?",
                [m.run_key]).fetchall()
            child_wo = {f"{t}:{i}": wo for t, col, table in (
                ("status_log", "log_id", "stg_status_log"), ("labor", "labor_id", "stg_labor"),
                ("part_used", "line_id", "stg_parts_used"), ("note", "note_id", "stg_notes"))
                for i, wo in con.execute(f"SELECT {col}, wo_number FROM staging.{table} WHERE _run_key = ?",
                                         [m.run_key]).fetchall()}
            diff = con.execute("SELECT source_id, field, outcome FROM verification.field_diff WHERE run_key = ? "
                               "AND field LIKE 'archived in %'", [m.run_key]).fetchall()
            unexplained = con.execute("SELECT unexplained FROM verification.runs WHERE run_key = ?",
                                      [m.run_key]).fetchone()[0]
        # exactly the work orders closed before the cutoff are archived; the rest are deals
        assert {f"work_order:{wo}" for wo in rest} <= deals
        assert not {f"work_order:{wo}" for wo in before} & deals
        # every archived row is accounted for as loaded into an archive file, nothing else is
        archived_rows = {s for f, s, o, t in recon if f in ARCHIVED_FILES and o == "loaded" and t == "pd_files"}
        assert {f"work_order:{wo}" for wo in before} <= archived_rows
        assert {s for s, wo in child_wo.items() if wo in before} <= archived_rows
        assert not {s for s, wo in child_wo.items() if wo in rest} & archived_rows
        assert not {f"work_order:{wo}" for wo in rest} & archived_rows
        # one CSV and one HTML per organization, on the organization in Pipedrive
        assert archives and len(archives) % 2 == 0
        files = m.sandbox.snapshot()["records"]["files"]
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            org_ids = dict(con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = 'organization'"
                                       ).fetchall())
        for _, pid, org_ref, _ in archives:
            assert files[str(pid)]["org_id"] == org_ids[org_ref]
        # the read-back downloaded each archive and found every archived work order in it
        assert {s for s, _, o in diff if o == "match"} == {f"work_order:{wo}" for wo in before}
        assert {o for _, _, o in diff} == {"match"} and len(diff) == len(before) * 2
        assert unexplained == 0
        # hostile text is shown as text in both files
        client = PipedriveClient(m.sandbox.base_url, m.sandbox.api_token, plan="ultimate", seats=5)
        texts = {sid: client.download_file(pid).decode("utf-8") for sid, pid, _, _ in archives}
        hostile_org = next(org for sid, _, org, _ in archives if f"work_order:{min(before)}" in texts[sid])
        bodies = {fmt: texts[archive_id(m.run_key, hostile_org, fmt)] for fmt in ("csv", "html")}
        rows = list(csv.DictReader(io.StringIO(bodies["csv"])))
        titles = [r["Title"] for r in rows if r["Source ID"] == f"work_order:{min(before)}"]
        assert titles == ["'" + FORMULA]
        assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)
        assert SCRIPT not in bodies["html"] and "&lt;script&gt;" in bodies["html"]
        assert "'archive'" not in bodies["html"] and "&#x27;archive&#x27;" in bodies["html"]
        # the archived work order's attachment: listed in its archive, its body a file on the same
        # organization, named with its source marker, read back like any file
        attachment = f"attachment:{ATTACHMENT_ID}"
        assert attachment in {r["Source ID"] for r in rows}
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            (att_pid,) = con.execute("SELECT pipedrive_id FROM meta.id_map WHERE entity = 'file' AND source_id = ?",
                                     [attachment]).fetchone()
            att_diff = con.execute("SELECT field, outcome FROM verification.field_diff WHERE run_key = ? AND "
                                   "source_id = ?", [m.run_key, attachment]).fetchall()
        assert files[str(att_pid)]["org_id"] == org_ids[hostile_org] and not files[str(att_pid)].get("deal_id")
        assert client.download_file(att_pid) == ATTACHMENT_BODY
        assert files[str(att_pid)]["name"] == marked_file_name("file", attachment, "closed job sheet.txt")
        assert att_diff and {o for _, o in att_diff} == {"match"}
        assert (attachment, "loaded") in {(s, o) for f, s, o, t in recon if f == "attachments.csv"}

        # the scope document, materialized after the approval, counts and lists the archived work orders
        import dagster as dg

        scope = m.job.execute_in_process(partition_key=m.run_key, instance=m.instance, raise_on_error=False,
                                         asset_selection=[dg.AssetKey("scope_doc")])
        assert scope.success
        doc = (m.paths.reports / m.run_key / "scope.md").read_text(encoding="utf-8")
        section = doc.split("## Archive", 1)[1].split("\n## ", 1)[0]
        assert f"**{len(before)} work orders** closed before **{cutoff.isoformat()}**" in section
        assert all(wo in section for wo in before) and not any(wo in section for wo in rest)
        assert "archives of the" in doc.split("## API requests", 1)[1]
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            on_archived = con.execute("SELECT count(*) FROM staging.stg_attachments WHERE _run_key = ? AND parent_type = "
                                      "'Work Order' AND list_contains(?, parent_id)", [m.run_key, sorted(before)]
                                      ).fetchone()[0]
        assert on_archived >= 1
        assert f"their {on_archived} attachments are listed in the archive and each one's file is uploaded" in section
        # `flitstack calendar` shows the scope document's calendar: the same tokens and days, archive counted
        monkeypatch.setenv("FLITSTACK_DATA_DIR", str(m.paths.root))
        capsys.readouterr()
        assert cli_main(["calendar", m.run_key]) == 0
        shown = _calendar_rows(capsys.readouterr().out.splitlines(), r"\s{2,}")
        assert shown == _calendar_rows(doc.split("## Calendar", 1)[1].splitlines(), r"\s*\|\s*")
        # and the ETA prices the whole bundle with the same archive
        eta = eta_text(m.paths, m.run_key, {})
        plan = re.search(r"\(record plan (\w+)", eta).group(1)
        assert f"about {next(t for rp, _, t, _ in shown if rp == plan)} tokens left" in eta
        with duck.connect(m.paths.duckdb):  # a step holds the DuckDB file: the ETA uses the archive counted before
            assert eta_text(m.paths, m.run_key, {}) == eta

        # rollback deletes the archive files with every other record of the run
        from flitstack_dagster.definitions import build_definitions

        rollback = build_definitions(m.paths.root, pipedrive=m.pipedrive).resolve_job_def("rollback")
        r = rollback.execute_in_process(partition_key=m.run_key, instance=m.instance, raise_on_error=False,
                                        run_config={"ops": {"rollback_migration_run": {"config": {"cascade": True}}}})
        assert r.success, [e.message for e in r.all_node_events if e.is_failure]
        assert not live_state(m.sandbox)["files"]
        files = m.sandbox.snapshot()["records"]["files"]
        assert all(files[str(pid)].get("is_deleted") or str(pid) not in files
                   for pid in [att_pid, *(pid for _, pid, _, _ in archives)])


def _delta_with_rows_of(base: Path, out: Path, archived: set[str]) -> tuple[str, str, str]:
    """A generated delta that also carries a new status change and a new labor entry of a work order the
    base archived, without that work order's row. Returns (work order, status-log id, labor id)."""
    assert cli_main(["generate", "--delta-from", str(base), "--seed", "12", "--out", str(out), "--no-mess-log"]) == 0
    wo = min(archived)
    added = {}
    for file, id_col in (("work_orders.csv", "WO Number"), ("deleted.csv", "ID")):  # its rows come without it
        header, rows, enc = read_csv(out, file)
        rows = [r for r in rows if r[id_col] != wo]
        write_csv(out, file, header, rows, enc)
        added[file] = len(rows)
    for file, id_col, new_id in (("status_log.csv", "Log ID", "LOG-ARCHIVED-DELTA"),
                                 ("labor.csv", "Labor ID", "LAB-ARCHIVED-DELTA")):
        header, rows, enc = read_csv(out, file)
        _, base_rows, _ = read_csv(base, file)
        rows.append(dict(base_rows[0], **{id_col: new_id, "WO Number": wo}))  # its values are mapped already
        write_csv(out, file, header, rows, enc)
        added[file] = len(rows)
    resign(out, rows=added)
    return wo, "LOG-ARCHIVED-DELTA", "LAB-ARCHIVED-DELTA"


def test_a_delta_s_rows_of_an_archived_work_order_go_to_the_delta_s_archive_of_its_organization(tmp_path):
    bundle, cutoff, before, _ = _bundle(tmp_path)
    with migrated_through_dagster(bundle, tmp_path / "data", archive_before=cutoff.isoformat()) as m:
        assert m.second.success, [e.message for e in m.second.all_node_events if e.is_failure]
        wo, log_id, labor_id = _delta_with_rows_of(bundle, tmp_path / "delta", before)
        from flitstack_dagster.novo.runs import add_run

        with duck.connect(m.paths.duckdb) as con:
            delta = add_run(con, tmp_path / "delta", "delta", m.paths.work).run_key
        m.instance.add_dynamic_partitions("migration_runs", [delta])
        result = m.job.execute_in_process(partition_key=delta, instance=m.instance, raise_on_error=False)
        assert result.success, [e.message for e in result.all_node_events if e.is_failure]
        rows = {f"status_log:{log_id}", f"labor:{labor_id}"}
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            (earlier_org,) = con.execute(
                "SELECT org_ref FROM shaped.pd_files WHERE run_key = ? AND kind = 'archive' AND "
                "list_contains(json_extract_string(payload, '$.work_orders[*]'), ?) LIMIT 1", [m.run_key, wo]).fetchone()
            archives = con.execute(
                "SELECT s.source_id, m.pipedrive_id, s.org_ref, s.content_type FROM meta.id_map m JOIN shaped.pd_files s "
                "ON s.source_id = m.source_id AND s.run_key = ? WHERE m.entity = 'file' AND s.kind = 'archive' AND "
                "list_contains(json_extract_string(s.payload, '$.work_orders[*]'), ?)", [delta, wo]).fetchall()
            recon = {s: (o, t) for s, o, t in con.execute(
                "SELECT source_id, outcome, CAST(targets AS VARCHAR) FROM shaped.reconciliation WHERE run_key = ?",
                [delta]).fetchall()}
            aside = con.execute("SELECT source_id, reason_code FROM shaped.set_aside WHERE run_key = ?",
                                [delta]).fetchall()
            diff = con.execute("SELECT source_id, field, outcome FROM verification.field_diff WHERE run_key = ?",
                               [delta]).fetchall()
            unexplained = con.execute("SELECT unexplained FROM verification.runs WHERE run_key = ?",
                                      [delta]).fetchone()[0]
            org_pid = con.execute("SELECT pipedrive_id FROM meta.id_map WHERE entity = 'organization' AND "
                                  "source_id = ?", [earlier_org]).fetchone()[0]
        # the rows are loaded into the delta's own archive of the work order's organization, never orphans
        assert {s: recon.get(s) for s in rows} == {s: ("loaded", "pd_files") for s in rows}
        assert not {s for s, _ in aside} & rows
        assert {s for s, _, _, _ in archives} == {archive_id(delta, earlier_org, f) for f in ("csv", "html")}
        files = m.sandbox.snapshot()["records"]["files"]
        assert all(files[str(pid)]["org_id"] == org_pid for _, pid, _, _ in archives)
        # the delta's read-back is clean and found the work order in both of its files
        assert unexplained == 0 and {o for _, _, o in diff} == {"match"}
        assert {(s, f) for s, f, _ in diff if f.startswith("archived in")} >= {
            (f"work_order:{wo}", "archived in CSV"), (f"work_order:{wo}", "archived in HTML")}
        # the file as Pipedrive serves it holds the two rows, and not the work order's own row
        client = PipedriveClient(m.sandbox.base_url, m.sandbox.api_token, plan="ultimate", seats=5)
        csv_pid = next(pid for _, pid, _, t in archives if t == "text/csv")
        listed = list(csv.DictReader(io.StringIO(client.download_file(csv_pid).decode("utf-8"))))
        mine = {r["Source ID"]: r for r in listed if r["WO Number"] == wo}
        assert set(mine) == rows
        assert {r["Archived record"] for r in mine.values()} == {"status change", "labor entry"}
        html_pid = next(pid for _, pid, _, t in archives if t == "text/html")
        page = client.download_file(html_pid).decode("utf-8")
        assert f'<h2 id="work_order:{wo}">' in page and "archived by an earlier run" in page
        # the delta's scope document and its archive count list the work order under its organization
        import dagster as dg

        from flitstack_dagster.mapping import store
        from flitstack_dagster.mapping.archive import run_archive_scope

        scope = m.job.execute_in_process(partition_key=delta, instance=m.instance, raise_on_error=False,
                                         asset_selection=[dg.AssetKey("scope_doc")])
        assert scope.success
        counted = run_archive_scope(m.paths, delta, store.load_approved(m.paths))
        assert wo in counted.by_org[earlier_org] and counted.rows_only == 1
        assert counted.rows["status_log"] >= 1 and counted.rows["labor"] >= 1
        section = (m.paths.reports / delta / "scope.md").read_text(encoding="utf-8").split("## Archive", 1)[1]
        assert wo in section.split("\n## ", 1)[0] and "1 of them were archived by an earlier run" in section
