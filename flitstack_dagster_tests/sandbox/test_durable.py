"""A write the sandbox acknowledged survives a kill -9: of the `flitstack sandbox` process, and of the
whole process group of a Python process hosting the sandbox in-process (as `flitstack demo` does).
Restarted on the same state, every acknowledged write is there, ids keep increasing and the tokens
spent are still counted. An old state.json is migrated into the database once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.sandbox.store import new_account
from flitstack_dagster_tests.kit import start_sandbox_cli

from .host_and_write import writes

REPO = Path(__file__).resolve().parents[2]
KILL_AFTER = 40  # acknowledged writes before the kill
KINDS = ("organizations", "persons", "deals", "notes", "files")


def _start_cli(state: Path) -> tuple[subprocess.Popen, str, str]:
    # extended signals: each answer says the tokens left, which the test checks survive a kill
    proc, text, url = start_sandbox_cli(state, "--plan", "ultimate", "--signals", "extended", start_new_session=True)
    assert url, text
    return proc, url, state.with_name("api_token").read_text().strip()


def _write_until_killed(url: str, token: str, acks: list[tuple[str, int, int]]) -> None:
    try:
        with httpx.Client(base_url=url, headers={"x-api-token": token}, timeout=10) as c:
            for label, r in writes(c):
                r.raise_for_status()
                acks.append((label, r.json()["data"]["id"], int(r.headers["x-daily-tokens-left"])))
    except httpx.TransportError:
        return  # the sandbox is gone


def _check_restored(c: httpx.Client, acks: list[tuple[str, int, int]]) -> None:
    """Every acknowledged write is there, ids keep increasing, the tokens spent are still counted."""
    assert len(acks) >= KILL_AFTER
    for label, rid, _ in acks:
        if label == "files":
            assert c.get(f"/v1/files/{rid}/download").status_code == 200, (label, rid)
        elif label == "notes":
            assert c.get(f"/v1/notes/{rid}").status_code == 200, (label, rid)
        elif label == "renamed-deals":
            assert c.get(f"/api/v2/deals/{rid}").json()["data"]["title"].endswith(" renamed"), rid
        else:
            assert c.get(f"/api/v2/{label}/{rid}").status_code == 200, (label, rid)
    usage = c.get("/_sandbox/usage").json()["data"]
    assert usage["tokens_left"] <= min(left for _, _, left in acks)
    snap = c.get("/_sandbox/snapshot").json()["data"]["records"]
    highest = {k: max(int(i) for i in snap[k]) for k in ("organizations", "deals") if snap[k]}
    org = c.post("/api/v2/organizations", json={"name": "After the restart"}).json()["data"]["id"]
    deal = c.post("/api/v2/deals", json={"title": "After the restart", "org_id": org}).json()["data"]["id"]
    assert org > highest["organizations"] and deal > highest["deals"]
    acked = {k: {rid for label, rid, _ in acks if label == k} for k in KINDS}
    assert all(acked[k] for k in ("organizations", "persons", "deals", "notes")), acked


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill_of_the_sandbox_process(tmp_path) -> None:
    state = tmp_path / "sb" / "state.sqlite"
    proc, url, token = _start_cli(state)
    acks: list[tuple[str, int, int]] = []
    writer = threading.Thread(target=_write_until_killed, args=(url, token, acks), daemon=True)
    try:
        writer.start()
        deadline = time.monotonic() + 60
        while len(acks) < KILL_AFTER and writer.is_alive():
            assert time.monotonic() < deadline, "the writer did not get its acknowledgements"
            time.sleep(0.001)
    finally:
        proc.kill()  # SIGKILL, mid-stream: the writer has a request in flight
        proc.communicate(timeout=20)
    writer.join(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    proc, url, token = _start_cli(state)
    try:
        with httpx.Client(base_url=url, headers={"x-api-token": token}, timeout=10) as c:
            _check_restored(c, acks)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_acknowledged_writes_survive_sigkill_of_the_hosting_process_group(tmp_path) -> None:
    state = tmp_path / "sb" / "state.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "flitstack_dagster_tests.sandbox.host_and_write", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)
    acks: list[tuple[str, int, int]] = []
    try:
        deadline = time.monotonic() + 60
        while len(acks) < KILL_AFTER:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
            line = proc.stdout.readline().split()
            if line and line[0] == "ack":
                acks.append((line[1], int(line[2]), int(line[3])))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=20)
    # what it printed before the kill was acknowledged too
    acks += [(w[1], int(w[2]), int(w[3])) for w in (line.split() for line in out.splitlines()) if w and w[0] == "ack"]
    assert proc.returncode == -signal.SIGKILL
    with SandboxServer(state_path=state, plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10) as c:
        _check_restored(c, acks)


def test_an_old_state_json_is_migrated_once(tmp_path) -> None:
    legacy = tmp_path / "sandbox" / "state.json"
    legacy.parent.mkdir()
    old = new_account(Clock(), "premium", 5, "ab" * 20)
    old["records"]["organizations"]["1"] = {"id": 1, "name": "From the JSON days", "is_deleted": False,
                                            "owner_id": old["users"][0]["id"], "add_time": "2026-01-01T00:00:00Z",
                                            "update_time": "2026-01-01T00:00:00Z", "visible_to": 3,
                                            "label_ids": [], "custom_fields": {}, "address": None}
    old["records"]["files"]["1"] = {"id": 1, "name": "a.txt", "file_name": "a.txt", "is_deleted": False,
                                    "active_flag": True, "org_id": 1}
    old["next_id"]["organizations"] = old["next_id"]["files"] = 2
    legacy.write_text(json.dumps(old), encoding="utf-8")
    (tmp_path / "sandbox" / "state.json.files").mkdir()
    (tmp_path / "sandbox" / "state.json.files" / "1").write_bytes(b"old body")
    for _ in range(2):  # the second start opens the database; nothing is migrated again
        with SandboxServer(state_path=legacy, plan="premium") as sb, \
                httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10) as c:
            assert sb.api_token == "ab" * 20
            assert c.get("/api/v2/organizations/1").json()["data"]["name"] == "From the JSON days"
            assert c.get("/v1/files/1/download").content == b"old body"
            assert c.post("/api/v2/organizations", json={"name": "New"}).json()["data"]["id"] in (2, 3)
        assert not legacy.exists() and legacy.with_name("state.json.migrated").exists()
        assert (tmp_path / "sandbox" / "state.sqlite").exists()
    with SandboxServer(state_path=tmp_path / "sandbox" / "state.sqlite", plan="premium") as sb:
        names = sorted(r["name"] for r in sb.snapshot()["records"]["organizations"].values())
        assert names == ["From the JSON days", "New", "New"]


def test_a_file_that_is_no_database_is_refused_in_one_line(tmp_path) -> None:
    bad = tmp_path / "state.sqlite"
    bad.write_text("not a database, just text " * 100)
    with pytest.raises(ValueError) as e:
        SandboxServer(state_path=bad)
    assert "is not a sandbox database" in str(e.value) and "\n" not in str(e.value)
    assert bad.read_text().startswith("not a database")


def test_a_reset_is_stored_whole(tmp_path) -> None:
    state = tmp_path / "state.sqlite"
    with SandboxServer(state_path=state, plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10) as c:
        c.post("/api/v2/organizations", json={"name": "Before the reset"})
        sb.reset()
        company = sb.snapshot()["account"]["company_id"]
    with SandboxServer(state_path=state, plan="ultimate") as sb:
        snap = sb.snapshot()
        assert snap["account"]["company_id"] == company
        assert snap["records"]["organizations"] == {} and len(snap["records"]["stages"]) == 5


def test_every_write_route_commits_what_it_changed(tmp_path) -> None:
    """After one of each write, the database holds exactly the live state (no change left in memory)."""
    state = tmp_path / "state.sqlite"
    with SandboxServer(state_path=state, plan="ultimate") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10) as c:
        def ok(r: httpx.Response) -> dict:
            assert r.status_code == 200, r.text
            return r.json()["data"]

        key = ok(c.post("/api/v2/dealFields", json={"field_name": "Kind", "field_type": "enum",
                                                     "options": [{"label": "A"}]}))["field_code"]
        ok(c.post(f"/api/v2/dealFields/{key}/options", json=[{"label": "B"}]))
        pipeline = ok(c.post("/api/v2/pipelines", json={"name": "Second"}))["id"]
        ok(c.post("/api/v2/stages", json={"name": "First", "pipeline_id": pipeline}))
        a, b = (ok(c.post("/api/v2/organizations", json={"name": n}))["id"] for n in ("A", "B"))
        ok(c.patch(f"/api/v2/organizations/{a}", json={"name": "A renamed"}))
        person = ok(c.post("/api/v2/persons", json={"name": "P Q", "org_id": a}))["id"]
        ok(c.patch(f"/api/v2/persons/{person}", json={"org_id": b}))
        deal = ok(c.post("/api/v2/deals", json={"title": "D", "org_id": a, "person_id": person}))["id"]
        ok(c.patch(f"/api/v2/deals/{deal}", json={"status": "won"}))
        act = ok(c.post("/api/v2/activities", json={"subject": "Call", "deal_id": deal}))["id"]
        ok(c.patch(f"/api/v2/activities/{act}", json={"done": True}))
        note = ok(c.post("/v1/notes", json={"content": "n", "deal_id": deal}))["id"]
        ok(c.put(f"/v1/notes/{note}", json={"content": "n2"}))
        fid = ok(c.post("/v1/files", files={"file": ("a.txt", b"x")}, data={"deal_id": str(deal)}))["id"]
        ok(c.post("/v1/activityTypes", json={"name": "Site visit", "icon_key": "meeting"}))
        rel = ok(c.post("/v1/organizationRelationships", json={"type": "parent", "rel_owner_org_id": a,
                                                                "rel_linked_org_id": b}))["id"]
        ok(c.put(f"/v1/organizationRelationships/{rel}", json={"type": "related"}))
        for path in (f"/v1/organizationRelationships/{rel}", f"/v1/files/{fid}", f"/v1/notes/{note}",
                     f"/api/v2/activities/{act}", f"/api/v2/deals/{deal}", f"/api/v2/organizations/{b}"):
            ok(c.delete(path))
        ok(c.patch(f"/_sandbox/records/persons/{person}", json={"name": "Patched"}))
        live = sb.snapshot()
        with closing(sqlite3.connect(state)) as db:  # what a kill now would leave
            stored = {k: {} for k in live["records"]}
            for kind, rid, body in db.execute("SELECT kind, id, body FROM records"):
                stored[kind][str(rid)] = json.loads(body)
            docs = {n: json.loads(body) for n, body in db.execute("SELECT name, body FROM docs")}
        assert stored == live["records"]
        assert docs["fields"] == live["fields"] and docs["usage"]["tokens_today"] == sb.usage()["tokens_today"]
