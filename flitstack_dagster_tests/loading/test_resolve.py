"""Update bodies: only what changed, and a value that became empty is cleared, not forgotten."""

from flitstack_dagster.loading.loader import without_nulls
from flitstack_dagster.loading.resolve import before_values, changed_fields


def test_create_body_drops_nulls_but_keeps_values():
    body = {"name": "Pump 7", "address": None, "custom_fields": {"abc": None, "def": 3}}
    assert without_nulls(body) == {"name": "Pump 7", "custom_fields": {"def": 3}}


def test_a_value_that_became_null_is_sent_as_null_on_update():
    old = {"name": "Pump 7", "address": "1 Main St", "custom_fields": {"abc": 1, "def": 3}}
    new = {"name": "Pump 7", "address": None, "custom_fields": {"abc": 1, "def": None}}
    changes = changed_fields(old, new)
    assert changes == {"address": None, "custom_fields": {"def": None}}
    assert before_values(old, changes) == {"address": "1 Main St", "custom_fields": {"def": 3}}


def test_unchanged_body_has_no_changes():
    body = {"title": "WO-1 · Leak", "custom_fields": {"k": 1}}
    assert changed_fields(body, dict(body)) == {}


def test_standard_option_fields_go_top_level_and_custom_ones_under_custom_fields():
    """Organization labels are a standard field with options: `label_ids` at the top level, as ids."""
    import json

    from flitstack_dagster.loading.resolve import CustomField, Registry, Resolver

    reg = Registry({"organization": {"label_ids": CustomField("label_ids", "set", {"Schools": 7}),
                                     "Tier": CustomField("a" * 40, "enum", {"Gold": 3})}}, {}, {}, {})
    body = Resolver(reg, {}).body("organization", {"payload": json.dumps({"name": "X", "label_ids": "Schools", "Tier": "Gold"})})
    assert body == {"name": "X", "label_ids": [7], "custom_fields": {"a" * 40: 3}}
