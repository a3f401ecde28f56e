"""Accounts and assets -> Pipedrive organizations (pd_organizations).

Account -> organization (kind `account`, source id `account:<Account ID>`):
  name = Account Name; address = "Address, City, State Zip"; owner = the fallback owner (Novo
  accounts have no owner); add_time = Date Added; `Novo Account ID`; `Account Type` (value map
  `accounts.Account Type`); a department of type Customer becomes the organization's `label`.
Asset -> organization (kind `asset`, source id `asset:<Asset ID>`):
  name = Asset Name; address = Address; `Asset_Serial__c` = Serial Number; `Asset_Type__c` = Asset
  Class (value map `assets.Asset Class`); `Last_Service_Date__c`; `Asset_Hierarchy__c` = full lineage
  `Root > Child > Grandchild`; `Novo Asset ID`; `Parts` = the parts this equipment uses (from
  asset_parts + inventory) as text; add_time = Date Added.
The placeholder (kind `placeholder`, source id `placeholder:unassigned_assets`), named by the
mapping option `placeholder_org_name`, exists when at least one root asset has no account.
Every organization carries `Novo Source ID`. Mapped extra columns and UDFs come from the mapping.
Field names: the mapping's row for the source column, else the defaults below.
"""

from __future__ import annotations

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.ids import sid
from flitstack_dagster.shaping.common import (
    PLACEHOLDER_ID,
    SET_ASIDE_SCHEMA,
    Owners,
    ShapeContext,
    Shaped,
    clean_name,
    concat,
    finish,
    iso_date,
    map_values,
    mapped_extras,
    payload_json,
    record_columns,
    set_aside,
    target_name,
    utc_iso,
)

SOURCE_ID_FIELD = "Novo Source ID"
ACCOUNT_FIELDS = {
    "Account ID": "Novo Account ID",
    "Account Type": "Account Type",
}
ASSET_FIELDS = {
    "Asset ID": "Novo Asset ID",
    "Serial Number": "Asset_Serial__c",
    "Asset Class": "Asset_Type__c",
    "Last Service Date": "Last_Service_Date__c",
}
HIERARCHY_FIELD = "Asset_Hierarchy__c"
PARTS_FIELD = "Parts"


def _put(fields: dict[str, pl.Expr], name: str | None, expr: pl.Expr) -> None:
    if name:
        fields[name] = expr


def _named_records(
    kind: str, df: pl.DataFrame, nameless: pl.DataFrame, fields: dict[str, pl.Expr], owners: Owners, ctx: ShapeContext
) -> Shaped:
    """Accounts or assets as organizations of the fallback owner (Novo gives them none); the rows
    without a name set aside."""
    out = df.select(
        *record_columns(kind, kind, fields),
        pl.lit(owners.default_owner_id, dtype=pl.Int64).alias("owner_id"),
    )
    return Shaped(out, set_aside(nameless, ctx, kind, f"{kind}s.csv", "required_missing", f"{kind} has no name"))


def parts_text(asset_parts: pl.DataFrame, inventory: pl.DataFrame) -> pl.DataFrame:
    """asset_id -> `Parts` text: `P-100 Filter (×2); P-200 Belt (×1)`, parts sorted by number."""
    if asset_parts.height == 0:
        return pl.DataFrame(schema={"asset_id": pl.String, "parts_text": pl.String})
    inv = inventory.select("part_number", pl.col("description").alias("_desc")).unique("part_number", keep="last")
    return (
        asset_parts.join(inv, on="part_number", how="left")
        .with_columns(
            pl.concat_str(
                [
                    pl.col("part_number"),
                    pl.when(pl.col("_desc").is_not_null()).then(pl.lit(" ") + pl.col("_desc")).otherwise(pl.lit("")),
                    pl.when(pl.col("qty_required").is_not_null())
                    .then(pl.format(" (×{})", pl.col("qty_required").round(4).cast(pl.String).str.replace(r"\.0$", "")))
                    .otherwise(pl.lit("")),
                ]
            ).alias("_line")
        )
        .sort("asset_id", "part_number")
        .group_by("asset_id", maintain_order=True)
        .agg(pl.col("_line").str.join("; ").alias("parts_text"))
    )


def shape_accounts(accounts: pl.DataFrame, departments: pl.DataFrame, mapping: Mapping, owners: Owners, ctx: ShapeContext) -> Shaped:
    e = "accounts"
    df = accounts.with_columns(sid("account", "account_id").alias("source_id"))
    dept = departments.select(
        pl.col("department_id"), pl.col("department_name").alias("_dept_name"), pl.col("department_type").alias("_dept_type")
    ).unique("department_id", keep="last")
    df = df.join(dept, on="department_id", how="left", maintain_order="left")
    name = clean_name(pl.col("account_name"))
    bad = df.filter(name.is_null())
    df = df.filter(name.is_not_null())
    city_line = pl.concat_str(
        [pl.col("state"), pl.col("zip")], separator=" ", ignore_nulls=True
    )
    address = pl.concat_str(
        [pl.col("address"), pl.col("city"), pl.when(city_line != "").then(city_line)], separator=", ", ignore_nulls=True
    )
    fields: dict[str, pl.Expr] = {
        "name": name,
        "address": pl.when(address != "").then(address).otherwise(None),
        "add_time": utc_iso(pl.col("date_added")),
        SOURCE_ID_FIELD: pl.col("source_id"),
    }
    _put(fields, target_name(mapping, e, "Account ID", ACCOUNT_FIELDS["Account ID"]), pl.col("account_id"))
    _put(
        fields,
        target_name(mapping, e, "Account Type", ACCOUNT_FIELDS["Account Type"]),
        map_values(pl.col("account_type"), mapping, "accounts.Account Type"),
    )
    label_name = target_name(mapping, e, "Department ID", "label")
    if "accounts.Department ID" in mapping.value_maps:  # keyed by Department ID -> label ("" = none)
        label = map_values(pl.col("department_id"), mapping, "accounts.Department ID")
        label = pl.when(label != "").then(label)
    else:  # a department of type Customer becomes the organization label
        label = pl.when(pl.col("_dept_type") == "Customer").then(pl.col("_dept_name"))
    _put(fields, label_name, label)
    handled = ["Account ID", "Account Name", "Account Type", "Department ID", "Address", "City", "State", "Zip", "Date Added"]
    fields.update(mapped_extras(mapping, e, "organization", df, handled))
    return _named_records("account", df, bad, fields, owners, ctx)


