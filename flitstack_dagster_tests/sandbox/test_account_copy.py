"""`flitstack sandbox --from-account`: a second sandbox on 127.0.0.1 stands for the customer's real
account (its own users, pipelines, stages, custom fields with options, activity types); the copy is
a new sandbox account with the same schema, read with GET requests only, its cost shown first, and
the real account's token never printed nor stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.schema_copy import read_account_schema, read_cost
from flitstack_dagster.sandbox.seed import install_users
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.kit import REPO, start_sandbox_cli

REAL_USERS = [
    {"id": 7001, "name": "Dana Whitfield", "email": "dana@city-works.example", "is_admin": True, "active_flag": True},
    {"id": 7002, "name": "Luis Romero", "email": "luis@city-works.example", "is_admin": False, "active_flag": True},
    {"id": 7003, "name": "Old Timer", "email": "retired@city-works.example", "is_admin": False, "active_flag": False},
]


@pytest.fixture
def real_account(tmp_path: Path):
    """The 'real' account: a sandbox given a schema of its own through the API, as a customer's would be."""
    with SandboxServer(state_path=tmp_path / "real" / "state.sqlite", plan="premium", seats=5) as sb:
        install_users(sb.store, REAL_USERS)
        with PipedriveClient(sb.base_url, sb.api_token, plan="premium") as c:
            pid = c.create_pipeline({"name": "Facilities"}).id
            for name in ("Reported", "Scheduled", "On Hold"):
                c.create_stage({"name": name, "pipeline_id": pid, "deal_probability": 50})
            c.create_field("deal", {"field_name": "Priority", "field_type": "enum",
                                    "options": [{"label": "Low"}, {"label": "High"}]})
            c.create_field("person", {"field_name": "Trades", "field_type": "set",
                                      "options": [{"label": "HVAC"}, {"label": "Plumbing"}, {"label": "Electric"}]})
            c.create_field("organization", {"field_name": "Site code", "field_type": "varchar"})
            c.create_activity_type({"name": "Inspection", "icon_key": "task"})
        sb.set_tokens_spent(0)
        yield sb


def _env(real: SandboxServer, data: Path) -> dict[str, str]:
    return {**os.environ, "PIPEDRIVE_BASE_URL": real.base_url, "PIPEDRIVE_API_TOKEN": real.api_token,
            "PIPEDRIVE_PLAN": "premium", "FLITSTACK_DATA_DIR": str(data)}


def _schema(base_url: str, token: str) -> dict:
    with PipedriveClient(base_url, token, plan="premium") as c:
        s = read_account_schema(c)
    keep = lambda items, keys: sorted(({k: i.get(k) for k in keys} for i in items), key=lambda d: d[keys[0]])  # noqa: E731
    return {
        "users": keep(s.users, ("id", "name", "email", "active_flag", "is_admin")),
        "pipelines": keep(s.pipelines, ("id", "name", "order_nr")),
        "stages": keep(s.stages, ("id", "name", "pipeline_id", "order_nr", "deal_probability")),
        "activity_types": keep(s.activity_types, ("id", "name", "key_string", "icon_key", "active_flag")),
        "fields": {e: keep(fs, ("field_code", "field_name", "field_type", "options", "is_custom_field",
                                "ui_visibility", "important_fields", "required_fields"))
                   for e, fs in s.fields.items()},
    }


def test_a_copy_in_process_has_the_same_schema_and_ids(real_account):
    """The copy's parts alone (fast tier): read the real account, install into a fresh sandbox."""
    from dataclasses import asdict

    from flitstack_dagster.sandbox.seed import install_schema

    with PipedriveClient(real_account.base_url, real_account.api_token, plan="premium") as c:
        parts = asdict(read_account_schema(c))
    with SandboxServer(state_path=None, plan="premium") as copy:
        install_users(copy.store, parts.pop("users"))
        install_schema(copy.store, **parts)
        copied = _schema(copy.base_url, copy.api_token)
        with PipedriveClient(copy.base_url, copy.api_token, plan="premium") as c:
            # the copy goes on like an account: a new field and option take fresh ids and keys
            made = c.create_field("deal", {"field_name": "Asset tag", "field_type": "enum", "options": [{"label": "A"}]})
    assert copied == _schema(real_account.base_url, real_account.api_token)
    taken = {f["field_code"] for fs in copied["fields"].values() for f in fs}
    options = {o["id"] for fs in copied["fields"].values() for f in fs for o in f["options"] or []}
    assert made.field_code not in taken and made.options[0].id not in options


