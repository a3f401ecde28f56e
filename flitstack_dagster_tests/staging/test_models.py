"""Model discovery, dependency order, rendering — and that every model matches columns.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.novo import columns as novo
from flitstack_dagster.staging.models import (
    SQL_ROOT,
    ModelError,
    RenderContext,
    UdfColumn,
    discover_models,
    load_model,
    render,
)
from flitstack_dagster.staging.runner import load_macros, run_all
from flitstack_dagster_tests.staging.rawkit import raw_layer

EXPECTED = {f"stg_{f.entity}" for f in novo.FILES} | {"stg_workflow_rules", "stg_form_configurations"}


def test_sql_root_is_the_repos_folder():
    assert SQL_ROOT.name == "dbt_like_sql"
    assert (SQL_ROOT / "macros" / "novo_types.sql").is_file()


def test_discovers_every_model_in_dependency_order():
    models = discover_models()
    names = [m.name for m in models]
    assert set(names) == EXPECTED
    pos = {n: i for i, n in enumerate(names)}
    for m in models:
        assert m.layer == "staging"
        assert m.description and not m.description.startswith("--")
        for r in m.refs:
            assert pos[r] < pos[m.name], f"{r} must come before {m.name}"


def test_refs_come_from_the_file():
    by = {m.name: m for m in discover_models()}
    assert set(by["stg_work_orders"].refs) == {"stg_assets", "stg_contacts", "stg_accounts", "stg_departments",
                                               "stg_pm_schedules"}
    assert set(by["stg_labor"].refs) == {"stg_work_orders", "stg_contacts"}
    assert set(by["stg_pm_history"].refs) == {"stg_pm_schedules", "stg_work_orders", "stg_contacts"}
    assert set(by["stg_attachments"].refs) == {"stg_work_orders", "stg_assets", "stg_contacts"}
    assert by["stg_departments"].refs == ()
    assert by["stg_work_orders"].sources == (("raw", "work_orders"),)
    assert by["stg_workflow_rules"].file == "workflow_rules.json"
    assert by["stg_labor"].file == "labor.csv"


def _write(root: Path, name: str, body: str) -> Path:
    p = root / "staging" / f"{name}.sql"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body)
    return p


def test_unknown_ref_names_the_file(tmp_path):
    _write(tmp_path, "stg_a", "-- a\nSELECT * FROM {{ ref('stg_nope') }}")
    with pytest.raises(ModelError, match=r"stg_a\.sql.*stg_nope"):
        discover_models(tmp_path)


def test_cycle_names_the_files(tmp_path):
    _write(tmp_path, "stg_a", "-- a\nSELECT * FROM {{ ref('stg_b') }}")
    _write(tmp_path, "stg_b", "-- b\nSELECT * FROM {{ ref('stg_c') }}")
    _write(tmp_path, "stg_c", "-- c\nSELECT * FROM {{ ref('stg_a') }}")
    _write(tmp_path, "stg_d", "-- d\nSELECT 1")
    with pytest.raises(ModelError, match=r"cycle") as e:
        discover_models(tmp_path)
    assert "stg_a.sql" in str(e.value) and "stg_b.sql" in str(e.value)


def test_self_ref_and_bad_template(tmp_path):
    _write(tmp_path, "stg_a", "SELECT * FROM {{ ref('stg_a') }}")
    with pytest.raises(ModelError, match="itself"):
        discover_models(tmp_path)
    p = _write(tmp_path, "stg_a", "SELECT {{ bogus }}")
    with pytest.raises(ModelError, match=r"stg_a\.sql.*bogus"):
        load_model(p)
    p = _write(tmp_path, "stg_a", "SELECT {{ shell('rm') }}")
    with pytest.raises(ModelError, match="unknown template function"):
        load_model(p)


def test_macros_folder_is_not_a_model(tmp_path):
    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "m.sql").write_text("CREATE MACRO x() AS 1;")
    _write(tmp_path, "stg_b", "-- the b model\n-- second line\nSELECT 1")
    models = discover_models(tmp_path)
    assert [m.name for m in models] == ["stg_b"]
    assert models[0].description == "the b model second line"


def test_render_variables_are_escaped(tmp_path):
    p = _write(tmp_path, "stg_x", "SELECT '{{ run_key }}', '{{ date_order }}', '{{ timezone }}', '{{ exported_at }}' "
                                  "FROM {{ source('raw', 'labor') }} JOIN {{ ref('stg_y') }}")
    sql = render(load_model(p), RenderContext(run_key="full-o'brien", date_order="DMY", timezone="Europe/Berlin",
                                              exported_at="2026-11-20 07:00:00+00"))
    assert "'full-o''brien'" in sql and "'DMY'" in sql and "'Europe/Berlin'" in sql
    assert '"raw"."labor"' in sql and 'staging."stg_y"' in sql
    assert "{{" not in sql


def test_source_of_a_missing_raw_table_is_an_empty_relation_with_the_headers():
    m = {x.name: x for x in discover_models()}["stg_deleted"]
    sql = render(m, RenderContext(run_key="r", raw_columns={}))
    con = duckdb.connect()
    load_macros(con)
    con.execute("CREATE SCHEMA staging")
    cur = con.execute(sql)
    assert cur.fetchall() == []
    assert [d[0] for d in cur.description][:5] == ["_run_key", "_row_number", "entity", "id", "deleted_at"]


def test_udf_columns_expand_to_typed_expressions():
    m = {x.name: x for x in discover_models()}["stg_work_orders"]
    udfs = [UdfColumn("Work Order", "District", "UDF: District", "Pick List", ("North", "South")),
            UdfColumn("Work Order", "Cost", "UDF: Cost", "Currency"),
            UdfColumn("Asset", "Zone", "UDF: Zone", "Text"),  # other entity: not here
            UdfColumn("Work Order", "Gone", "UDF: Gone", "Number")]  # not in the raw table: skipped
    raw = {"work_orders": [*novo.BY_ENTITY["work_orders"].headers, "UDF: District", "UDF: Cost"]}
    sql = render(m, RenderContext(run_key="r", udfs=udfs, raw_columns=raw))
    assert 'novo_text("UDF: District") AS "udf_district"' in sql
    assert 'novo_money("UDF: Cost") AS "udf_cost"' in sql
    assert "novo_choice_issue(\"UDF: District\", ['North', 'South']" in sql
    assert "UDF: Zone" not in sql and "UDF: Gone" not in sql
    plain = render(m, RenderContext(run_key="r"))
    assert "udf_" not in plain.split("ranked AS")[0].replace("udf_columns", "")


def test_every_model_stages_every_column_with_the_contract_type():
    """Column names = snake(header), types per docs/contracts.md, for every file of columns.py."""
    want_type = {
        novo.ColType.ID: "VARCHAR", novo.ColType.TEXT: "VARCHAR", novo.ColType.LONG_TEXT: "VARCHAR",
        novo.ColType.TIME: "VARCHAR", novo.ColType.DATE: "DATE", novo.ColType.DATETIME: "TIMESTAMP WITH TIME ZONE",
        novo.ColType.MONEY: "DECIMAL(18,2)", novo.ColType.NUMBER: "DOUBLE", novo.ColType.YESNO: "BOOLEAN",
        novo.ColType.EMAIL: "VARCHAR", novo.ColType.MULTI: "VARCHAR[]",
    }
    con = duckdb.connect()
    raw_layer(con, "r", {f.entity: [] for f in novo.FILES} | {"workflow_rules": [], "form_configurations": []})
    run_all(con, "r")
    for f in novo.FILES:
        got = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema='staging' "
            "AND table_name=? ORDER BY ordinal_position", [f"stg_{f.entity}"]).fetchall()
        assert got[:2] == [("_run_key", "VARCHAR"), ("_row_number", "BIGINT")]
        # stg_attachments also keeps landing's checked body size (shaping skips bodies already checked)
        extra = [("_body_bytes", "BIGINT")] if f.entity == "attachments" else []
        assert got[2:] == [(c.name, want_type[c.type]) for c in f.columns] + extra, f.entity
    q = con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema='staging' "
                    "AND table_name='quarantine' ORDER BY ordinal_position").fetchall()
    assert [c for (c,) in q] == ["_run_key", "file", "entity", "row_number", "column", "raw_value",
                                 "reason_code", "message", "level"]
