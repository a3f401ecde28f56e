import json

import polars as pl

from flitstack_dagster.mapping.model import FieldMapping, Mapping
from flitstack_dagster.novo.ids import sid
from flitstack_dagster.shaping.common import (
    OUTPUT_SCHEMA,
    finish,
    html_text,
    map_values,
    mapped_extras,
    payload_json,
    target_name,
)


def test_sid_keeps_leading_zeros_and_nulls():
    df = pl.DataFrame({"a": ["00042", "42", None]})
    assert df.select(sid("asset", "a").alias("a"))["a"].to_list() == ["asset:00042", "asset:42", None]


def test_html_text_escapes_script_and_newlines():
    df = pl.DataFrame({"t": ['<script>alert("x")</script> & co\nline 2']})
    out = df.select(html_text(pl.col("t")))["t"][0]
    assert out == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co<br>line 2"


def test_payload_json_sorted_keys_and_stable_hash(ctx):
    df = pl.DataFrame({"source_entity": ["x"], "source_id": ["x:1"], "origin_id": ["x:1"], "kind": ["k"], "b": [2], "a": ["1"]})
    f1 = finish(df.with_columns(payload_json({"b": pl.col("b"), "a": pl.col("a")}).alias("payload")), ctx)
    f2 = finish(df.with_columns(payload_json({"a": pl.col("a"), "b": pl.col("b")}).alias("payload")), ctx)
    assert f1["payload"][0] == '{"a":"1","b":2}'
    assert f1["content_hash"][0] == f2["content_hash"][0]
    assert list(f1.schema) == list(OUTPUT_SCHEMA)
    f3 = finish(df.with_columns(payload_json({"a": pl.lit("2"), "b": pl.col("b")}).alias("payload")), ctx)
    assert f3["content_hash"][0] != f1["content_hash"][0]


def test_content_hash_is_sha256_of_the_parts_and_can_be_left_to_the_save(ctx):
    """sha256 of kind, payload, the four references and owner joined by \\x1f, a null as \\x00 — the
    same bytes whether finish computes it or the save does (`hash_on_save`)."""
    import hashlib
    from dataclasses import replace

    df = pl.DataFrame({"source_id": ["x:1"], "kind": ["k"], "payload": ['{"a":1}'], "deal_ref": ["work_order:W"],
                       "owner_id": [7]})
    parts = ["k", '{"a":1}', "\x00", "\x00", "work_order:W", "\x00", "7"]
    assert finish(df, ctx)["content_hash"][0] == hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    assert finish(df, replace(ctx, hash_on_save=True))["content_hash"][0] is None


def test_value_map_identity_mapped_and_unmapped():
    m = Mapping(value_maps={"work_orders.Priority": {"High": "Urgent", "Odd": None}})
    df = pl.DataFrame({"p": ["High", "Odd", "Missing", None]})
    assert df.select(map_values(pl.col("p"), m, "work_orders.Priority"))["p"].to_list() == ["Urgent", None, None, None]
    assert df.select(map_values(pl.col("p"), Mapping(), "work_orders.Priority"))["p"].to_list() == ["High", "Odd", "Missing", None]


def test_target_name_mapping_override_and_not_migrated():
    m = Mapping(fields=[
        FieldMapping(source_entity="work_orders", source_column="Priority", target_entity="deal", target_field="Prio"),
        FieldMapping(source_entity="work_orders", source_column="Source", target_entity="none"),
    ])
    assert target_name(m, "work_orders", "Priority", "Novo_Priority__c") == "Prio"
    assert target_name(m, "work_orders", "Source", "Src") is None
    assert target_name(m, "work_orders", "Title", "default") == "default"


def test_mapped_extras_types_udfs():
    m = Mapping(
        fields=[
            FieldMapping(source_entity="work_orders", source_column="UDF: Ward", target_entity="deal", target_field="Ward", custom=True, field_type="enum"),
            FieldMapping(source_entity="work_orders", source_column="UDF: Tags", target_entity="deal", target_field="Tags", custom=True, field_type="set"),
            FieldMapping(source_entity="work_orders", source_column="UDF: Budget", target_entity="deal", target_field="Budget", custom=True, field_type="monetary"),
        ],
        value_maps={"work_orders.UDF: Ward": {"W1": "Ward 1"}},
    )
    df = pl.DataFrame({"udf_ward": ["W1"], "udf_tags": [["a", "b"]], "udf_budget": [12.5]})
    ex = mapped_extras(m, "work_orders", "deal", df, [])
    out = json.loads(df.select(payload_json(ex))[0, 0])
    assert out == {"Budget": {"value": 12.5, "currency": "USD"}, "Tags": ["a", "b"], "Ward": "Ward 1"}


def test_target_name_skips_structural_rows_of_a_proposal():
    m = Mapping(fields=[
        FieldMapping(source_entity="assets", source_column="Parent Asset ID", target_entity="organization", target_field="relationship:parent", transform="hierarchy_parent"),
        FieldMapping(source_entity="assets", source_column="Parent Asset ID", target_entity="organization", target_field="Asset_Hierarchy__c", transform="lineage"),
        FieldMapping(source_entity="assets", source_column="Asset ID", target_entity="organization", target_field="Novo Source ID", transform="source_id:asset"),
        FieldMapping(source_entity="assets", source_column="Account ID", target_entity="organization", target_field="relationship:parent", transform="account_parent"),
    ])
    assert target_name(m, "assets", "Parent Asset ID", "x") == "Asset_Hierarchy__c"
    assert target_name(m, "assets", "Asset ID", "Novo Asset ID") == "Novo Asset ID"
    assert target_name(m, "assets", "Account ID", None) is None
