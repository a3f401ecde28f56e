from datetime import date

import polars as pl

from flitstack_dagster.mapping.model import FieldMapping, Mapping
from flitstack_dagster.shaping.common import PLACEHOLDER_ID
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.org_relationships import asset_hierarchy
from flitstack_dagster.shaping.organizations import shape_organizations

from .conftest import payloads, utc


def _inputs():
    return StagedInputs(
        departments=pl.DataFrame({"department_id": ["D1"], "department_name": ["Utilities"], "department_type": ["Customer"]}),
        accounts=pl.DataFrame({
            "account_id": ["0007"], "account_name": ["  City   Water "], "account_type": ["Customer"], "department_id": ["D1"],
            "address": ["1 Main St"], "city": ["Springfield"], "state": ["IL"], "zip": ["62701"], "date_added": [utc(2020, 1, 2, 3, 4, 5)],
        }),
        assets=pl.DataFrame({
            "asset_id": ["00042", "00043"], "asset_name": ["Plant", "Pump <b>1</b>"], "parent_asset_id": [None, "00042"],
            "asset_class": ["Facility", "Equipment"], "serial_number": [None, "SN-9"], "account_id": [None, None],
            "last_service_date": [None, date(2026, 3, 1)],
        }),
        asset_parts=pl.DataFrame({"asset_id": ["00043", "00043"], "part_number": ["P2", "P1"], "qty_required": [2.0, 1.0]}),
        inventory=pl.DataFrame({"part_number": ["P1", "P2"], "description": ["Filter", "Belt"]}),
    )


def test_accounts_assets_and_placeholder(ctx, mapping, owners):
    i = _inputs()
    out = shape_organizations(i.accounts, i.assets, i.departments, i.asset_parts, i.inventory, asset_hierarchy(i.assets), mapping, owners, ctx)
    p = payloads(out.frame)
    assert set(p) == {"account:0007", "asset:00042", "asset:00043", PLACEHOLDER_ID}
    acc = p["account:0007"]
    assert acc["name"] == "City Water"
    assert acc["address"] == "1 Main St, Springfield, IL 62701"
    assert acc["add_time"] == "2020-01-02T03:04:05Z"
    assert acc["Novo Account ID"] == "0007" and acc["label"] == "Utilities"
    assert acc["Novo Source ID"] == "account:0007"
    pump = p["asset:00043"]
    assert pump["Asset_Hierarchy__c"] == "Plant > Pump <b>1</b>"
    assert pump["Asset_Serial__c"] == "SN-9" and pump["Asset_Type__c"] == "Equipment"
    assert pump["Last_Service_Date__c"] == "2026-03-01"
    assert pump["Parts"] == "P1 Filter (×1); P2 Belt (×2)"
    assert p[PLACEHOLDER_ID]["name"] == "Novo – Unassigned Assets"
    assert out.frame["owner_id"].to_list() == [1, 1, 1, 1]
    assert out.frame["kind"].to_list() == ["account", "asset", "asset", "placeholder"]


def test_no_placeholder_when_every_root_has_an_account(ctx, mapping, owners):
    i = _inputs()
    a = i.assets.with_columns(pl.lit("0007").alias("account_id"))
    out = shape_organizations(i.accounts, a, i.departments, i.asset_parts, i.inventory, asset_hierarchy(a), mapping, owners, ctx)
    assert PLACEHOLDER_ID not in out.frame["source_id"].to_list()


def test_mapping_renames_and_drops_fields(ctx, owners):
    m = Mapping(fields=[
        FieldMapping(source_entity="assets", source_column="Serial Number", target_entity="organization", target_field="Serial"),
        FieldMapping(source_entity="assets", source_column="Asset Class", target_entity="none"),
        FieldMapping(source_entity="assets", source_column="Manufacturer", target_entity="organization", target_field="Maker", custom=True, field_type="varchar"),
    ])
    i = _inputs()
    a = i.assets.with_columns(pl.lit("ACME").alias("manufacturer"))
    out = shape_organizations(i.accounts, a, i.departments, i.asset_parts, i.inventory, asset_hierarchy(a), m, owners, ctx)
    pump = payloads(out.frame)["asset:00043"]
    assert pump["Serial"] == "SN-9" and "Asset_Serial__c" not in pump
    assert "Asset_Type__c" not in pump
    assert pump["Maker"] == "ACME"
