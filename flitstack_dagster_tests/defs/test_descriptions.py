"""Every asset and check in the code location tells the user what it is: a description and a group
(checks: a description, on an asset that has a group) — the Dagster UI is the product's face."""

from __future__ import annotations

import dagster as dg

from flitstack_dagster.definitions import build_definitions

VERIFICATION = {"verified_records", "field_diff_report", "audit_log_export", "rebuild_reference"}


def test_every_asset_and_check_has_a_description_and_a_group(tmp_path):
    graph = build_definitions(tmp_path).resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert len(keys) > 20
    missing = []
    for key in keys:
        node = graph.get(key)
        if not (node.description or "").strip():
            missing.append(f"asset {key.to_user_string()}: no description")
        if not node.group_name or node.group_name == "default":
            missing.append(f"asset {key.to_user_string()}: no group")
        if not node.owners:
            missing.append(f"asset {key.to_user_string()}: no owner")
    checks = list(graph.asset_check_keys)
    assert len(checks) > 5
    for ck in checks:
        if not (graph.get_check_spec(ck).description or "").strip():
            missing.append(f"check {ck.asset_key.to_user_string()}.{ck.name}: no description")
        group = graph.get(ck.asset_key).group_name
        if not group or group == "default":
            missing.append(f"check {ck.asset_key.to_user_string()}.{ck.name}: its asset has no group")
    assert not missing, "\n".join(missing)


def test_verification_group_is_wired_after_the_loads(tmp_path):
    graph = build_definitions(tmp_path).resolve_asset_graph()
    names = {k.to_user_string(): graph.get(k) for k in graph.get_all_asset_keys()}
    assert VERIFICATION <= set(names)
    for name in VERIFICATION:
        assert names[name].group_name == "verification"
        assert names[name].partitions_def is not None
    assert {dg.AssetKey(f"loaded_{e}") for e in ("organizations", "deals", "notes", "files")} <= names["verified_records"].parent_keys
    assert dg.AssetKey("stg_workflow_rules") in names["rebuild_reference"].parent_keys
    checks = {(ck.asset_key.to_user_string(), ck.name): graph.get_check_spec(ck) for ck in graph.asset_check_keys}
    assert checks[("verified_records", "reconciliation")].blocking
    assert ("verified_records", "no_unexplained_mismatches") in checks
