"""Fixtures for the sandbox tests: the official OpenAPI specs (parsed once per session) converted to
JSON Schema, and real SandboxServer instances on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from flitstack_dagster.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parents[2]


OPENAPI_DIR = REPO / "flitstack_dagster_tests" / "openapi"  # the pinned official files (see its README)


# Spec quirks, each with its reason: properties Pipedrive sends as null whose schema lacks
# `nullable: true`. A record's unset keys come back as null (the v2 schemas mark only some of them
# nullable, e.g. deal `origin_id`, stage `days_to_rotten`); `next_cursor` is declared nullable on some
# operations only and documented as "null if you have reached the end" everywhere.
_UNSET_LINK = "an optional link to another record; null when the record is linked to none"
_UNSET_VALUE = "an optional value; null until it is set"
NULLABLE_ERRATA: dict[str, str] = {
    "next_cursor": "null on the last page, as the spec's own descriptions say",
    **dict.fromkeys(("org_id", "person_id", "deal_id", "lead_id", "project_id", "task_id", "activity_id",
                     "product_id", "last_update_user_id", "picture_id"), _UNSET_LINK),
    **dict.fromkeys(("deal", "person", "organization", "deal_name", "org_name", "person_name"),
                    "the linked record's summary; null with no link"),
    **dict.fromkeys(("expected_close_date", "due_date", "won_time", "lost_time", "stage_change_time",
                     "marked_as_done_time", "update_time"), "a time of an event that has not happened yet"),
    **dict.fromkeys(("first_name", "last_name", "due_time", "duration", "note", "birthday", "im", "job_title",
                     "notes", "address", "postal_address", "location", "priority", "public_description", "color",
                     "conference_meeting_client", "conference_meeting_id", "conference_meeting_url"), _UNSET_VALUE),
}

_SKIP_KEYS = {"nullable", "example", "examples", "discriminator", "xml", "externalDocs", "deprecated",
              "readOnly", "writeOnly", "description", "title"}


class Spec:
    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self._cache: dict[tuple, dict] = {}

    def _ref(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def convert(self, node: Any, depth: int = 0) -> Any:
        """OpenAPI 3.0 schema -> JSON Schema: inline $refs, turn `nullable` into a null type."""
        if depth > 40:
            return {}
        if isinstance(node, list):
            return [self.convert(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self.convert(self._ref(node["$ref"]), depth + 1)
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k in _SKIP_KEYS or k.startswith("x-"):
                continue
            if k == "properties" and isinstance(v, dict):
                out[k] = {name: self.convert({**s, "nullable": True} if name in NULLABLE_ERRATA else s, depth + 1)
                          for name, s in v.items()}
            elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
                out[k] = self.convert(v, depth + 1)
            elif k in ("allOf", "anyOf", "oneOf"):
                out[k] = [self.convert(s, depth + 1) for s in v]
            else:
                out[k] = v
        if node.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"] + ["null"]
                if "enum" in out:
                    out["enum"] = list(out["enum"]) + [None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def response_schema(self, path: str, method: str, status: str = "200") -> dict:
        key = (path, method, status)
        if key not in self._cache:
            op = self.doc["paths"][path][method.lower()]
            content = op["responses"][status]["content"]["application/json"]
            self._cache[key] = self.convert(content["schema"])
        return self._cache[key]

    def token_cost(self, path: str, method: str) -> int:
        return self.doc["paths"][path][method.lower()]["x-token-cost"]


@pytest.fixture(scope="session")
def specs() -> dict[str, Spec]:
    d = OPENAPI_DIR
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = {}
    for v in ("v1", "v2"):
        with open(d / f"pipedrive-{v}-openapi.yml", encoding="utf-8") as fh:
            out[v] = Spec(yaml.load(fh, Loader=loader))
    return out


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(state_path=tmp_path / "state.json", plan="ultimate", seats=5) as sb:
        yield sb


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, headers={"x-api-token": sandbox.api_token}, timeout=10) as c:
        yield c
