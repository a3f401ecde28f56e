"""The fast tier's one end-to-end run: a tiny generated bundle through the whole `migrate` job in
Dagster into the sandbox over HTTP — it waits for the approval, then loads every shaped record once
and verifies it all clean."""

from __future__ import annotations

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster_tests.kit import migrated_through_dagster

COLLECTION = {"organization": "organizations", "org_relationship": "organizationRelationships",
              "person": "persons", "deal": "deals", "activity": "activities", "note": "notes", "file": "files"}


def test_a_tiny_bundle_migrates_once_and_verifies_clean(tmp_path):
    bundle = tmp_path / "bundle"
    assert cli_main(["generate", "--work-orders", "3", "--seed", "5", "--out", str(bundle), "--no-mess-log"]) == 0
    with migrated_through_dagster(bundle, tmp_path / "data") as m:
        first = {c.check_name: c.passed for c in m.first.get_asset_check_evaluations()}
        assert first["mapping_approved"] is False
        assert m.second.success
        second = {c.check_name: c.passed for c in m.second.get_asset_check_evaluations()}
        assert second["reconciliation"] and second["every_record_once"] and second["no_unexplained_mismatches"]
        records = m.sandbox.snapshot()["records"]
        loaded = 0
        with duck.connect(m.paths.duckdb, read_only=True) as con:
            for entity, table in ENTITIES.shaped_tables.items():
                shaped = con.execute(f"SELECT count(*) FROM shaped.{table} WHERE run_key = ?", [m.run_key]).fetchone()[0]
                mapped = {r[0] for r in con.execute("SELECT pipedrive_id FROM meta.id_map WHERE entity = ?",
                                                    [entity]).fetchall()}
                aside = con.execute("SELECT count(*) FROM meta.load_set_aside WHERE run_key = ? AND entity = ?",
                                    [m.run_key, entity]).fetchone()[0]
                live = {int(r["id"]) for r in records[COLLECTION[entity]].values() if not r.get("is_deleted")}
                assert len(mapped) + aside == shaped, entity  # each shaped record loaded once or set aside
                assert mapped <= live, entity
                loaded += len(mapped)
        assert loaded > 0
