"""The shared Jinja blocks of dbt_like_sql/macros/blocks.jinja: imported into every model, their refs
are dependencies, their text is part of a model's code version."""

from __future__ import annotations

from pathlib import Path

import pytest

from flitstack_dagster.staging.models import ModelError, RenderContext, discover_models, load_model, render


def _tree(root: Path, blocks: str, models: dict[str, str]) -> None:
    (root / "macros").mkdir(parents=True, exist_ok=True)
    (root / "macros" / "blocks.jinja").write_text(blocks)
    (root / "staging").mkdir(exist_ok=True)
    for name, body in models.items():
        (root / "staging" / f"{name}.sql").write_text(body)


BLOCKS = "{% macro parents_of(model) -%}SELECT id FROM {{ ref(model) }} WHERE _run_key = '{{ run_key }}'{%- endmacro %}"


def test_a_ref_inside_a_block_is_a_dependency_and_renders_with_the_runs_values(tmp_path):
    _tree(tmp_path, BLOCKS, {"stg_a": "-- a\n{{ parents_of('stg_b') }}", "stg_b": "-- b\nSELECT 1 AS id"})
    models = discover_models(tmp_path)
    assert [m.name for m in models] == ["stg_b", "stg_a"]
    assert models[1].refs == ("stg_b",)
    sql = render(models[1], RenderContext(run_key="full-o'x"))
    assert sql == "-- a\nSELECT id FROM staging.\"stg_b\" WHERE _run_key = 'full-o''x'"


def test_a_ref_to_an_unknown_model_inside_a_block_names_the_model_file(tmp_path):
    _tree(tmp_path, BLOCKS, {"stg_a": "-- a\n{{ parents_of('stg_nope') }}"})
    with pytest.raises(ModelError, match=r"stg_a\.sql.*stg_nope"):
        discover_models(tmp_path)


def test_the_code_version_follows_the_blocks(tmp_path):
    _tree(tmp_path, BLOCKS, {"stg_b": "-- b\n{{ parents_of('stg_c') }}", "stg_c": "SELECT 1 AS id"})
    before = load_model(tmp_path / "staging" / "stg_b.sql").code_version
    (tmp_path / "macros" / "blocks.jinja").write_text(BLOCKS.replace("SELECT id", "SELECT DISTINCT id"))
    assert load_model(tmp_path / "staging" / "stg_b.sql").code_version != before


def test_template_mistakes_name_the_file(tmp_path):
    _tree(tmp_path, BLOCKS, {"stg_a": "SELECT {% if %}"})
    with pytest.raises(ModelError, match=r"stg_a\.sql: line 1"):
        discover_models(tmp_path)
    _tree(tmp_path, BLOCKS, {"stg_a": "SELECT {{ ref(42) }}"})
    with pytest.raises(ModelError, match=r"stg_a\.sql: ref\(\): arguments must be quoted strings"):
        discover_models(tmp_path)
    _tree(tmp_path, BLOCKS, {"stg_a": "SELECT {{ source('raw') }}"})
    with pytest.raises(ModelError, match=r"stg_a\.sql: source\(\): wrong number of arguments"):
        discover_models(tmp_path)


def test_every_repo_model_uses_the_shared_blocks_for_its_source_rows():
    for m in discover_models():
        assert "run_rows(" in m.sql or "json_objects(" in m.sql, m.name
        assert "WITH src AS (" not in m.sql, m.name
