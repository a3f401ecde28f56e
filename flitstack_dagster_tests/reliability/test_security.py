"""Security: a run through Dagster with a recognisable token, then every output is searched for it; attachment
paths that leave the bundle never bring outside content into Pipedrive; script-looking Novo text arrives as
inert text; the sandbox wants a valid token; everything listens on 127.0.0.1 by default."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import traceback
from pathlib import Path

import dagster as dg
import httpx
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.sandbox.faults import FaultConfig
from flitstack_dagster.sandbox.server import SandboxServer

from . import kit
from .oracle import live

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TOKEN_BYTES = kit.TOKEN.encode()


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))  # message, args and any traceback


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dagster_run(prepared, tmp_path_factory):
    """Fail a load (every request answered 503), then load and verify for real — all through Dagster,
    on a persistent instance, from an empty working directory, with every Python log collected."""
    base = tmp_path_factory.mktemp("security")
    p = kit.clone(prepared, base / "run")
    home, cwd = base / "dagster_home", base / "cwd"
    cwd.mkdir()
    home.mkdir()
    bundle_before, outside_before = tree(p.bundle), tree(p.bundle.parent)
    handler, root_logger = Collect(), logging.getLogger()
    old_level, old_cwd = root_logger.level, os.getcwd()
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    os.chdir(cwd)
    try:
        instance = dg.DagsterInstance.local_temp(str(home))
        instance.add_dynamic_partitions(migration_runs.name, [p.run_key])
        with kit.sandbox(p) as sb:
            pipedrive = PipedriveResource(base_url=sb.base_url, api_token=kit.TOKEN, plan=kit.PLAN, seats=kit.SEATS)
            defs = build_definitions(p.paths.root, pipedrive=pipedrive)
            graph = defs.resolve_asset_graph()
            keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name in ("pipedrive_load", "verification")]
            job = defs.resolve_job_def("migrate")
            sb.set_faults(error_rate=1.0)
            failed = job.execute_in_process(partition_key=p.run_key, instance=instance, raise_on_error=False,
                                            asset_selection=keys)
            sb.set_faults(FaultConfig())
            ok = job.execute_in_process(partition_key=p.run_key, instance=instance, raise_on_error=False,
                                        asset_selection=keys)
            snapshot = sb.snapshot()
            blobs = list(sb.store.blob_dir.glob("*"))
            yield {"p": p, "instance": instance, "home": home, "cwd": cwd, "failed": failed, "ok": ok, "keys": keys,
                   "snapshot": snapshot, "blobs": [b.read_bytes() for b in blobs], "logs": handler.lines,
                   "bundle_before": bundle_before, "outside_before": outside_before, "sb": sb}
    finally:
        os.chdir(old_cwd)
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)


def test_the_runs_did_what_the_greps_rely_on(dagster_run):
    failed, ok = dagster_run["failed"], dagster_run["ok"]
    assert not failed.success and any(e.is_step_failure for e in failed.all_events)
    loaded = {e.asset_key.path[-1] for e in ok.get_asset_materialization_events()}
    assert {"loaded_organizations", "loaded_deals", "loaded_files", "verified_records"} <= loaded
    assert len(dagster_run["logs"]) > 50


def test_token_never_in_python_logs(dagster_run):
    leaks = [line for line in dagster_run["logs"] if kit.TOKEN in line]
    assert leaks == []


def test_token_never_in_dagster_event_log_metadata_or_errors(dagster_run):
    instance = dagster_run["instance"]
    runs = instance.get_runs()
    assert len(runs) == 2
    texts = []
    for run in runs:
        for rec in instance.all_logs(run.run_id):
            texts.append(repr(rec))
            ev = rec.dagster_event
            if ev is not None and ev.is_step_failure:
                err = ev.step_failure_data.error
                texts.append(err.to_string())  # message, stack and causes as the UI shows them
    assert any("503" in t or "failed" in t for t in texts)
    for key in dagster_run["keys"]:
        mat = instance.get_latest_materialization_event(key)
        if mat is not None:
            texts.append(repr(mat.asset_materialization.metadata))
    assert [t[:300] for t in texts if kit.TOKEN in t] == []
    # and the instance's storage on disk (event log, run storage, compute logs), byte for byte
    files = [f for f in dagster_run["home"].rglob("*") if f.is_file()]
    assert files and [str(f) for f in files if TOKEN_BYTES in f.read_bytes()] == []


def test_token_never_in_reports_duckdb_or_anything_in_the_data_folder(dagster_run):
    p = dagster_run["p"]
    reports = [f for f in p.paths.reports.rglob("*") if f.is_file()]
    assert reports, "the verification run writes reports"
    assert [str(f) for f in p.paths.root.rglob("*") if f.is_file() and TOKEN_BYTES in f.read_bytes()] == []
    with duck.connect(p.paths.duckdb, read_only=True) as con:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_type = 'BASE TABLE'").fetchall()
        hits = []
        for schema, table in tables:
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                              "AND table_name = ?", [schema, table]).fetchall()]
            where = " OR ".join(f'CAST("{c}" AS VARCHAR) LIKE ?' for c in cols)
            n = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {where}',
                            [f"%{kit.TOKEN}%"] * len(cols)).fetchall()[0][0]
            if n:
                hits.append((schema, table, n))
        audit = con.execute("SELECT count(*) FROM meta.audit_log").fetchall()[0][0]
    assert audit > 0 and len(tables) > 20
    assert hits == []


def test_token_never_in_client_exception_text(dagster_run):
    sb = dagster_run["sb"]
    for faults in (FaultConfig(error_rate=1.0), FaultConfig(drop_rate=1.0)):
        sb.set_faults(faults)
        pd = kit.client(sb, max_retries=1)
        with pytest.raises(PipedriveError) as e:
            pd.create("organization", {"name": "x"})
        text = "".join(traceback.format_exception(e.value)) + repr(e.value) + repr(pd)
        assert "organizations" in text and kit.TOKEN not in text
    sb.set_faults(FaultConfig())


def test_sandbox_refuses_requests_without_a_valid_token(dagster_run):
    url = dagster_run["sb"].base_url
    for headers in ({}, {"x-api-token": "tok_wrong"}, {"x-api-token": ""}):
        for path in ("/api/v2/deals", "/v1/notes", "/_sandbox/snapshot"):
            r = httpx.get(url + path, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert kit.TOKEN not in r.text
    r = httpx.post(url + "/api/v2/organizations", json={"name": "x"}, headers={"x-api-token": "tok_wrong"})
    assert r.status_code == 401
    assert httpx.get(url + "/api/v2/deals", headers={"x-api-token": kit.TOKEN}).status_code == 200


def test_nothing_read_or_written_outside_the_bundle_and_the_data_folder(dagster_run, prepared):
    p, snap = dagster_run["p"], dagster_run["snapshot"]
    # the hostile attachments were set aside before anything loaded, naming the row
    with duck.connect(p.paths.duckdb, read_only=True) as con:
        hostile = {r[0] for r in con.execute(
            "SELECT raw_value FROM staging.quarantine WHERE _run_key = ? AND reason_code = 'hostile_path'",
            [p.run_key]).fetchall()}
    assert {"../canary.txt", str(p.bundle.parent / "canary.txt")} <= hostile
    # the canary's content never reached Pipedrive: not in any record, not in any uploaded body
    assert kit.CANARY not in repr(snap)
    assert dagster_run["blobs"] and not any(kit.CANARY.encode() in b for b in dagster_run["blobs"])
    assert not [f for f in live(snap, "files").values() if f["name"].startswith("innocent")]
    # the bundle is untouched, the working directory empty, and beside the bundle nothing new
    assert tree(p.bundle) == dagster_run["bundle_before"]
    assert list(dagster_run["cwd"].iterdir()) == []
    assert tree(p.bundle.parent) == dagster_run["outside_before"]


def test_script_looking_novo_text_arrives_as_inert_text(dagster_run):
    snap = dagster_run["snapshot"]
    deals = [d for d in live(snap, "deals").values() if kit.SCRIPT in d["title"]]
    assert len(deals) == 1  # a plain-text field keeps the text exactly, as text
    html = [n["content"] for n in live(snap, "notes").values()] + \
           [a.get("note") or "" for a in live(snap, "activities").values()]
    assert not [h for h in html if re.search(r"<\s*(script|img)\b", h, re.I)]
    escaped = [h for h in html if "&lt;script&gt;alert(" in h]
    assert len(escaped) >= 2  # the status comment and the activity-log note, both shown as text


def test_sandbox_and_webserver_listen_on_127_0_0_1_by_default():
    import inspect

    import dagster_webserver.cli as web
    from dagster._cli.dev import dev_command

    with SandboxServer(state_path=None) as sb:
        assert sb._sock.getsockname()[0] == "127.0.0.1"
        assert sb.base_url.startswith("http://127.0.0.1:")
    assert inspect.signature(SandboxServer).parameters["host"].default == "127.0.0.1"
    from flitstack_dagster.cli import sandbox as command
    assert '"--host", default="127.0.0.1"' in inspect.getsource(command)
    # `dagster dev` passes no host unless told; the webserver then binds 127.0.0.1
    assert {p.name: p.default for p in web.dagster_webserver.params}["host"] == "127.0.0.1"
    assert "host" in {p.name for p in dev_command.params}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if "dagster dev" in line and "bin/dagster" in line]
    assert commands and not [c for c in commands if re.search(r"(\s-h\s|--host)", c)]
    assert "0.0.0.0" not in (REPO / "workspace.yaml").read_text(encoding="utf-8")
