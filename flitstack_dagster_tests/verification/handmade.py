"""A hand-made migrated run in a real sandbox: a few shaped records of every entity, sent with the
loader's own body builder, recorded in the id map — what verification reads back and compares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from flitstack_dagster.loading.loader import build_body, without_nulls
from flitstack_dagster.loading.marker import marked_file_name
from flitstack_dagster.loading.resolve import Registry, Resolver
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.mapping.provision import ensure_registry
from flitstack_dagster.shaping.accounting import RECON_SCHEMA
from flitstack_dagster.shaping.common import FILES_SCHEMA, OUTPUT_SCHEMA
from flitstack_dagster.verification.verify import account_of

RUN = "sample-handmade"


@dataclass
class Handmade:
    con: duckdb.DuckDBPyConnection
    ids: dict[str, int]  # source id -> pipedrive id
    keys: dict[str, str]  # custom field name -> key


def _row(entity, sid, kind, payload, **refs) -> dict[str, Any]:
    row = {"run_key": RUN, "source_entity": entity, "source_id": sid, "origin_id": sid, "kind": kind,
           "payload": json.dumps(payload, sort_keys=True), "org_ref": None, "person_ref": None, "deal_ref": None,
           "parent_ref": None, "owner_id": None}
    row.update(refs)
    row["content_hash"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()
    return row


def build(client, tmp: Path) -> Handmade:
    con = duckdb.connect(str(tmp / "v.duckdb"))
    ensure_registry(con)
    account = account_of(client)
    keys: dict[str, str] = {}

    def field(entity, name, ftype, options=None):
        body = {"field_name": name, "field_type": ftype}
        if options:
            body["options"] = [{"label": o} for o in options]
        f = client.create_field(entity, body)
        keys[name] = f.field_code
        opts = json.dumps([{"id": o.id, "label": o.label} for o in f.options or []])
        con.execute("INSERT INTO meta.field_registry VALUES (?, ?, ?, ?, ?, ?, now())",
                    [account, entity, name, f.field_code, ftype, opts])

    for e in ("organization", "person", "deal"):
        field(e, "Novo Source ID", "varchar")
    field("deal", "Novo_Priority__c", "enum", ["Low", "High"])
    field("deal", "Labor_Cost__c", "monetary")
    field("deal", "Ward", "set", ["Ward 1", "Ward 2", "Ward 3"])
    field("organization", "Asset_Hierarchy__c", "varchar")
    pipe = client.create_pipeline({"name": "Novo Work Orders"})
    con.execute("INSERT INTO meta.pipeline_registry VALUES (?, 'pipeline', 'Novo Work Orders', ?, NULL, NULL, now())",
                [account, pipe.id])
    for name in ("New", "Completed"):
        st = client.create_stage({"name": name, "pipeline_id": pipe.id})
        con.execute("INSERT INTO meta.pipeline_registry VALUES (?, 'stage', ?, ?, ?, NULL, now())",
                    [account, name, st.id, pipe.id])
    owner = client.me().id
    (tmp / "files").mkdir(exist_ok=True)
    (tmp / "files" / "photo.png").write_bytes(b"\x89PNG fake body")

    rows = {
        "organization": [
            _row("accounts", "account:A-1", "account", {"name": "Springfield ISD", "address": "1 Main St",
                 "Novo Source ID": "account:A-1", "add_time": "2025-08-15T16:05:24Z"}, owner_id=owner),
            _row("assets", "asset:00042", "asset", {"name": "Air Handler", "Novo Source ID": "asset:00042",
                 "Asset_Hierarchy__c": "Main Library > Air Handler"}, owner_id=owner),
        ],
        "org_relationship": [_row("assets", "asset_parent:00042", "account", {"type": "parent"},
                                  org_ref="asset:00042", parent_ref="account:A-1")],
        "person": [_row("contacts", "contact:C1", "technician", {
            "name": "Mark Chen", "Novo Source ID": "contact:C1",
            "emails": [{"value": "mark.chen@springfield.gov", "label": "work", "primary": True}],
            "phones": [{"value": "(217) 555-4954", "label": "mobile", "primary": True}]},
            org_ref="account:A-1", owner_id=owner)],
        "deal": [
            _row("work_orders", "work_order:WO-1", "work_order", {
                "title": "WO-1 · Pothole", "pipeline": "Novo Work Orders", "stage": "New", "status": "open",
                "value": 12.5, "currency": "USD", "Novo_Priority__c": "High", "Ward": ["Ward 1", "Ward 3"],
                "Labor_Cost__c": {"value": 12.5, "currency": "USD"}, "Novo Source ID": "work_order:WO-1",
                "lost_reason": None}, org_ref="asset:00042", person_ref="contact:C1", owner_id=owner),
            _row("work_orders", "work_order:WO-2", "work_order", {
                "title": "WO-2 · Boiler", "pipeline": "Novo Work Orders", "stage": "Completed", "status": "won",
                "won_time": "2026-10-01T10:00:00Z", "value": 0.0, "Novo_Priority__c": "Low",
                "Novo Source ID": "work_order:WO-2"}, org_ref="account:A-1", owner_id=owner),
        ],
        "activity": [_row("labor", "labor:100001", "labor", {
            "subject": "Labor: 2.5 h Regular", "type": "task", "done": True, "due_date": "2026-11-09",
            "due_time": "17:30", "duration": "02:30", "note": "<b>Rate:</b> 29.88<br><b>Notes:</b> Cleanup<br>"},
            deal_ref="work_order:WO-1", owner_id=owner)],
        "note": [_row("status_log", "status_log:SL1", "status_change", {
            "content": "Status changed to <b>New</b> by Mary &amp; Co<br>", "add_time": "2026-09-08T12:35:00Z"},
            deal_ref="work_order:WO-1")],
        "file": [{**_row("attachments", "attachment:ATT-1", "work_order", {"file_name": "photo.png"},
                         deal_ref="work_order:WO-1"),
                  "body_path": "files/photo.png", "size": 14, "sha256": "x", "file_name": "photo.png",
                  "content_type": "image/png", "decision": "load"}],
    }
    con.execute("CREATE SCHEMA IF NOT EXISTS shaped")
    for entity, table in ENTITIES.shaped_tables.items():
        schema = FILES_SCHEMA if entity == "file" else OUTPUT_SCHEMA
        df = pl.DataFrame(rows.get(entity, []), schema=schema)
        con.register("_f", df)
        con.execute(f"CREATE TABLE shaped.{table} AS SELECT * FROM _f")
        con.unregister("_f")

    recon = [{"run_key": RUN, "file": f"{r['source_entity']}.csv", "row_number": i, "source_id": r["source_id"],
              "outcome": "loaded", "targets": ENTITIES.shaped_tables[e], "records": 1, "reason_code": None, "message": None}
             for e, rs in rows.items() for i, r in enumerate(rs, 1)]
    recon.append({"run_key": RUN, "file": "workflow_rules.json", "row_number": 1, "source_id": "workflow_rule:1",
                  "outcome": "not_migrated", "targets": None, "records": 0, "reason_code": "workflow_rules_not_migrated",
                  "message": "rebuilt in Pipedrive"})
    con.register("_r", pl.DataFrame(recon, schema=RECON_SCHEMA))
    con.execute("CREATE TABLE shaped.reconciliation AS SELECT * FROM _r")
    con.unregister("_r")

    store = LoadStore(con)
    resolver = Resolver(Registry.load(con, account), {})
    ids: dict[str, int] = {}
    for entity in ENTITIES.shaped_tables:
        for row in rows.get(entity, []):
            body = build_body(entity, resolver, row)
            if entity == "file":
                _, pid, _ = client.upload_file(tmp / row["body_path"],
                                               file_name=marked_file_name(entity, row["source_id"], row["file_name"]),
                                               content_type="image/png", deal_id=body.get("deal_id"))
            else:
                name = "organization_relationship" if entity == "org_relationship" else entity
                pid = int(client.create(name, without_nulls(body)).id)
            store.record(RUN, entity, row["source_id"], "create", pid, content_hash=row["content_hash"],
                         payload=body, after=body)
            ids[row["source_id"]] = pid
            if entity in ("organization", "person", "deal"):
                resolver.id_maps.setdefault(entity, {})[row["source_id"]] = pid
    return Handmade(con, ids, keys)
