"""Each shaping check hangs on the asset it judges, so the UI shows a failure where a user looks."""

from __future__ import annotations

from flitstack_dagster.definitions import build_definitions
from flitstack_dagster.defs.shaping import CHECKS


def test_checks_sit_on_the_assets_they_judge(tmp_path):
    graph = build_definitions(tmp_path).resolve_asset_graph()
    placed = {ck.name: (ck.asset_key.to_user_string(), graph.get_check_spec(ck).blocking)
              for ck in graph.asset_check_keys}
    assert placed["file_sizes"] == ("pd_files", True)
    assert placed["invalid_emails"] == ("pd_persons", False)
    assert placed["hierarchy_flattened"] == ("pd_org_relationships", False)
    assert placed["ready_to_load"] == ("pd_deals", True)
    assert {c.name for c in CHECKS} <= set(placed)


def test_every_blocking_check_says_what_to_do():
    for c in CHECKS:
        meaning, _, todo = c.description.partition(". ")
        assert meaning.startswith("Fails when" if c.blocking else "Warns about"), c.name
        assert todo.strip(), f"{c.name}: say what to do after what a failure means"
