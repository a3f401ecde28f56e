"""`flitstack sandbox --users users.csv`: a customer's user list becomes the sandbox account's users
(so owner resolution is rehearsed against it); a bad file is named with its row and column."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.sandbox.seed_users import UsersFileError, read_users_csv
from flitstack_dagster_tests.kit import REPO, start_sandbox_cli

GOOD = ("name,email,active_flag,is_admin\n"
        "Rosa Diaz,rosa.diaz@metro-utility.example,true,true\n"
        "Ken Ito,ken.ito@metro-utility.example,yes,\n"
        "\n"
        "Former Tech,former@metro-utility.example,false,no\n")


def _csv(tmp_path: Path, text: str, name: str = "users.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_good_file_gives_users_in_the_user_shape(tmp_path):
    users = read_users_csv(_csv(tmp_path, GOOD))
    assert users == [
        {"id": 1, "name": "Rosa Diaz", "email": "rosa.diaz@metro-utility.example", "active_flag": True, "is_admin": True},
        {"id": 2, "name": "Ken Ito", "email": "ken.ito@metro-utility.example", "active_flag": True, "is_admin": False},
        {"id": 3, "name": "Former Tech", "email": "former@metro-utility.example", "active_flag": False,
         "is_admin": False},
    ]


def test_given_ids_are_kept_and_the_rest_numbered_after_them(tmp_path):
    users = read_users_csv(_csv(tmp_path, "id,email,name,is_admin\n900,a@x.example,A,1\n,b@x.example,B,0\n"))
    assert [(u["id"], u["name"]) for u in users] == [(900, "A"), (901, "B")]


@pytest.mark.parametrize("text, where", [
    ("name,email,is_admin\nA,a@x.example,true\nB,not-an-email,false\n", "row 2, column email"),
    ("name,email,is_admin\nA,a@x.example,maybe\n", "row 1, column is_admin"),
    ("name,email,is_admin\n,a@x.example,true\n", "row 1, column name"),
    ("name,email,is_admin\nA,a@x.example,true\nB,A@X.example,false\n", "row 2, column email"),
    ("name,email,is_admin,id\nA,a@x.example,true,-4\n", "row 1, column id"),
    ("name,email,is_admin,id\nA,a@x.example,true,3\nB,b@x.example,false,3\n", "row 2, column id"),
    ("name,email,is_admin\nA,a@x.example,true,extra\n", "row 1, column 4"),
    ("name,email,phone\nA,a@x.example,555\n", "header row, column 3"),
    ("name,is_admin\nA,true\n", "no 'email' column"),
    ("name,email\nA,a@x.example\n", "no row has is_admin"),
    ("name,email,is_admin\n", "no user rows"),
])
def test_a_bad_file_is_named_with_its_row_and_column(tmp_path, text, where):
    with pytest.raises(UsersFileError) as e:
        read_users_csv(_csv(tmp_path, text, "staff.csv"))
    assert str(e.value).startswith("staff.csv: ") and where in str(e.value), str(e.value)


@pytest.mark.slow
def test_the_sandbox_serves_the_files_users(tmp_path):
    state = tmp_path / "sb" / "state.sqlite"
    proc, printed, url = start_sandbox_cli(state, "--users", str(_csv(tmp_path, GOOD)))
    try:
        assert url, printed
        assert "3 users from users.csv" in printed
        token = state.with_name("api_token").read_text().strip()
        with PipedriveClient(url, token) as c:
            users = c.list_users()
            me = c.me()
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert [(u.name, u.email, u.active_flag, bool(u.is_admin)) for u in users] == [
        ("Rosa Diaz", "rosa.diaz@metro-utility.example", True, True),
        ("Ken Ito", "ken.ito@metro-utility.example", True, False),
        ("Former Tech", "former@metro-utility.example", False, False)]
    assert me.email == "rosa.diaz@metro-utility.example" and me.is_you


def test_a_bad_file_stops_the_command_before_it_starts(tmp_path):
    bad = _csv(tmp_path, "name,email,is_admin\nA,a@x.example,true\nB,b@,false\n")
    done = subprocess.run([sys.executable, "-m", "flitstack_dagster.cli", "sandbox", "--port", "0", "--state",
                           str(tmp_path / "sb" / "state.sqlite"), "--users", str(bad)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: users.csv: row 2, column email: 'b@' is not an email address")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sb").exists()


def test_owner_resolution_rehearses_with_the_files_users(tmp_path):
    """Technicians resolve to the CSV's users by email over the sandbox's API; an inactive one falls back."""
    import polars as pl

    from flitstack_dagster.mapping.audit import read_users
    from flitstack_dagster.mapping.owners import resolve_owners
    from flitstack_dagster.sandbox.seed import install_users
    from flitstack_dagster.sandbox.server import SandboxServer

    users = read_users_csv(_csv(tmp_path, "id,name,email,is_admin,active_flag\n"
                                          "41,Rosa Diaz,rosa.diaz@metro-utility.example,true,true\n"
                                          "42,Ken Ito,Ken.Ito@metro-utility.example,false,true\n"
                                          "43,Former Tech,former@metro-utility.example,false,false\n"))
    contacts = pl.DataFrame([("C1", "Ken", "Ito", " ken.ito@METRO-utility.example", "Technician"),
                             ("C2", "Former", "Tech", "former@metro-utility.example", "Technician"),
                             ("C3", "New", "Hire", "new@metro-utility.example", "Technician")],
                            schema=["contact_id", "first_name", "last_name", "email", "role"], orient="row")
    with SandboxServer(state_path=None) as sb:
        install_users(sb.store, users)
        with PipedriveClient(sb.base_url, sb.api_token) as c:
            resolved = resolve_owners(contacts, None, read_users(c))
    assert [(r.contact_id, r.owner_user_id, r.match) for r in resolved.rows] == [
        ("C1", 42, "email"), ("C2", 41, "fallback"), ("C3", 41, "fallback")]
    assert "inactive" in resolved.rows[1].reason


def test_the_admin_channel_replaces_the_users_and_they_survive_a_restart(tmp_path):
    import httpx

    from flitstack_dagster.sandbox.server import SandboxServer

    state = tmp_path / "state.sqlite"
    users = [{"id": 501, "name": "Ana Lima", "email": "ana@x.example", "is_admin": False, "active_flag": True},
             {"id": 502, "name": "Bo Chen", "email": "bo@x.example", "is_admin": True, "active_flag": True}]
    with SandboxServer(state_path=state) as sb:
        token = sb.api_token
        with httpx.Client(base_url=sb.base_url, headers={"x-api-token": token}, timeout=10) as c:
            for bad in ({"users": []}, {"users": [{"id": "501", "name": "A", "email": "a@x.example"}]},
                        {"users": [users[0]]}, {"users": [users[1], users[1]]}, {"users": users, "extra": 1}):
                r = c.put("/_sandbox/users", json=bad)
                assert r.status_code == 400 and r.json()["success"] is False, (bad, r.text)
            assert httpx.put(sb.base_url + "/_sandbox/users", json={"users": users}).status_code == 401
            assert len(c.get("/v1/users").json()["data"]) == 5  # the refused bodies changed nothing
            assert c.put("/_sandbox/users", json={"users": users}).status_code == 200
    with SandboxServer(state_path=state) as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": token}, timeout=10) as c:
        assert [(u["id"], u["is_you"]) for u in c.get("/v1/users").json()["data"]] == [(502, True), (501, False)]
        assert c.get("/v1/users/me").json()["data"]["email"] == "bo@x.example"


def test_seeded_users_still_match_the_spec(specs, sandbox, client, tmp_path):
    from flitstack_dagster.sandbox.seed import install_users

    from .test_contract import V1, check

    install_users(sandbox.store, read_users_csv(_csv(tmp_path, GOOD)))
    listed = check(specs, client.get("/v1/users"), V1, "/users", "get")["data"]
    assert [u["email"] for u in listed] == ["rosa.diaz@metro-utility.example", "ken.ito@metro-utility.example",
                                            "former@metro-utility.example"]
    me = check(specs, client.get("/v1/users/me"), V1, "/users/me", "get")["data"]
    assert me["email"] == "rosa.diaz@metro-utility.example" and me["company_domain"]
    one = check(specs, client.get(f"/v1/users/{listed[2]['id']}"), V1, "/users/{id}", "get")["data"]
    assert one["active_flag"] is False