def shape_assets(
    assets: pl.DataFrame,
    hierarchy: pl.DataFrame,
    parts: pl.DataFrame,
    mapping: Mapping,
    owners: Owners,
    ctx: ShapeContext,
) -> Shaped:
    e = "assets"
    df = (
        assets.with_columns(sid("asset", "asset_id").alias("source_id"))
        .join(hierarchy.select("asset_id", "lineage"), on="asset_id", how="left", maintain_order="left")
        .join(parts, on="asset_id", how="left", maintain_order="left")
    )
    name = clean_name(pl.col("asset_name"))
    bad = df.filter(name.is_null())
    df = df.filter(name.is_not_null())
    fields: dict[str, pl.Expr] = {
        "name": name,
        "address": clean_name(pl.col("address")),
        "add_time": utc_iso(pl.col("date_added")),
        SOURCE_ID_FIELD: pl.col("source_id"),
    }
    _put(fields, target_name(mapping, e, "Asset ID", ASSET_FIELDS["Asset ID"]), pl.col("asset_id"))
    _put(fields, target_name(mapping, e, "Serial Number", ASSET_FIELDS["Serial Number"]), pl.col("serial_number"))
    _put(
        fields,
        target_name(mapping, e, "Asset Class", ASSET_FIELDS["Asset Class"]),
        map_values(pl.col("asset_class"), mapping, "assets.Asset Class"),
    )
    _put(
        fields,
        target_name(mapping, e, "Last Service Date", ASSET_FIELDS["Last Service Date"]),
        iso_date(pl.col("last_service_date")),
    )
    _put(fields, target_name(mapping, e, "Parent Asset ID", HIERARCHY_FIELD), pl.col("lineage"))
    fields[PARTS_FIELD] = pl.col("parts_text")
    handled = ["Asset ID", "Asset Name", "Serial Number", "Asset Class", "Last Service Date", "Address", "Date Added", "Parent Asset ID", "Account ID"]
    fields.update(mapped_extras(mapping, e, "organization", df, handled))
    return _named_records("asset", df, bad, fields, owners, ctx)


def placeholder(mapping: Mapping, owners: Owners) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source_entity": ["placeholder"],
            "source_id": [PLACEHOLDER_ID],
            "origin_id": [None],
            "kind": ["placeholder"],
        },
        schema={"source_entity": pl.String, "source_id": pl.String, "origin_id": pl.String, "kind": pl.String},
    ).with_columns(
        payload_json(
            {"name": pl.lit(mapping.options.placeholder_org_name), SOURCE_ID_FIELD: pl.lit(PLACEHOLDER_ID)}
        ).alias("payload"),
        pl.lit(owners.default_owner_id, dtype=pl.Int64).alias("owner_id"),
    )


def needs_placeholder(assets: pl.DataFrame, hierarchy: pl.DataFrame, account_ids: set[str] | frozenset[str]) -> bool:
    roots = hierarchy.filter(pl.col("depth") == 1).join(
        assets.select(pl.col("asset_id").cast(pl.String), "account_id"), on="asset_id", how="left"
    )
    acc = sid("account", "account_id")
    return roots.filter(acc.is_null() | ~acc.is_in(pl.Series(list(account_ids), dtype=pl.String).implode())).height > 0


def shape_organizations(
    accounts: pl.DataFrame,
    assets: pl.DataFrame,
    departments: pl.DataFrame,
    asset_parts: pl.DataFrame,
    inventory: pl.DataFrame,
    hierarchy: pl.DataFrame,
    mapping: Mapping,
    owners: Owners,
    ctx: ShapeContext,
) -> Shaped:
    """All organizations of the run: accounts, assets and (when needed) the placeholder."""
    acc = shape_accounts(accounts, departments, mapping, owners, ctx)
    ast = shape_assets(assets, hierarchy, parts_text(asset_parts, inventory), mapping, owners, ctx)
    frames = [acc.frame, ast.frame]
    account_ids = set(acc.frame["source_id"].to_list()) | set(ctx.already_loaded)
    if needs_placeholder(assets, hierarchy, account_ids) and PLACEHOLDER_ID not in ctx.already_loaded:
        frames.append(placeholder(mapping, owners))
    body = pl.concat([f.select(["source_entity", "source_id", "origin_id", "kind", "payload", "owner_id"]) for f in frames])
    return Shaped(finish(body, ctx), concat([acc.set_aside, ast.set_aside], SET_ASIDE_SCHEMA))
