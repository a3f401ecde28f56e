"""Nothing lost: over generated bundles of different seeds and mess levels, every source row of every file
ends in exactly one place — loaded (in the id map and live in Pipedrive), set aside (row-level quarantine in
staging, shaping's set-aside, the loader's set-aside) or not migrated by design — and nothing is counted twice.

Each bundle goes through the same domain functions the assets call (land, stage, profile, account audit,
owners, proposal, the demo's approval, provisioning, shaping, the load), without Dagster, to stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.shaping.prepare import shape_run
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.mapping.audit import audit_account
from flitstack_dagster.mapping.demo_approval import approve_for_demo
from flitstack_dagster.mapping.owners import resolve_owners
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.provision import provision_schema
from flitstack_dagster.mapping.yamlio import write_proposal
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.staging.runner import run_all

from . import kit
from .oracle import KIND, live

pytestmark = pytest.mark.slow

BUNDLES = [(3, 0.0), (5, 0.05), (11, 0.2)]  # (seed, mess)


def migrate_fast(root: Path, seed: int, mess: float) -> tuple[kit.Prepared, dict]:
    """Generate a 4-work-order bundle, run every stage in-process, load it; -> (prepared, sandbox snapshot)."""
    bundle = kit.generate(root / "bundle", 4, seed, mess)
    kit.add_attachments(bundle, 3)
    paths = Paths(root / "data").ensure()
    p = kit.Prepared(root, bundle, "")
    with duck.connect(paths.duckdb) as con, kit.sandbox(p) as sb:
        run_key = add_run(con, bundle, "full", paths.work).run_key
        p = kit.Prepared(root, bundle, run_key)
        land_bundle(con, open_bundle(bundle, paths.work / run_key), run_key)
        run_all(con, run_key)
        pd = kit.client(sb)
        profile = profile_source(con, run_key)
        audit = audit_account(pd, plan=kit.PLAN, seats=kit.SEATS)
        mapping_store.save_profile(paths, run_key, profile)
        mapping_store.save_audit(paths, run_key, audit)
        write_proposal(mapping_store.proposed_path(paths), propose_mapping(profile, audit))
        approve_for_demo(paths)
        kit.waive_sample_gate(paths)
        mapping = mapping_store.require_approved(paths)
        owners = resolve_owners(con, run_key, audit.users, mapping.options.fallback_owner_email)
        provision_schema(pd, mapping, con)
        _, checks = shape_run(con, run_key, mapping, owners, paths.work)
        assert [c.name for c in checks if c.severity == "ERROR" and not c.passed] == []
    with kit.sandbox(p) as sb:
        results = kit.load_all(p, kit.client(sb))
        assert not [r for r in results.values() if r.stopped]
        return p, sb.snapshot()


@pytest.mark.parametrize("seed,mess", BUNDLES, ids=[f"seed{s}-mess{m:g}" for s, m in BUNDLES])
def test_every_source_row_is_loaded_set_aside_or_not_migrated_exactly_once(tmp_path, seed, mess):
    p, snap = migrate_fast(tmp_path, seed, mess)
    with duck.connect(p.paths.duckdb, read_only=True) as con:
        q = lambda sql, *a: con.execute(sql, list(a)).fetchall()  # noqa: E731
        run = p.run_key
        # 1. raw rows = staged rows + rows quarantined at row level, by row number, disjoint
        files = q("SELECT DISTINCT file, entity FROM staging.quarantine WHERE _run_key = ?", run)
        for (entity,) in q("SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' "
                           "AND table_name NOT IN ('bundles', 'workflow_rules', 'form_configurations')"):
            raw = {r for (r,) in q(f'SELECT _row_number FROM raw."{entity}" WHERE _run_key = ?', run)}
            staged_rows = q(f'SELECT _row_number FROM staging."stg_{entity}" WHERE _run_key = ?', run)
            staged = {r for (r,) in staged_rows}
            quarantined = {r for (r,) in q("SELECT DISTINCT row_number FROM staging.quarantine WHERE _run_key = ? "
                                           "AND entity = ? AND level = 'row'", run, entity)}
            assert len(staged) == len(staged_rows), f"{entity}: a row staged twice"
            assert staged.isdisjoint(quarantined), f"{entity}: rows both staged and quarantined"
            assert staged | quarantined == raw, f"{entity}: raw rows neither staged nor quarantined"
            # 2. every staged row has exactly one outcome in the reconciliation
            recon = q("SELECT row_number, outcome FROM shaped.reconciliation WHERE run_key = ? AND file = ?",
                      run, _file_of(files, entity))
            if entity in ("user_defined_fields",) and not recon:
                continue
            rows = [r for r, _ in recon]
            assert len(rows) == len(set(rows)), f"{entity}: a source row counted twice"
            assert set(rows) == staged, f"{entity}: staged rows missing from the reconciliation"
            assert {o for _, o in recon} <= {"loaded", "set_aside", "not_migrated"}
        # 3. every record a 'loaded' source row produced is in Pipedrive or set aside by the loader, once
        aside = {(e, s) for e, s in q("SELECT entity, source_id FROM meta.load_set_aside WHERE run_key = ?", run)}
        loaded_origins = {s for (s,) in q("SELECT source_id FROM shaped.reconciliation WHERE run_key = ? "
                                          "AND outcome = 'loaded'", run)}
        total = 0
        for entity, table in ENTITIES.shaped_tables.items():
            shaped = q(f"SELECT source_id, origin_id FROM shaped.{table} WHERE run_key = ?", run)
            mapped = dict(q("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = ?", entity))
            records = live(snap, KIND[entity])
            for sid, origin in shaped:
                assert origin is None or origin in loaded_origins, f"{entity} {sid} from a row not counted as loaded"
                in_pd = sid in mapped and mapped[sid] in records
                assert in_pd != ((entity, sid) in aside), f"{entity} {sid}: loaded and set aside, or neither"
            assert len(records) == len(mapped) == len(set(mapped.values())), f"{entity}: strays or duplicates"
            total += len(shaped)
        assert total > 100


def _file_of(files: list[tuple[str, str]], entity: str) -> str:
    return next((f for f, e in files if e == entity), f"{entity}.csv")
