"""A Dagster step stopped by its Pipedrive settings or account fails with the sentence saying what to
fix as its Failure description (what the UI shows), not a stack trace; the token never appears."""

from __future__ import annotations

import socket

import dagster as dg
import pytest

from flitstack_dagster.defs.pipedrive_resource import PipedriveResource, pipedrive_from_env
from flitstack_dagster.sandbox.server import SandboxServer

TOKEN = "aa11bb22cc33dd44ee55ff6600112233445566ab"


@dg.op
def who_am_i(pipedrive: PipedriveResource) -> int:
    with pipedrive.client() as client:
        return client.me().company_id


@dg.job
def probe_job():
    who_am_i()


def failure_of(resource: PipedriveResource) -> str:
    """The step's failure description, after checking it is an intentional Failure with no cause attached."""
    result = probe_job.execute_in_process(resources={"pipedrive": resource}, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    assert data.user_failure_data is not None, data.error
    assert data.error.cause is None and data.error.context is None  # no original exception chained under it
    description = data.user_failure_data.description
    assert TOKEN not in description
    return description


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    with SandboxServer(state_path=tmp_path_factory.mktemp("sb") / "state.json", plan="lite", seats=1,
                       api_token=TOKEN) as server:
        yield server


def test_a_good_account_still_runs(sb):
    result = probe_job.execute_in_process(resources={"pipedrive": PipedriveResource(base_url=sb.base_url, api_token=TOKEN)})
    assert result.success and result.output_for_node("who_am_i") == sb.snapshot()["account"]["company_id"]


def test_bad_settings_fail_the_step_with_the_sentence(monkeypatch):
    assert failure_of(PipedriveResource(base_url="yourcompany.pipedrive.com", api_token=TOKEN)) == (
        "PIPEDRIVE_BASE_URL must start with https:// (e.g. https://yourcompany.pipedrive.com)")
    monkeypatch.setenv("PIPEDRIVE_SEATS", "five")
    assert failure_of(PipedriveResource(base_url="https://acme.pipedrive.com", api_token=TOKEN)) == (
        "PIPEDRIVE_SEATS must be a whole number of seats, e.g. 5 (got 'five')")
    assert "must be the company URL alone" in failure_of(
        PipedriveResource(base_url=f"https://acme.pipedrive.com/?api_token={TOKEN}", api_token=TOKEN))


def test_settings_from_the_environment_are_checked_when_the_step_runs(monkeypatch):
    for name in ("PIPEDRIVE_BASE_URL", "PIPEDRIVE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPEDRIVE_PLAN", "gold")
    resource = pipedrive_from_env()  # the code location loads whatever the values
    assert failure_of(resource) == "\n".join([
        "PIPEDRIVE_BASE_URL is not set: set it to your Pipedrive company URL, starting with https://, "
        "e.g. https://yourcompany.pipedrive.com",
        "PIPEDRIVE_API_TOKEN is not set: set it to the API token alone (Pipedrive: Personal preferences > API)",
        "PIPEDRIVE_PLAN must be one of lite, growth, premium, ultimate (or an older plan's name: essential, "
        "advanced, power, enterprise, professional), e.g. growth (got 'gold')",
    ])


def test_a_refused_token_names_the_host(sb):
    host = sb.base_url.split("://")[1]
    description = failure_of(PipedriveResource(base_url=sb.base_url, api_token="b" * 40))
    assert description.startswith(f"Pipedrive at {host} refused the API token: fix PIPEDRIVE_API_TOKEN")


@pytest.mark.slow
def test_an_unreachable_host():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    description = failure_of(PipedriveResource(base_url=f"http://127.0.0.1:{port}", api_token=TOKEN))
    assert description == f"could not reach 127.0.0.1:{port}: check PIPEDRIVE_BASE_URL and your network"