@pytest.mark.slow
def test_the_copy_is_a_new_account_with_the_real_accounts_schema(real_account, tmp_path):
    state = tmp_path / "copy" / "state.sqlite"
    before = real_account.usage()["operations"]
    proc, printed, url = start_sandbox_cli(state, "--from-account", "--yes", env=_env(real_account, tmp_path / "data"))
    try:
        assert url, printed + proc.stderr.read() if proc.poll() is not None else printed
        used = real_account.usage()  # before this test reads the real account itself
        copy_token = state.with_name("api_token").read_text().strip()
        assert copy_token != real_account.api_token
        copied, real = _schema(url, copy_token), _schema(real_account.base_url, real_account.api_token)
        assert copied == real
        assert {f["field_name"] for f in copied["fields"]["person"] if f["is_custom_field"]} == {"Trades"}
        assert [u["email"] for u in copied["users"]] == [u["email"] for u in REAL_USERS]
        # the copy is another company: the migration's account guard tells them apart
        with PipedriveClient(url, copy_token) as c, PipedriveClient(real_account.base_url, real_account.api_token) as r:
            assert c.account() != r.account()
            assert c.me().email == "dana@city-works.example"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    printed += out + err
    cost = read_cost()
    assert f"costing {cost} tokens of its daily budget of 750,000 (plan premium, 5 seats" in printed
    assert f"spent {cost} tokens" in printed
    assert "3 users, 2 pipelines, 8 stages, 3 custom fields (5 options), 7 activity types" in printed
    assert "plan premium, 5 seats" in printed  # the copied account's settings, not the sandbox default
    assert real_account.api_token not in printed
    assert used["tokens_today"] == cost  # exactly the reads it announced
    changed = [op for op, n in used["operations"].items() if n != before.get(op)]
    assert changed and all(op.startswith("get") for op in changed), changed


@pytest.mark.slow
def test_a_no_reads_nothing_and_starts_nothing(real_account, tmp_path):
    state = tmp_path / "copy" / "state.sqlite"
    done = subprocess.run([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0", "--state",
                           str(state), "--from-account"], input="n\n", capture_output=True, text=True, cwd=REPO,
                          env=_env(real_account, tmp_path / "data"), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"costing {read_cost()} tokens" in done.stdout
    assert "stopped before reading anything" in done.stderr
    assert real_account.usage()["tokens_today"] == 0
    assert not state.exists()
    assert real_account.api_token not in done.stdout + done.stderr


@pytest.mark.slow
def test_the_copy_never_overwrites_a_saved_account(real_account, tmp_path):
    state = tmp_path / "copy" / "state.sqlite"
    with SandboxServer(state_path=state):
        pass
    done = subprocess.run([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0", "--state",
                           str(state), "--from-account", "--yes"], capture_output=True, text=True, cwd=REPO,
                          env=_env(real_account, tmp_path / "data"), timeout=60)
    assert done.returncode == 2
    assert "already holds one" in done.stderr and "--state" in done.stderr
    assert real_account.usage()["tokens_today"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("change, said", [
    ({"PIPEDRIVE_BASE_URL": ""}, "PIPEDRIVE_BASE_URL is not set"),
    ({"PIPEDRIVE_API_TOKEN": "0123456789abcdef-not-this-accounts"}, "refused the API token"),
])
def test_a_source_account_it_cannot_read_is_named(real_account, tmp_path, change, said):
    env = {**_env(real_account, tmp_path / "data"), **change}
    done = subprocess.run([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0", "--state",
                           str(tmp_path / "copy" / "state.sqlite"), "--from-account", "--yes"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    for token in (real_account.api_token, change.get("PIPEDRIVE_API_TOKEN") or real_account.api_token):
        assert token not in done.stdout + done.stderr
    assert not (tmp_path / "copy").exists()


def test_a_copied_schema_still_matches_the_spec(specs, real_account):
    """What the copy serves (pipelines, stages, fields, activity types) validates against the official files."""
    import httpx

    from flitstack_dagster.sandbox.seed import install_schema

    from .test_contract import V1, V2, check

    with PipedriveClient(real_account.base_url, real_account.api_token, plan="premium") as c:
        parts = read_account_schema(c)
    with SandboxServer(state_path=None, plan="premium") as copy, \
            httpx.Client(base_url=copy.base_url, headers={"x-api-token": copy.api_token}, timeout=10) as client:
        install_schema(copy.store, pipelines=parts.pipelines, stages=parts.stages, fields=parts.fields,
                       activity_types=parts.activity_types)
        for path in ("/pipelines", "/stages", "/dealFields", "/personFields", "/organizationFields", "/activityFields"):
            body = check(specs, client.get(f"/api/v2{path}", params={"limit": 500}), V2, path, "get")
            assert body["data"], path
        check(specs, client.get("/v1/activityTypes"), V1, "/activityTypes", "get")
