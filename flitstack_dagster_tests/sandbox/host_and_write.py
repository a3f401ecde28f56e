"""A Python process that hosts the sandbox in-process (as `flitstack demo` does) and writes to it over
HTTP until it is killed, printing one line per acknowledged write, so a test can kill the whole
process group at any moment and check that every acknowledged write survived.

    python -m flitstack_dagster_tests.sandbox.host_and_write STATE_PATH

Prints `url <base url>` first, then `ack <kind> <id> <tokens left>` after each 2xx answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from flitstack_dagster.sandbox.server import SandboxServer


def main(state: Path) -> None:
    # extended signals: each answer says the tokens left, which the test checks survive a kill
    with SandboxServer(state_path=state, plan="ultimate", seats=5, signals="extended") as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=10) as c:
        print(f"url {sb.base_url}", flush=True)
        for label, r in writes(c):
            r.raise_for_status()
            print(f"ack {label} {r.json()['data']['id']} {r.headers['x-daily-tokens-left']}", flush=True)


def writes(c: httpx.Client):
    """Endless writes of every kind the loader makes: organizations, persons, deals (created, then
    renamed), notes and files; yields (what, answer) and reads each answer's id once acknowledged."""
    n = 0
    while True:
        n += 1
        org = yield from _one("organizations", c.post("/api/v2/organizations", json={"name": f"Org {n}"}))
        yield from _one("persons", c.post("/api/v2/persons", json={"name": f"Person {n}", "org_id": org}))
        deal = yield from _one("deals", c.post("/api/v2/deals", json={"title": f"Deal {n}", "org_id": org}))
        yield from _one("renamed-deals", c.patch(f"/api/v2/deals/{deal}", json={"title": f"Deal {n} renamed"}))
        yield from _one("notes", c.post("/v1/notes", json={"content": f"Note {n}", "deal_id": deal}))
        if n % 3 == 0:
            yield from _one("files", c.post("/v1/files", files={"file": (f"f{n}.txt", f"body {n}".encode())},
                                            data={"deal_id": str(deal)}))


def _one(label: str, r: httpx.Response):
    yield label, r
    return r.json()["data"]["id"]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
