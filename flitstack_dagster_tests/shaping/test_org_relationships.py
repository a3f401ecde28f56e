import polars as pl

from flitstack_dagster.shaping.common import PLACEHOLDER_ID
from flitstack_dagster.shaping.org_relationships import asset_hierarchy, shape_org_relationships


def _assets(rows):
    return pl.DataFrame(rows, schema={"asset_id": pl.String, "parent_asset_id": pl.String, "asset_name": pl.String, "account_id": pl.String}, orient="row")


FIVE = _assets([
    ("001", None, "Campus", "A1"),
    ("002", "001", "Building", None),
    ("003", "002", "Floor", None),
    ("004", "003", "Room", None),
    ("005", "004", "Pump", None),
])


def test_five_levels_flattened_with_lineage(ctx):
    h = asset_hierarchy(FIVE)
    by = {r["asset_id"]: r for r in h.to_dicts()}
    assert [by[a]["depth"] for a in ["001", "002", "003", "004", "005"]] == [1, 2, 3, 4, 5]
    assert by["005"]["lineage"] == "Campus > Building > Floor > Room > Pump"
    assert by["005"]["level2_id"] == "002"
    ids = {"account:A1", *(f"asset:{a}" for a in ["001", "002", "003", "004", "005"])}
    rel = shape_org_relationships(FIVE, h, ids, ctx)
    parents = dict(rel.frame.select("org_ref", "parent_ref").iter_rows())
    assert parents == {
        "asset:001": "account:A1",  # root of a customer account -> the account's organization
        "asset:002": "asset:001",
        "asset:003": "asset:002",  # level 3: its parent is the level-2 ancestor
        "asset:004": "asset:002",  # flattened
        "asset:005": "asset:002",  # flattened
    }
    flat = rel.warnings.filter(pl.col("code") == "hierarchy_flattened")["source_id"].sort().to_list()
    assert flat == ["asset:004", "asset:005"]
    assert rel.frame["source_id"].to_list()[0].startswith("asset_parent:")
    assert rel.frame.filter(pl.col("org_ref") == "asset:005")["payload"][0] == '{"type":"parent"}'


def test_cycle_broken_at_smallest_id_and_reported(ctx):
    a = _assets([
        ("10", "30", "Ten", None),
        ("20", "10", "Twenty", None),
        ("30", "20", "Thirty", None),
        ("40", "20", "Forty (hangs off the cycle)", None),
        ("50", "50", "Self", None),
    ])
    h = asset_hierarchy(a)
    by = {r["asset_id"]: r for r in h.to_dicts()}
    assert by["10"]["cycle_broken"] and by["10"]["depth"] == 1 and by["10"]["cycle_size"] == 3
    assert not by["20"]["cycle_broken"] and by["20"]["depth"] == 2
    assert by["30"]["depth"] == 3 and by["40"]["depth"] == 3
    assert by["50"]["cycle_broken"] and by["50"]["depth"] == 1
    assert by["30"]["lineage"] == "Ten > Twenty > Thirty"
    rel = shape_org_relationships(a, h, {f"asset:{x}" for x in ["10", "20", "30", "40", "50"]}, ctx)
    parents = dict(rel.frame.select("org_ref", "parent_ref").iter_rows())
    assert parents["asset:10"] == PLACEHOLDER_ID
    assert parents["asset:30"] == "asset:20"
    cyc = rel.warnings.filter(pl.col("code") == "hierarchy_cycle_broken")["source_id"].sort().to_list()
    assert cyc == ["asset:10", "asset:50"]


def test_missing_parent_becomes_root_under_placeholder(ctx):
    a = _assets([("1", "999", "Orphan", None)])
    h = asset_hierarchy(a)
    rel = shape_org_relationships(a, h, {"asset:1"}, ctx)
    assert rel.frame["parent_ref"].to_list() == [PLACEHOLDER_ID]
    assert rel.warnings["code"].to_list() == ["hierarchy_missing_parent"]


def test_root_of_unknown_account_goes_to_placeholder(ctx):
    a = _assets([("1", None, "Root", "GONE")])
    rel = shape_org_relationships(a, asset_hierarchy(a), {"asset:1"}, ctx)
    assert rel.frame["parent_ref"].to_list() == [PLACEHOLDER_ID]
    assert rel.frame["kind"].to_list() == ["placeholder"]


def test_already_loaded_account_counts(ctx):
    a = _assets([("1", None, "Root", "A9")])
    rel = shape_org_relationships(a, asset_hierarchy(a), {"asset:1", "account:A9"}, ctx)
    assert rel.frame["parent_ref"].to_list() == ["account:A9"]
