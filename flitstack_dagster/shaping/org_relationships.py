"""Asset hierarchy -> Pipedrive organization `parent` relationships (pd_org_relationships).

Rules:
- The hierarchy is walked top-down from its roots, level by level (vectorised joins, no per-row
  Python). Level 1 is a root asset (no parent asset).
- A level-2 or level-3 asset is linked to its own parent. An asset deeper than level 2 is linked to
  its **level-2 ancestor**: level 3 keeps its parent (which is that ancestor), level 4 and deeper are
  *flattened* (reported as a warning). Every asset keeps its full lineage `Root > Child > Grandchild`
  in `Asset_Hierarchy__c` on its organization (see organizations.py).
- A root asset of an account gets that account's organization as parent; a standalone root asset
  hangs under the placeholder organization (`Novo – Unassigned Assets`).
- A parent that does not exist: the asset becomes a root (warning `hierarchy_missing_parent`).
- A cycle in `Parent Asset ID` is broken at one node per cycle — the smallest asset id in the cycle,
  which becomes a root (warning `hierarchy_cycle_broken` names the cycle's nodes count).
- One relationship record per asset: source id `asset_parent:<asset id>`, `org_ref` = the child's
  organization, `parent_ref` = the parent's organization, payload `{"type": "parent"}`. The loader
  sends `rel_owner_org_id` = parent, `rel_linked_org_id` = child.
"""

from __future__ import annotations

import polars as pl

from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    PLACEHOLDER_ID,
    WARNING_SCHEMA,
    ShapeContext,
    Shaped,
    concat,
    finish,
    record_columns,
    warnings,
)

HIERARCHY_SCHEMA = {
    "asset_id": pl.String(),
    "parent_asset_id": pl.String(),  # as exported
    "effective_parent": pl.String(),  # after missing parents and cycles are repaired
    "depth": pl.Int64(),  # 1 = root
    "root_id": pl.String(),
    "level2_id": pl.String(),  # the level-2 ancestor (itself at level 2); null for roots
    "lineage": pl.String(),  # "Root > Child > Grandchild" by asset names
    "missing_parent": pl.Boolean(),
    "cycle_broken": pl.Boolean(),
    "cycle_size": pl.Int64(),
}


def _cycle_breaks(nodes: pl.DataFrame) -> pl.DataFrame:
    """Among nodes not reachable from any root (each has a parent among them), find the cycles and
    return, per cycle, the node to break at (smallest id) with the cycle's size.

    `nodes`: asset_id, parent (both str). Peel off nodes nobody points at until only cycles remain,
    then label each cycle node with the min id reachable along the cycle.
    """
    cur = nodes
    while True:
        pointed = cur.select(pl.col("parent").alias("asset_id")).unique()
        nxt = cur.join(pointed, on="asset_id", how="semi")
        if nxt.height == cur.height:
            break
        cur = nxt
    if cur.height == 0:
        return pl.DataFrame(schema={"asset_id": pl.String, "cycle_size": pl.Int64})
    lab = cur.with_columns(pl.col("asset_id").alias("label"))
    while True:
        up = lab.select(pl.col("asset_id").alias("parent"), pl.col("label").alias("plabel"))
        nxt = lab.join(up, on="parent", how="left").with_columns(
            pl.min_horizontal("label", "plabel").alias("label")
        ).drop("plabel")
        if nxt.sort("asset_id")["label"].equals(lab.sort("asset_id")["label"]):
            break
        lab = nxt
    sizes = lab.group_by("label").len("cycle_size")
    return lab.filter(pl.col("asset_id") == pl.col("label")).join(
        sizes, on="label"
    ).select("asset_id", pl.col("cycle_size").cast(pl.Int64))


