"""The entity registry: one declaration per Pipedrive entity, and everything built from it follows.

The done-means check: a registry with one more entity (a hypothetical `products` entity that
references deals) yields its `pd_*` and `loaded_*` assets in the Dagster definitions, and takes its
place in the load and rollback orders, with no other change.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.entities import (
    ENTITIES,
    PRODUCT_ENTITIES,
    Entity,
    Reference,
    Registry,
    docs_table,
)
from flitstack_dagster.pipedrive.costs import default_cost_table
from flitstack_dagster.shaping.common import REF_COLUMNS

REPO = Path(__file__).resolve().parents[1]

PRODUCTS = Entity(
    "product", "products", "Parts catalogue items as Pipedrive products, attached to their work order's deal.",
    api="v2", collection="/products", references=(Reference("deal_id", "deal_ref", "deal"),), required=("name",),
)


def _parents(defs: dg.Definitions, key: str) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get(dg.AssetKey(key)).parent_keys}


def _keys(defs: dg.Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_product_orders_are_the_ones_loads_and_rollbacks_always_used():
    assert ENTITIES.load_order == ("organization", "org_relationship", "person", "deal", "activity", "note", "file")
    assert ENTITIES.rollback_order == tuple(reversed(ENTITIES.load_order))


def test_every_entity_loads_after_what_it_references_and_rolls_back_before_it():
    for registry in (ENTITIES, ENTITIES.with_entity(PRODUCTS)):
        for e in registry:
            for parent in e.parents:
                assert registry.load_order.index(parent) < registry.load_order.index(e.name), (e.name, parent)
                assert registry.rollback_order.index(parent) > registry.rollback_order.index(e.name), (e.name, parent)


def test_an_extra_entity_gets_its_assets_and_its_place_in_both_orders(tmp_path):
    # declared first on purpose: its place comes from what it references, not from where it is written
    extended = Registry([PRODUCTS, *PRODUCT_ENTITIES])
    order = extended.load_order
    assert order.index("product") == order.index("deal") + 1
    assert [n for n in order if n != "product"] == list(ENTITIES.load_order)
    assert extended.rollback_order.index("product") < extended.rollback_order.index("deal")
    assert extended.reference_fields["deal_id"] == "deal"

    defs = build_definitions(tmp_path, entities=extended)
    keys = _keys(defs)
    assert {"pd_products", "loaded_products"} <= keys
    assert _parents(defs, "loaded_products") == {"pd_products", "loaded_deals"}
    assert "loaded_products" in _parents(defs, "verified_records")
    assert "loaded_products" in _parents(defs, "applied_deletions")
    assert "loaded_products" in _parents(defs, "audit_log_export")
    dg.Definitions.validate_loadable(defs)

    product = build_definitions(tmp_path)
    assert keys - _keys(product) == {"pd_products", "loaded_products"}


def test_the_product_definitions_have_one_shaped_and_one_load_asset_per_entity(tmp_path):
    keys = _keys(build_definitions(tmp_path))
    assert {k for k in keys if k.startswith("pd_")} == {e.shaped_table for e in ENTITIES}
    assert {k for k in keys if k.startswith("loaded_")} == {e.load_asset for e in ENTITIES}
    defs = build_definitions(tmp_path)
    for e in ENTITIES:  # each load waits for its shaped table and for the loads of what it references
        want = {e.shaped_table, *(ENTITIES[p].load_asset for p in e.parents)}
        assert want <= _parents(defs, e.load_asset), e.name


def test_token_costs_come_from_the_official_cost_table():
    table = default_cost_table()
    for e in ENTITIES:
        for route in (e.create, e.update, e.delete, e.read, e.list_all):
            op = table.lookup(route.method, route.path)
            assert op is not None and op.template == route.path, str(route)
            assert route.tokens == op.cost
    assert PRODUCTS.create.tokens == table.lookup("POST", "/api/v2/products").cost


def test_shaped_reference_columns_are_the_registry_s():
    assert set(REF_COLUMNS) == set(ENTITIES.reference_columns)


def test_a_circle_or_an_unknown_parent_is_refused():
    circle = [
        Entity("a", "as", "x", api="v2", collection="/a", references=(Reference("b_id", "b_ref", "b"),)),
        Entity("b", "bs", "x", api="v2", collection="/b", references=(Reference("a_id", "a_ref", "a"),)),
    ]
    with pytest.raises(ValueError, match="circle"):
        Registry(circle)
    with pytest.raises(ValueError, match="not declared"):
        Registry([PRODUCTS])
    with pytest.raises(ValueError, match="declared twice"):
        ENTITIES.with_entity(PRODUCT_ENTITIES[0])


def test_docs_table_is_the_registry_s():
    contracts = (REPO / "docs" / "contracts.md").read_text(encoding="utf-8")
    assert docs_table() in contracts, "docs/contracts.md: paste the output of `python -m flitstack_dagster.entities`"
    assert "pd_products" in docs_table(ENTITIES.with_entity(PRODUCTS))
