"""`flitstack doctor` in a subprocess against the local Pipedrive sandbox over real HTTP: it passes on a
good account and names what to fix on a bad one, one line per check, exit 0 only when all pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.pipedrive.account import AccountIdentity
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.novo.runs import pin_account
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.test_cli_errors import TOKEN, flitstack, free_port

CHECKS = ["settings", "reachable", "token", "account", "plan", "seats", "budget", "custom fields"]


@pytest.fixture
def sb(tmp_path):
    with SandboxServer(state_path=tmp_path / "sb" / "state.json", plan="lite", seats=1, api_token=TOKEN) as server:
        yield server


def doctor(sb: SandboxServer | None, tmp_path: Path, **settings: str):
    env = {"FLITSTACK_DATA_DIR": str(tmp_path / "data"), "PIPEDRIVE_API_TOKEN": TOKEN, "PIPEDRIVE_PLAN": "lite",
           "PIPEDRIVE_SEATS": "1", **({"PIPEDRIVE_BASE_URL": sb.base_url} if sb else {}), **settings}
    proc = flitstack("doctor", env=env)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and TOKEN not in text, text
    lines = proc.stdout.splitlines()
    return proc.returncode, {ln[6:].split(":")[0]: ln for ln in lines if ln[:4] in ("ok  ", "FAIL")}, lines


def test_a_good_account_passes_every_check(sb, tmp_path):
    code, checks, lines = doctor(sb, tmp_path)
    assert code == 0, lines
    assert list(checks) == CHECKS and all(line.startswith("ok    ") for line in checks.values()), lines
    assert lines[-1] == "all checks passed"
    host = sb.base_url.split("://")[1]
    assert f"{host} answers as Pipedrive's API" in checks["reachable"]
    assert f"domain {sb.company_domain}" in checks["account"]
    assert "not reported by the API; using PIPEDRIVE_PLAN=lite (burst limit 20 requests per 2 s" in checks["plan"]
    assert "not reported by the API; using PIPEDRIVE_SEATS=1" in checks["seats"]
    assert "left today (x-daily-requests-left)" in checks["budget"] and "30,000 tokens a day" in checks["budget"]
    assert "of the lite plan's 30 used" in checks["custom fields"]


def test_a_wrong_token_names_the_host_that_refused_it(sb, tmp_path):
    code, checks, lines = doctor(sb, tmp_path, PIPEDRIVE_API_TOKEN="wrong-" + TOKEN[6:])
    host = sb.base_url.split("://")[1]
    assert code == 1 and list(checks) == ["settings", "reachable", "token"], lines
    assert checks["token"].startswith(f"FAIL  token: Pipedrive at {host} refused the API token: fix PIPEDRIVE_API_TOKEN")
    assert "wrong-" not in "\n".join(lines)


def test_an_unreachable_port(tmp_path):
    port = free_port()
    code, checks, lines = doctor(None, tmp_path, PIPEDRIVE_BASE_URL=f"http://127.0.0.1:{port}")
    assert code == 1 and list(checks) == ["settings", "reachable"], lines
    assert checks["reachable"] == (f"FAIL  reachable: could not reach 127.0.0.1:{port}: check PIPEDRIVE_BASE_URL "
                                   "and your network")


def test_a_url_that_is_not_pipedrives_api(sb, tmp_path):
    code, checks, lines = doctor(sb, tmp_path, PIPEDRIVE_BASE_URL=sb.base_url + "/api/v3")
    assert code == 1 and checks["Pipedrive API"].startswith("FAIL  Pipedrive API: ")
    assert "is not a Pipedrive API" in checks["Pipedrive API"], lines


def test_bad_settings_are_each_a_failed_line(tmp_path):
    code, _, lines = doctor(None, tmp_path, PIPEDRIVE_BASE_URL="acme.pipedrive.com", PIPEDRIVE_SEATS="five")
    assert code == 1 and lines[:2] == [
        "FAIL  settings: PIPEDRIVE_BASE_URL must start with https:// (e.g. https://yourcompany.pipedrive.com)",
        "FAIL  settings: PIPEDRIVE_SEATS must be a whole number of seats, e.g. 5 (got 'five')",
    ]


def test_a_plan_that_does_not_match_the_burst_limit(sb, tmp_path):
    code, checks, lines = doctor(sb, tmp_path, PIPEDRIVE_PLAN="ultimate")
    assert code == 1 and checks["plan"].startswith("FAIL  plan: not reported by the API, but its burst limit (20 "), lines
    assert "set PIPEDRIVE_PLAN=lite" in checks["plan"]
    # an ultimate budget's reserve is more than a lite account has in all: a load would stop at once
    assert checks["budget"].startswith("FAIL  budget: Pipedrive reports 29,9") and "42,000 kept in reserve" in checks["budget"]
    assert all(line.startswith("ok") for name, line in checks.items() if name not in ("plan", "budget")), lines


def test_a_spent_budget(sb, tmp_path):
    sb.set_tokens_spent(30_000)
    code, checks, lines = doctor(sb, tmp_path)
    assert code == 1 and checks["budget"].startswith("FAIL  budget: Pipedrive refused the request"), lines
    assert "The budget resets at" in checks["budget"]


@pytest.mark.slow
def test_no_custom_field_headroom(sb, tmp_path):
    with PipedriveClient(sb.base_url, TOKEN, plan="lite", seats=1) as client:
        for i in range(30):  # the lite plan's cap
            client.create_field(("deal", "person", "organization")[i % 3], {"field_name": f"Field {i}", "field_type": "varchar"})
    code, checks, lines = doctor(sb, tmp_path)
    assert code == 1, lines
    assert checks["custom fields"] == (
        "FAIL  custom fields: 30 of the lite plan's 30 are used (deal 10, person 10, organization 10, activity 0): "
        "provisioning cannot add any; remove unused custom fields in Pipedrive or upgrade the plan")


def test_runs_loaded_into_another_company(sb, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with duck.connect(data / "flitstack.duckdb") as con:
        pin_account(con, "full-acme-1", AccountIdentity(company_id=1, company_domain="other-company"))
    code, checks, lines = doctor(sb, tmp_path)
    assert code == 1 and checks["runs"].startswith("FAIL  runs: full-acme-1 (other-company) loaded into another "
                                                   "Pipedrive company"), lines