def asset_hierarchy(assets: pl.DataFrame) -> pl.DataFrame:
    """Depth, root, level-2 ancestor and lineage of every asset, with cycles and dangling parents
    repaired. Columns: see `HIERARCHY_SCHEMA`."""
    a = assets.select(
        pl.col("asset_id").cast(pl.String),
        pl.col("parent_asset_id").cast(pl.String),
        pl.coalesce(pl.col("asset_name").cast(pl.String).str.strip_chars(), pl.col("asset_id")).alias("name"),
    ).unique("asset_id", keep="last", maintain_order=True)
    if a.height == 0:
        return pl.DataFrame(schema=HIERARCHY_SCHEMA)
    known = a["asset_id"]
    a = a.with_columns(
        (pl.col("parent_asset_id").is_not_null() & ~pl.col("parent_asset_id").is_in(known.implode())).alias(
            "missing_parent"
        ),
    ).with_columns(
        # a self-parent is the smallest cycle; a dangling parent makes a root
        pl.when(pl.col("missing_parent") | (pl.col("parent_asset_id") == pl.col("asset_id")))
        .then(None)
        .otherwise(pl.col("parent_asset_id"))
        .alias("parent"),
        (pl.col("parent_asset_id") == pl.col("asset_id")).fill_null(False).alias("self_cycle"),
    )

    def walk(frame: pl.DataFrame) -> pl.DataFrame:
        level = frame.filter(pl.col("parent").is_null()).select(
            "asset_id",
            pl.lit(1, dtype=pl.Int64).alias("depth"),
            pl.col("asset_id").alias("root_id"),
            pl.lit(None, dtype=pl.String).alias("level2_id"),
            pl.col("name").alias("lineage"),
        )
        out = [level]
        children = frame.filter(pl.col("parent").is_not_null()).select("asset_id", "parent", "name")
        while level.height:
            nxt = children.join(
                level.rename({"asset_id": "parent", "depth": "pdepth", "lineage": "plineage", "level2_id": "pl2"}),
                on="parent",
                how="inner",
            )
            level = nxt.select(
                "asset_id",
                (pl.col("pdepth") + 1).alias("depth"),
                "root_id",
                pl.when(pl.col("pdepth") + 1 == 2).then(pl.col("asset_id")).otherwise(pl.col("pl2")).alias("level2_id"),
                (pl.col("plineage") + pl.lit(" > ") + pl.col("name")).alias("lineage"),
            )
            if level.height:
                out.append(level)
        return pl.concat(out)

    placed = walk(a)
    unplaced = a.join(placed.select("asset_id"), on="asset_id", how="anti")
    breaks = pl.DataFrame(schema={"asset_id": pl.String, "cycle_size": pl.Int64})
    if unplaced.height:
        breaks = _cycle_breaks(unplaced.select("asset_id", "parent"))
        a = a.with_columns(
            pl.when(in_set(pl.col("asset_id"), breaks["asset_id"].to_list())).then(None).otherwise(pl.col("parent")).alias(
                "parent"
            )
        )
        placed = walk(a)
    out = (
        a.join(placed, on="asset_id", how="left")
        .join(breaks, on="asset_id", how="left")
        .with_columns(
            (pl.col("cycle_size").is_not_null() | pl.col("self_cycle")).alias("cycle_broken"),
            pl.when(pl.col("self_cycle")).then(1).otherwise(pl.col("cycle_size")).cast(pl.Int64).alias("cycle_size"),
        )
    )
    return out.select(
        "asset_id",
        "parent_asset_id",
        pl.col("parent").alias("effective_parent"),
        "depth",
        "root_id",
        "level2_id",
        "lineage",
        "missing_parent",
        "cycle_broken",
        "cycle_size",
    ).cast(HIERARCHY_SCHEMA)


def shape_org_relationships(
    assets: pl.DataFrame,
    hierarchy: pl.DataFrame,
    org_ids: set[str] | frozenset[str],
    ctx: ShapeContext,
) -> Shaped:
    """One `parent` relationship per asset organization in `org_ids` (the shaped orgs + already loaded).

    `assets` must have `asset_id`, `account_id`; `hierarchy` is `asset_hierarchy(assets)`.
    """
    h = hierarchy.join(
        assets.select(pl.col("asset_id").cast(pl.String), pl.col("account_id").cast(pl.String)).unique(
            "asset_id", keep="last"
        ),
        on="asset_id",
        how="left",
    ).with_columns(sid("asset", "asset_id").alias("org_ref"))
    h = h.filter(in_set(pl.col("org_ref"), org_ids))
    account_ref = sid("account", "account_id")
    parent_asset = (
        pl.when(pl.col("depth") <= 3).then(pl.col("effective_parent")).otherwise(pl.col("level2_id"))
    )
    h = h.with_columns(
        pl.when(pl.col("depth") == 1)
        .then(
            pl.when(account_ref.is_not_null() & in_set(account_ref, org_ids))
            .then(account_ref)
            .otherwise(pl.lit(PLACEHOLDER_ID))
        )
        .otherwise(sid("asset", parent_asset))
        .alias("parent_ref"),
        (pl.col("depth") > 3).alias("flattened"),
    )
    frame = h.select(
        *record_columns(
            "asset_parent",
            pl.when(pl.col("depth") == 1)
            .then(pl.when(pl.col("parent_ref") == PLACEHOLDER_ID).then(pl.lit("placeholder")).otherwise(pl.lit("account")))
            .otherwise(pl.lit("asset")),
            {"type": pl.lit("parent")},
            source_id=sid("asset_parent", "asset_id"),
            origin_id=pl.col("org_ref"),
        ),
        "org_ref",
        "parent_ref",
    )
    warn = concat(
        [
            warnings(
                h.filter("flattened").with_columns(pl.col("org_ref").alias("source_id")),
                ctx,
                "hierarchy_flattened",
                "asset",
                pl.format("level {} asset linked to its level-2 ancestor; lineage: {}", pl.col("depth"), pl.col("lineage")),
            ),
            warnings(
                h.filter("cycle_broken").with_columns(pl.col("org_ref").alias("source_id")),
                ctx,
                "hierarchy_cycle_broken",
                "asset",
                pl.format(
                    "cycle of {} asset(s) in Parent Asset ID broken here: parent {} dropped",
                    pl.col("cycle_size"),
                    pl.col("parent_asset_id"),
                ),
            ),
            warnings(
                h.filter("missing_parent").with_columns(pl.col("org_ref").alias("source_id")),
                ctx,
                "hierarchy_missing_parent",
                "asset",
                pl.format("parent asset {} does not exist; placed as a root", pl.col("parent_asset_id")),
            ),
        ],
        WARNING_SCHEMA,
    )
    return Shaped(finish(frame, ctx), warnings=warn)
