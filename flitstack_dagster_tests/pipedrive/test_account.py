"""identify(): which company a base URL and token reach, and refusing what is not Pipedrive's API,
over real HTTP (the sandbox and small local servers standing where Pipedrive should be)."""

from __future__ import annotations

import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.pipedrive.account import NotPipedriveApi, TokenRefused, identify
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.errors import NotFound, PipedriveError
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.loading import http_stubs

ADVICE = "set PIPEDRIVE_BASE_URL to https://<company>.pipedrive.com"


@pytest.fixture(scope="module")
def sb():
    with SandboxServer() as s:
        yield s


def test_identify_names_the_company_and_user_behind_the_token(sb):
    client = PipedriveClient(sb.base_url, sb.api_token)
    me = identify(client)
    acct = sb.snapshot()["account"]
    assert (me.company_id, me.company_domain) == (acct["company_id"], acct["company_domain"])
    assert me.user_id and me.user_email and me.user_name and me.company_name == acct["company_name"]
    assert me.host == f"127.0.0.1:{sb.port}" and me.label == f"{acct['company_domain']} (id {acct['company_id']})"
    assert client.tokens_spent == 2  # one GET /v1/users/me
    # the registry key is the domain, asked once per client
    assert client.account() == acct["company_domain"] and client.account() == acct["company_domain"]
    assert client.tokens_spent == 4


def test_a_path_where_pipedrive_routes_do_not_exist_is_not_a_pipedrive_api(sb):
    with pytest.raises(NotPipedriveApi) as e:
        identify(PipedriveClient(sb.base_url + "/api/v3", sb.api_token))
    assert str(e.value) == (f"{sb.base_url}/api/v3 is not a Pipedrive API: /v1/users/me does not exist there "
                            f"(HTTP 404); {ADVICE}")
    assert isinstance(e.value, UserError)


@pytest.mark.parametrize("make, why", [
    (http_stubs.html_page, "answers HTTP 200 with text/html, not Pipedrive's JSON"),
    (lambda: http_stubs.html_page(404), "answers HTTP 404 with text/html, not Pipedrive's JSON"),
    (http_stubs.login_redirect, "redirects (HTTP 302) to http://127.0.0.1:{port}/auth/login"),
    (http_stubs.foreign_json, "answers HTTP 200 with JSON that is not Pipedrive's success/data envelope"),
])
def test_an_answer_that_is_not_pipedrive_shaped_is_refused(make, why):
    with make() as stub:
        client = PipedriveClient(stub.url, "tok-123secret")
        with pytest.raises(NotPipedriveApi) as e:
            identify(client)
        port = stub.server.server_address[1]
        assert str(e.value) == f"{stub.url} is not a Pipedrive API: /v1/users/me {why.format(port=port)}; {ADVICE}"
        assert "tok-123secret" not in str(e.value) and stub.writes == []


def test_a_refused_token_names_the_host_and_never_the_token(sb):
    wrong = "0123456789abcdef-not-the-token"
    with pytest.raises(TokenRefused) as e:
        identify(PipedriveClient(sb.base_url, wrong))
    assert str(e.value) == (f"Pipedrive at 127.0.0.1:{sb.port} refused the API token: fix PIPEDRIVE_API_TOKEN and "
                            "run the same command again.")
    assert isinstance(e.value, UserError) and isinstance(e.value, PipedriveError) and e.value.status == 401
    # any request, not only the probe
    with pytest.raises(TokenRefused):
        PipedriveClient(sb.base_url, wrong).list_deals().__next__()


def test_a_token_pasted_into_the_url_is_never_echoed():
    with http_stubs.html_page() as stub:
        url = stub.url.replace("http://", "http://user:secret-token-xyz@")
        with pytest.raises(NotPipedriveApi) as e:
            identify(PipedriveClient(url, "tok"))
        assert "secret-token-xyz" not in str(e.value) and str(e.value).startswith(f"{stub.url} is not")


def test_only_pipedrive_s_record_not_found_answer_is_not_found(sb):
    client = PipedriveClient(sb.base_url, sb.api_token)
    with pytest.raises(NotFound):
        client.get_deal(987_654)
    with http_stubs.proxy(sb.base_url, html_404_for=("/api/v2/deals",)) as gw:
        with pytest.raises(PipedriveError) as e:
            PipedriveClient(gw.url, sb.api_token).delete_deal(987_654)
        assert e.value.status == 404 and not isinstance(e.value, NotFound)
    with pytest.raises(PipedriveError) as e:  # the sandbox's unknown-route answer: JSON, but not "not found"
        PipedriveClient(sb.base_url + "/api/v3", sb.api_token).get_deal(1)
    assert e.value.status == 404 and not isinstance(e.value, NotFound)
