"""Property-based contract run: schemathesis generates requests from the pinned official Pipedrive
OpenAPI files for every operation the sandbox serves, sends them over real HTTP, and checks that the
sandbox never answers with a server error, that every refusal has Pipedrive's error shape, and that
every success validates against the operation's response schema (with the spec quirks listed in
conftest.py, each with its reason).

CI runs a small example budget (`FLITSTACK_CONTRACT_EXAMPLES`, default 6 per operation);
benchmarks/contract_run.py runs a large one and writes its report.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import OPENAPI_DIR

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FLITSTACK_CONTRACT_EXAMPLES", "6"))
PREFIX = {"v1": "/v1", "v2": "/api/v2"}


def sandbox_operations(sandbox, api: str) -> list:
    """The spec's operations the sandbox serves: its router answers the templated path with a route of
    the same shape (not, say, GET /deals/search taken as GET /deals/{id} with id "search")."""
    schema = schemathesis.openapi.from_path(OPENAPI_DIR / f"pipedrive-{api}-openapi.yml")
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        route = sandbox.sandbox.router.match(op.method.upper(), PREFIX[api] + op.path)
        if route is not None and all(v.startswith("{") for v in route[1].values()):
            ops.append(op)
    return ops


def seed(client) -> None:
    """A few records of each kind, so generated ids (small integers first) reach real records too."""
    for n in range(3):
        org = client.post("/api/v2/organizations", json={"name": f"Org {n}"}).json()["data"]["id"]
        person = client.post("/api/v2/persons", json={"name": f"Person {n}", "org_id": org}).json()["data"]["id"]
        deal = client.post("/api/v2/deals", json={"title": f"Deal {n}", "person_id": person}).json()["data"]["id"]
        client.post("/api/v2/activities", json={"subject": f"Act {n}", "deal_id": deal})
        client.post("/v1/notes", json={"content": f"Note {n}", "deal_id": deal})


def call(case, base_url: str, session: requests.Session) -> schemathesis.Response:
    """Send the case, waiting out the burst limit (a 429 is the sandbox doing its job, not a finding)."""
    for _ in range(20):
        resp = case.call(base_url=base_url, session=session, timeout=30)
        if resp.status_code != 429:
            return resp
        time.sleep(float((resp.headers.get("retry-after") or ["1"])[0]))
    raise AssertionError(f"{case.operation.label}: still rate limited after 20 waits")


def run_operation(op, spec, base_url: str, session: requests.Session, findings: dict[str, list],
                  statuses: Counter, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def one(case) -> None:
        resp = call(case, base_url, session)
        statuses[resp.status_code // 100] += 1
        where = f"{op.method.upper()} {op.path}"
        if resp.status_code >= 500:
            findings["server errors"].append(f"{where} -> {resp.status_code}: {resp.text[:300]}")
            return
        if "json" not in (resp.headers.get("content-type") or [""])[0]:
            return  # a file download
        body = resp.json()
        if resp.status_code >= 400:
            if not (body.get("success") is False and isinstance(body.get("error"), str)):
                findings["error shapes"].append(f"{where} -> {resp.status_code}: {resp.text[:300]}")
            return
        for e in jsonschema.Draft7Validator(spec.response_schema(op.path, op.method)).iter_errors(body):
            findings["schema violations"].append(f"{where}: {e.message} at {list(e.absolute_path)}")

    one()


def contract_run(sandbox, spec, api: str, examples: int) -> tuple[list, Counter, dict[str, list]]:
    """Every sandbox operation of `api` with `examples` generated requests each: (operations, answers
    by status class, findings)."""
    ops = sandbox_operations(sandbox, api)
    findings: dict[str, list] = {"server errors": [], "error shapes": [], "schema violations": []}
    statuses: Counter = Counter()
    with requests.Session() as session:
        session.headers["x-api-token"] = sandbox.api_token
        for op in ops:
            run_operation(op, spec, sandbox.base_url + PREFIX[api], session, findings, statuses, examples)
    return ops, statuses, findings


@pytest.mark.parametrize("api", ["v2", "v1"])
def test_generated_requests_never_break_the_sandbox(specs, sandbox, client, api) -> None:
    seed(client)
    ops, statuses, findings = contract_run(sandbox, specs[api], api, EXAMPLES)
    assert len(ops) >= (30 if api == "v2" else 15)  # the run covers the sandbox's routes, not a few
    assert statuses[2] > 0 and statuses[4] > 0  # both successes and refusals were exercised
    assert not any(findings.values()), json.dumps(findings, indent=1)
    for seg in ("deals", "organizations", "persons", "activities"):  # the account still lists everything
        assert listed(client, f"/api/v2/{seg}").status_code == 200


def listed(client, path: str):
    """GET `path` once the burst window the run filled lets it through."""
    for _ in range(20):
        resp = client.get(path, params={"limit": 500})
        if resp.status_code != 429:
            return resp
        time.sleep(float(resp.headers.get("retry-after", "1")))
    return resp
