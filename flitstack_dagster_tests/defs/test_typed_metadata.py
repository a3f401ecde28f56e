"""Typed metadata everywhere: tables as Dagster tables with a schema, DuckDB tables with their name,
rows and columns, numbers as numbers, paths and URLs as such; Markdown only for documents."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core import duck
from flitstack_dagster.defs.metadata import counts_table, records_table, table, table_facts
from flitstack_dagster.staging.quarantine import FileAccount
from flitstack_dagster_tests.kit import REPO, migrated_through_dagster

# a Markdown table's separator row, with or without spaces and alignment colons
MD_TABLE_ROW = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*\|", re.M)
NUMBER_AS_TEXT = re.compile(r"^-?\d[\d,]*(\.\d+)?$")
PATH_KEYS = {"report", "path", "csv", "parquet", "json", "bundle_path", "reports", "proposal", "approved_file"}


# -- fast: the helpers and the code ------------------------------------------------------------------


def test_nothing_defines_or_imports_the_markdown_table_helper():
    sources = sorted((REPO / "flitstack_dagster").rglob("*.py"))
    assert len(sources) > 50
    assert [p.relative_to(REPO) for p in sources if re.search(r"\bmd_table\b", p.read_text(encoding="utf-8"))] == []


def test_a_duckdb_table_shows_its_name_this_run_s_rows_and_its_column_types():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.stg_x (_run_key VARCHAR, id BIGINT, due DATE, cost DECIMAL(10, 2), ok BOOLEAN)")
    facts = table_facts(con, "staging.stg_x", 7)
    assert facts["dagster/table_name"] == "staging.stg_x" and facts["dagster/row_count"] == 7
    assert [(c.name, c.type) for c in facts["dagster/column_schema"].columns] == [
        ("_run_key", "varchar"), ("id", "bigint"), ("due", "date"), ("cost", "decimal(10,2)"), ("ok", "boolean")]


def test_counts_and_records_are_typed_and_an_empty_table_keeps_its_columns():
    counts = counts_table([("a.csv", 1200), ("b.csv", 3)], "file")
    assert [r.data["rows"] for r in counts.records] == [1200, 3]
    assert {c.name: c.type for c in counts.schema.columns} == {"file": "string", "rows": "int"}
    empty = records_table([], FileAccount)
    assert [c.name for c in empty.schema.columns] == ["file", "raw_rows", "staged_rows", "quarantined_rows", "ok"]
    accounts = records_table([FileAccount("a.csv", 3, 2, 1, True)], FileAccount)
    assert {c.name: c.type for c in accounts.schema.columns}["raw_rows"] == "int"
    assert accounts.records[0].data == {"file": "a.csv", "raw_rows": 3, "staged_rows": 2, "quarantined_rows": 1, "ok": True}


def test_dates_and_decimals_in_a_preview_become_text_cells():
    from datetime import date
    from decimal import Decimal

    preview = table([{"due": date(2026, 1, 2), "cost": Decimal("1.50")}])
    assert preview.records[0].data == {"due": "2026-01-02", "cost": "1.50"}


# -- slow: a run's every materialization and check, as the UI shows them ----------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("typed_metadata")
    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", "4", "--seed", "5", "--out", str(bundle), "--no-mess-log"]) == 0
    with migrated_through_dagster(bundle, root / "data") as m:
        assert m.second.success, [e.message for e in m.second.all_events if e.is_failure]
        shown = {}  # (asset, check or "") -> metadata, the later run's where both ran
        for result in (m.first, m.second):
            for e in result.get_asset_materialization_events():
                shown[(e.asset_key.to_user_string(), "")] = e.materialization.metadata
            for c in result.get_asset_check_evaluations():
                shown[(c.asset_key.to_user_string(), c.check_name)] = c.metadata
        yield m, shown


def _entries(shown):
    return [(where, key, value) for where, metadata in shown.items() for key, value in metadata.items()]


@pytest.mark.slow
def test_no_markdown_table_anywhere_only_documents_beside_their_file(migrated):
    _, shown = migrated
    documents = []
    for where, key, value in _entries(shown):
        if isinstance(value, dg.MarkdownMetadataValue) and MD_TABLE_ROW.search(value.md_str):
            assert key == "document", (where, key)
            assert any(isinstance(v, dg.PathMetadataValue) for v in shown[where].values()), where
            documents.append(where[0])
    assert {"scope_doc", "proposed_mapping", "rebuild_reference"} <= set(documents)


@pytest.mark.slow
def test_every_duckdb_table_shows_its_name_rows_and_columns_as_they_are(migrated):
    m, shown = migrated
    tables = {where[0]: meta for where, meta in shown.items() if "dagster/table_name" in meta}
    raw_present = {a for a in tables if a.startswith("raw_")}
    assert len(raw_present) >= 10 and any(a.startswith("stg_") for a in tables)
    assert {"pd_deals", "pd_persons", "novo_quarantine", "verified_records", "audit_log_export"} <= set(tables)
    with duck.connect(m.paths.duckdb, read_only=True) as con:
        for asset, meta in tables.items():
            name = meta["dagster/table_name"].value
            rows = meta["dagster/row_count"]
            columns = [c.name for c in meta["dagster/column_schema"].schema.columns]
            assert isinstance(rows, dg.IntMetadataValue) and columns, asset
            key = next((c for c in ("run_key", "_run_key") if c in columns), None)
            if key and asset != "verified_records":  # verification keeps one row per record and status
                [(n,)] = con.execute(f"SELECT count(*) FROM {name} WHERE {key} = ?", [m.run_key]).fetchall()
                assert rows.value == n, (asset, name)
            assert columns == [c for c, _ in duck.table_columns(con, *name.split("."))], asset


@pytest.mark.slow
def test_every_table_s_schema_matches_its_records_and_numbers_are_numbers(migrated):
    _, shown = migrated
    tables = 0
    for where, key, value in _entries(shown):
        if isinstance(value, dg.TableMetadataValue):
            names = [c.name for c in value.schema.columns]
            assert all(list(r.data) == names for r in value.records), (where, key)
            assert names or not value.records, (where, key)
            for c in value.schema.columns:
                kinds = {type(r.data[c.name]).__name__ for r in value.records if r.data[c.name] is not None}
                assert kinds <= {"string": {"str"}, "int": {"int"}, "float": {"float", "int"},
                                 "bool": {"bool"}}[c.type], (where, key, c.name)
            tables += 1
        if isinstance(value, dg.TextMetadataValue):
            assert not NUMBER_AS_TEXT.match(value.value or ""), (where, key, value.value)
        if key in PATH_KEYS:
            assert isinstance(value, dg.PathMetadataValue) and Path(value.path).exists(), (where, key)
    assert tables > 30
    for asset in ("stg_work_orders", "pd_deals", "applied_deletions"):
        assert isinstance(shown[(asset, "")]["preview"], dg.TableMetadataValue), asset
    account = shown[("pipedrive_account_audit", "")]["account"]
    assert isinstance(account, dg.UrlMetadataValue) and account.url.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_the_reconciliation_and_the_summary_show_on_the_verified_records(migrated):
    m, shown = migrated
    verified = shown[("verified_records", "")]
    by_file = verified["sources"].value
    types = {c.name: c.type for c in by_file.schema.columns}
    assert types == {"file": "string", "source_rows": "int", "loaded": "int", "set_aside": "int",
                     "not_migrated": "int", "ok": "bool", "reasons": "string"}
    assert by_file.records and all(r.data["ok"] for r in by_file.records)
    assert all(r.data["reasons"] for r in by_file.records if r.data["set_aside"] + r.data["not_migrated"])
    assert shown[("verified_records", "reconciliation")]["sources"] == verified["sources"]
    objects = {r.data["entity"]: r.data for r in verified["destinations"].value.records}
    loaded = {r.data["entity"]: r.data for r in verified["loaded_by_entity"].value.records}
    assert loaded and all(objects[e]["in_id_map"] == d["created"] + d["adopted"] for e, d in loaded.items())
    assert isinstance(verified["records"], dg.IntMetadataValue) and verified["records"].value > 0
    scope = shown[("scope_doc", "")]
    text = Path(scope["path"].path).read_text(encoding="utf-8")
    assert scope["document"].md_str == text  # a small run's scope is shown whole
