"""A record Pipedrive refuses (validation) is set aside with Pipedrive's message; the rest load."""

from __future__ import annotations

import json

import duckdb

from flitstack_dagster.loading.loader import load_entity
from flitstack_dagster.loading.resolve import CustomField, Registry, Resolver
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.sandbox.server import SandboxServer


def test_a_refused_record_is_set_aside_and_the_load_goes_on():
    with SandboxServer() as sb, PipedriveClient(sb.base_url, sb.api_token) as client:
        field = client.create_field("organization", {"field_name": "Tag", "field_type": "varchar"})
        key = field.field_code
        registry = Registry({"organization": {"Tag": CustomField(key, "varchar")}}, {}, {}, {})
        con = duckdb.connect()
        store = LoadStore(con)
        rows = [
            {"source_id": f"account:A{i}", "content_hash": str(i), "owner_id": None,
             "payload": json.dumps({"name": f"Org {i}", "Tag": ("x" * 300) if i == 2 else "ok"})}
            for i in range(1, 4)
        ]
        result = load_entity(client, store, Resolver(registry, {}), "organization", rows, "full-x")
        assert result.created == 2
        assert [(s["source_id"], s["reason_code"]) for s in result.set_aside] == [("account:A2", "rejected_by_pipedrive")]
        assert "255" in result.set_aside[0]["message"]
        saved = con.execute("SELECT source_id, reason_code FROM meta.load_set_aside").fetchall()
        assert saved == [("account:A2", "rejected_by_pipedrive")]
        assert sb.api_token not in result.set_aside[0]["message"]


def test_a_404_that_is_not_pipedrives_record_not_found_stops_the_load_instead_of_setting_records_aside():
    import pytest

    from flitstack_dagster.pipedrive.errors import PipedriveError
    from flitstack_dagster_tests.loading.http_stubs import proxy

    with SandboxServer() as sb, proxy(sb.base_url, html_404_for=("/api/v2/organizations",)) as gateway, \
            PipedriveClient(gateway.url, sb.api_token) as client:
        con = duckdb.connect()
        store = LoadStore(con)
        rows = [{"source_id": f"account:A{i}", "content_hash": str(i), "owner_id": None,
                 "payload": json.dumps({"name": f"Org {i}"})} for i in range(1, 4)]
        with pytest.raises(PipedriveError) as refused:
            load_entity(client, store, Resolver(Registry({}, {}, {}, {}), {}), "organization", rows, "full-x")
        assert refused.value.status == 404
        assert con.execute("SELECT count(*) FROM meta.load_set_aside").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM meta.id_map").fetchall() == [(0,)]
