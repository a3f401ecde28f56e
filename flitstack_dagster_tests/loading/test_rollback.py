"""Rollback over real HTTP against the sandbox: runs are seeded through the client and the load
store's audit log (what the loader writes), then rolled back and compared with the sandbox state."""

from __future__ import annotations

import json

import duckdb
import pytest

from flitstack_dagster.loading.rollback import RollbackError, RollbackRefused, dependents, rollback_run
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.sandbox.server import SandboxServer

KINDS = {"organization": "organizations", "org_relationship": "organizationRelationships", "person": "persons",
         "deal": "deals", "activity": "activities", "note": "notes", "file": "files"}
# fields Pipedrive stamps on a write, which a rollback cannot set back (it is a write itself)
WRITE_STAMPS = {"update_time", "delete_time", "last_update_user_id", "stage_change_time"}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as sb:
        yield sb


@pytest.fixture
def sb(sandbox):
    sandbox.reset()
    return sandbox


@pytest.fixture
def client(sb):
    with PipedriveClient(sb.base_url, sb.api_token, max_concurrency=4) as c:
        yield c


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def live_state(sb: SandboxServer) -> dict:
    """Live migrated records, without the write stamps (what "the same state" means to a user)."""
    records = sb.snapshot()["records"]
    return {
        kind: {rid: _comparable(rec) for rid, rec in records[kind].items() if not rec.get("is_deleted")}
        for kind in KINDS.values()
    }


def _comparable(rec: dict) -> dict:
    """Without write stamps; a custom field set back to null is the same as one never set (the API
    can only clear a field, and Pipedrive reads an unset field as null)."""
    out = {k: v for k, v in rec.items() if k not in WRITE_STAMPS}
    if isinstance(out.get("custom_fields"), dict):
        out["custom_fields"] = {k: v for k, v in out["custom_fields"].items() if v is not None}
    return out


def migrated_count(sb: SandboxServer) -> int:
    return sum(len(v) for v in live_state(sb).values())


class Seeder:
    """Writes records the way the loader does: one request, then one audit row / id-map change."""

    def __init__(self, client: PipedriveClient, con: duckdb.DuckDBPyConnection):
        self.client, self.store = client, LoadStore(con)
        self.ids: dict[str, int] = {}

    def create(self, run: str, entity: str, sid: str, body: dict, *, adopt: bool = False) -> int:
        if entity == "org_relationship":
            pid = self.client.create_organization_relationship(body).id
        elif entity == "note":
            pid = self.client.create_note(body).id
        else:
            pid = getattr(self.client, f"create_{entity}")(body).id
        self.store.record(run, entity, sid, "adopt" if adopt else "create", pid,
                          content_hash=f"{run}:{sid}", payload=body, after=body)
        self.ids[sid] = pid
        return pid

    def update(self, run: str, entity: str, sid: str, changes: dict) -> None:
        known = self.store.id_map(entity)[sid]
        getattr(self.client, f"update_{entity}")(known.pipedrive_id, changes)
        before = {k: known.payload.get(k) for k in changes}
        self.store.record(run, entity, sid, "update", known.pipedrive_id, content_hash=f"{run}:{sid}",
                          payload={**known.payload, **changes}, before=before, after=changes)

    def skip(self, run: str, entity: str, sid: str) -> None:
        self.store.record_skips(run, entity, [{"source_id": sid, "pipedrive_id": self.ids[sid]}])

    def full(self, run: str = "full-x") -> None:
        o1 = self.create(run, "organization", "account:1", {"name": "Springfield Water"})
        o2 = self.create(run, "organization", "asset:1", {"name": "Pump 1"})
        self.create(run, "org_relationship", "rel:asset:1",
                    {"type": "parent", "rel_owner_org_id": o1, "rel_linked_org_id": o2})
        p1 = self.create(run, "person", "contact:1", {"name": "Ann Lee", "org_id": o1})
        d1 = self.create(run, "deal", "work_order:1", {"title": "WO-1", "org_id": o2, "person_id": p1})
        self.create(run, "activity", "activity:1", {"subject": "Visit", "deal_id": d1, "due_date": "2026-01-02"})
        self.create(run, "note", "note:1", {"content": "Pump squeaks", "deal_id": d1})

    def delta(self, run: str = "delta-y") -> None:
        self.update(run, "organization", "account:1", {"name": "Springfield Water Co"})
        self.update(run, "deal", "work_order:1", {"title": "WO-1 (reopened)"})
        self.update(run, "note", "note:1", {"content": "Pump squeaks loudly"})
        self.skip(run, "organization", "asset:1")
        d2 = self.create(run, "deal", "work_order:2", {"title": "WO-2", "org_id": self.ids["account:1"]})
        self.create(run, "note", "note:2", {"content": "New job", "deal_id": d2})


def id_map(con) -> list[tuple]:
    return con.execute(
        "SELECT entity, source_id, pipedrive_id, content_hash, payload, created_by_run, state FROM meta.id_map "
        "ORDER BY entity, source_id"
    ).fetchall()


def audit_count(con) -> int:
    return con.execute("SELECT count(*) FROM meta.audit_log").fetchall()[0][0]


class Recording(PipedriveClient):
    """The real client, remembering which entity each delete was for; can fail after N deletes."""

    def __init__(self, *a, fail_after: int | None = None, **kw):
        super().__init__(*a, **kw)
        self.deletes: list[str] = []
        self.fail_after = fail_after

    def _fail_now(self, entity):
        if self.fail_after is not None and len(self.deletes) >= self.fail_after:
            raise PipedriveError(None, "connection lost", operation=f"DELETE {entity}")

    def _delete(self, entity, id):
        self._fail_now(entity)
        super()._delete(entity, id)
        self.deletes.append(entity)

    def delete_file(self, id):
        self._fail_now("file")
        super().delete_file(id)
        self.deletes.append("file")


def test_rollback_of_a_full_run_deletes_everything_it_created_in_reverse_fk_order(sb, con):
    seed_client = PipedriveClient(sb.base_url, sb.api_token)
    Seeder(seed_client, con).full()
    assert migrated_count(sb) == 7
    client = Recording(sb.base_url, sb.api_token, max_concurrency=1)
    messages: list[str] = []

    result = rollback_run(con, client, "full-x", progress=messages.append)

    assert migrated_count(sb) == 0
    assert result.deleted == 7 and result.restored == 0 and result.already_gone == 0
    order = ["note", "activity", "deal", "person", "organization_relationship", "organization"]
    assert sorted(client.deletes, key=order.index) == client.deletes, client.deletes
    assert client.deletes.index("deal") > max(client.deletes.index("activity"), client.deletes.index("note"))
    assert id_map(con) == []
    assert con.execute("SELECT count(*) FROM meta.audit_log WHERE run_key = 'full-x' AND rolled_back_by IS NULL"
                       ).fetchall()[0][0] == 0
    rows = con.execute("SELECT operation, count(*) FROM meta.audit_log WHERE run_key = 'rollback:full-x' GROUP BY ALL"
                       ).fetchall()
    assert rows == [("delete", 7)]
    assert any("deal" in m for m in messages) and "7 deleted" in result.summary()


def test_rollback_of_a_delta_restores_the_state_after_the_full_run(sb, client, con):
    seeder = Seeder(client, con)
    seeder.full()
    # the full run's content hashes, as shaping stored them
    con.execute("CREATE SCHEMA shaped")
    con.execute("CREATE TABLE shaped.pd_organizations (run_key VARCHAR, source_id VARCHAR, content_hash VARCHAR)")
    con.execute("INSERT INTO shaped.pd_organizations VALUES ('full-x', 'account:1', 'full-x:account:1')")
    after_full, map_after_full = live_state(sb), id_map(con)
    seeder.delta()
    assert live_state(sb) != after_full

    result = rollback_run(con, client, "delta-y")

    assert live_state(sb) == after_full
    assert (result.deleted, result.restored) == (2, 3)
    restored = {r[1]: r for r in id_map(con)}
    for row in map_after_full:
        _entity, sid, pid, _hash, payload, created_by, state = row
        now = restored[sid]
        assert now[2] == pid and now[5] == created_by and now[6] == state
        assert json.loads(now[4]) == json.loads(payload), sid  # the payload the next load compares against
    assert restored["account:1"][3] == "full-x:account:1"  # hash back from the full run's shaped row
    assert restored["work_order:1"][3] is None  # unknown hash: the next load compares field by field
    assert set(restored) == {r[1] for r in map_after_full}
    ops = dict(con.execute("SELECT operation, count(*) FROM meta.audit_log WHERE run_key = 'rollback:delta-y' "
                           "GROUP BY ALL").fetchall())
    assert ops == {"delete": 2, "restore": 3}


def test_a_run_a_later_run_built_on_is_refused_without_cascade(sb, client, con):
    seeder = Seeder(client, con)
    seeder.full()
    seeder.delta()
    before, audit_before, map_before = live_state(sb), audit_count(con), id_map(con)

    with pytest.raises(RollbackRefused) as e:
        rollback_run(con, client, "full-x")

    assert "delta-y" in str(e.value) and "--cascade" in str(e.value)
    assert set(e.value.dependents) == {"delta-y"}
    assert live_state(sb) == before and audit_count(con) == audit_before and id_map(con) == map_before

    # rolled back first, the full run can go
    rollback_run(con, client, "delta-y")
    assert dependents(con, "full-x") == {}
    rollback_run(con, client, "full-x")
    assert migrated_count(sb) == 0 and id_map(con) == []


def test_a_later_run_that_only_references_the_runs_records_counts_as_built_on(client, con):
    seeder = Seeder(client, con)
    seeder.full()
    seeder.create("delta-z", "person", "contact:9", {"name": "New", "org_id": seeder.ids["account:1"]})
    assert dependents(con, "full-x") == {"delta-z": 1}
    assert dependents(con, "delta-z") == {}


def test_cascade_rolls_back_the_later_runs_first_newest_first(sb, client, con):
    seeder = Seeder(client, con)
    seeder.full()
    seeder.delta()
    seeder.update("delta-z", "organization", "account:1", {"name": "Third name"})

    result = rollback_run(con, client, "full-x", cascade=True)

    assert [r.run_key for r in result.runs] == ["delta-z", "delta-y", "full-x"]
    assert migrated_count(sb) == 0 and id_map(con) == []
    assert con.execute("SELECT count(*) FROM meta.audit_log WHERE rolled_back_by IS NULL "
                       "AND run_key NOT LIKE 'rollback:%'").fetchall()[0][0] == 0


def test_rolling_back_twice_changes_nothing_the_second_time(sb, con):
    client = Recording(sb.base_url, sb.api_token)
    seeder = Seeder(client, con)
    seeder.full()
    seeder.delta()
    rollback_run(con, client, "delta-y")
    state, audit, mapping, tokens = live_state(sb), audit_count(con), id_map(con), client.tokens_spent

    again = rollback_run(con, client, "delta-y")

    assert not again.changed_anything and "already rolled back" in again.summary()
    assert client.tokens_spent == tokens  # not one request
    assert live_state(sb) == state and audit_count(con) == audit and id_map(con) == mapping


def test_an_interrupted_rollback_finishes_when_run_again(sb, con):
    seeder = Seeder(PipedriveClient(sb.base_url, sb.api_token), con)
    seeder.full()
    # a crash after Pipedrive deleted the note but before the rollback wrote it down
    seeder.client.delete_note(seeder.ids["note:1"])
    flaky = Recording(sb.base_url, sb.api_token, fail_after=3, max_concurrency=1)

    with pytest.raises(PipedriveError, match="connection lost"):
        rollback_run(con, flaky, "full-x")
    assert 0 < migrated_count(sb) < 7
    assert con.execute("SELECT count(*) FROM meta.audit_log WHERE rolled_back_by = 'rollback:full-x'"
                       ).fetchall()[0][0] == 4  # three deletes and the note that was gone already

    result = rollback_run(con, PipedriveClient(sb.base_url, sb.api_token), "full-x")

    assert migrated_count(sb) == 0 and id_map(con) == []
    assert result.deleted == 3 and result.already_gone == 0
    ops = con.execute("SELECT source_id, count(*) FROM meta.audit_log WHERE run_key = 'rollback:full-x' "
                      "GROUP BY ALL HAVING count(*) > 1").fetchall()
    assert ops == []  # every record reversed exactly once
    assert con.execute("SELECT count(*) FROM meta.audit_log WHERE run_key = 'rollback:full-x' "
                       "AND after->>'already_gone' = 'true'").fetchall()[0][0] == 1


def test_an_adopted_record_is_handed_back_to_the_run_that_created_it(sb, client, con):
    seeder = Seeder(client, con)
    pid = seeder.create("sample-s", "organization", "account:1", {"name": "Sampled"})
    # the full run found the sample's record by its source id instead of creating it again
    seeder.store.record("full-x", "organization", "account:1", "adopt", pid, content_hash="h", payload={"name": "Sampled"},
                        after={"name": "Sampled"})
    # and an adopt of its own create whose answer was lost
    own = client.create_organization({"name": "Lost answer"}).id
    seeder.store.record("full-x", "organization", "account:2", "adopt", own, content_hash="h2",
                        payload={"name": "Lost answer"}, after={"name": "Lost answer"})

    seeder.store.begin_create("organization", "account:3", "full-x")  # a create whose answer never came

    result = rollback_run(con, client, "full-x")

    assert (result.handed_back, result.deleted) == (1, 1)
    assert any("organization account:3" in w and "load the partition again" in w for w in result.warnings)
    assert [r["name"] for r in live_state(sb)["organizations"].values()] == ["Sampled"]
    assert [(r[1], r[2], r[5]) for r in id_map(con)] == [("account:1", pid, "sample-s")]


def test_unknown_and_empty_runs_are_refused_with_a_clear_message(client, con):
    Seeder(client, con).full()
    with pytest.raises(RollbackError, match="unknown migration run 'full-nope'"):
        rollback_run(con, client, "full-nope")
    con.execute("CREATE TABLE meta.migration_runs (run_key VARCHAR, registered_at TIMESTAMPTZ)")
    con.execute("INSERT INTO meta.migration_runs VALUES ('delta-empty', now())")
    with pytest.raises(RollbackError, match="nothing to roll back: run delta-empty"):
        rollback_run(con, client, "delta-empty")
    with pytest.raises(RollbackError, match="cannot be rolled back"):
        rollback_run(con, client, "rollback:full-x")


# -- the CLI and the Dagster job ---------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, sb, monkeypatch):
    """A data folder whose DuckDB file holds a full run and a delta on top of it."""
    from flitstack_dagster.core import duck
    from flitstack_dagster.core.settings import Paths

    paths = Paths(tmp_path / "data").ensure()
    monkeypatch.setenv("FLITSTACK_DATA_DIR", str(paths.root))
    monkeypatch.setenv("PIPEDRIVE_BASE_URL", sb.base_url)
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", sb.api_token)
    with duck.connect(paths.duckdb) as c, PipedriveClient(sb.base_url, sb.api_token) as client:
        seeder = Seeder(client, c)
        seeder.full()
        seeder.delta()
    return paths


@pytest.mark.slow
def test_cli_rollback_refuses_explains_and_cascades(project, sb, capsys):
    from flitstack_dagster.cli import main

    assert main(["rollback", "full-nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown migration run 'full-nope'" in err and "Traceback" not in err

    assert main(["rollback", "full-x"]) == 2
    err = capsys.readouterr().err
    assert "later runs built on it: delta-y" in err and "--cascade" in err
    assert migrated_count(sb) == 9

    assert main(["rollback", "full-x", "--cascade", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "rolled back delta-y, full-x" in out and "deal" in out and sb.api_token not in out
    assert migrated_count(sb) == 0

    assert main(["rollback", "full-x"]) == 0
    assert "already rolled back" in capsys.readouterr().out


@pytest.mark.slow
def test_dagster_rollback_job_for_a_partition(project, sb):
    import dagster as dg

    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
    from flitstack_dagster.defs.resources import build_resources
    from flitstack_dagster.defs.rollback import rollback

    resources = {**build_resources(project.root), "pipedrive": PipedriveResource(base_url=sb.base_url,
                                                                                 api_token=sb.api_token)}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(migration_runs.name, ["full-x", "delta-y"])
        refused = rollback.execute_in_process(partition_key="full-x", instance=instance, resources=resources,
                                              raise_on_error=False)
        assert not refused.success
        failure = refused.failure_data_for_node("rollback_migration_run")
        assert "delta-y" in failure.error.message and "cascade" in failure.error.message

        done = rollback.execute_in_process(partition_key="delta-y", instance=instance, resources=resources)
        assert done.success
        [mat] = [e for e in done.all_events if e.event_type_value == "STEP_OUTPUT"]
        meta = mat.event_specific_data.metadata
        assert meta["deleted"].value == 2 and meta["restored"].value == 3

        full = rollback.execute_in_process(
            partition_key="full-x", instance=instance, resources=resources,
            run_config={"ops": {"rollback_migration_run": {"config": {"cascade": False}}}},
        )
        assert full.success  # delta-y is rolled back already: nothing stands on full-x
    assert migrated_count(sb) == 0


# -- with the real loader: shaped rows -> load_shaped -> rollback ------------------------------------------

FULL = "full-e2e"
DELTA = "delta-e2e"
STAGES: list[str] = []  # the sandbox pipeline's first two stage names (read in `loaded`)


def _shaped_rows(run_key: str) -> dict[str, list[dict]]:
    """A tiny migration run as shaping writes it (`shaped.pd_*`); the delta changes, adds and keeps."""
    full = run_key == FULL

    def row(sid, payload=None, **refs):
        body = json.dumps(payload, sort_keys=True) if payload is not None else None
        return {"run_key": run_key, "source_id": sid, "payload": body,
                "content_hash": f"h:{sid}:{body}:{sorted(refs.items())}", **refs}

    orgs = [row("account:1", {"name": "Springfield Water" if full else "Springfield Water Co",
                              "Asset Tag": None if full else "T-1"}),
            row("asset:1", {"name": "Pump 1", "Asset Tag": "P-1"})]
    notes = [row("note:1", {"content": "Pump squeaks" if full else "Pump squeaks loudly",
                            "add_time": "2025-03-04T05:06:07Z"}, deal_ref="work_order:1")]
    deals = [row("work_order:1", {"title": "WO-1", "pipeline": "Pipeline", "stage": STAGES[0 if full else 1]},
                 org_ref="asset:1", person_ref="contact:1")]
    activities = [row("activity:1", {"subject": "Visit" if full else "Visit again", "type": "task",
                                     "due_date": "2026-01-02"}, deal_ref="work_order:1")]
    if not full:
        deals.append(row("work_order:2", {"title": "WO-2"}, org_ref="account:1"))
        notes.append(row("note:2", {"content": "New job", "add_time": "2025-05-06T07:08:09Z"}, deal_ref="work_order:2"))
    return {
        "pd_organizations": orgs,
        "pd_org_relationships": [row("rel:asset:1", parent_ref="account:1", org_ref="asset:1")] if full else [],
        "pd_persons": [row("contact:1", {"name": "Ann Lee"}, org_ref="account:1")] if full else [],
        "pd_deals": deals,
        "pd_activities": activities,
        "pd_notes": notes,
        "pd_files": [{**row("attachment:1", {}, deal_ref="work_order:1"), "body_path": "files/a1.txt",
                      "file_name": "a1.txt", "content_type": "text/plain", "decision": "upload"}] if full else [],
    }


def load_run(con, client, run_key: str, bundle_root) -> dict[str, tuple[int, int, int]]:
    """Shape (by hand) and load one run with the project's loader; entity -> (created, updated, skipped)."""
    import polars as pl

    from flitstack_dagster.loading.run import load_shaped

    cols = ["run_key", "source_id", "payload", "content_hash", "org_ref", "person_ref", "deal_ref", "parent_ref",
            "body_path", "file_name", "content_type", "decision"]
    con.execute("CREATE SCHEMA IF NOT EXISTS shaped")
    for table, rows in _shaped_rows(run_key).items():
        frame = pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema={c: pl.String for c in cols})
        con.register("_f", frame)
        con.execute(f"CREATE TABLE IF NOT EXISTS shaped.{table} AS SELECT * FROM _f LIMIT 0")
        con.execute(f"DELETE FROM shaped.{table} WHERE run_key = ?", [run_key])
        con.execute(f"INSERT INTO shaped.{table} SELECT * FROM _f")
        con.unregister("_f")
    out = {}
    for entity in ("organization", "org_relationship", "person", "deal", "activity", "note", "file"):
        r = load_shaped(con, client, run_key, entity, bundle_root=bundle_root)
        assert not r.set_aside and r.stopped is None, (entity, r.set_aside, r.stopped)
        out[entity] = (r.created, r.updated, r.skipped)
    return out


@pytest.fixture
def loaded(tmp_path, sb, client, con):
    """A full run loaded by the real loader (state kept), then a delta on top."""
    from flitstack_dagster.mapping.provision import DDL as PROVISION_DDL

    for stmt in PROVISION_DDL:  # what pipedrive_schema records: one custom field, the default pipeline
        con.execute(stmt)
    tag = client.create_field("organization", {"field_name": "Asset Tag", "field_type": "varchar"}).field_code
    stages = client.list_stages(1)
    STAGES[:] = [st.name for st in stages[:2]]
    for account in {client.account(), str(client.base_url)}:
        con.execute("INSERT INTO meta.field_registry VALUES (?, 'organization', 'Asset Tag', ?, 'varchar', NULL, now())",
                    [account, tag])
        con.execute("INSERT INTO meta.pipeline_registry VALUES (?, 'pipeline', 'Pipeline', 1, NULL, NULL, now())",
                    [account])
        for st in stages[:2]:
            con.execute("INSERT INTO meta.pipeline_registry VALUES (?, 'stage', ?, ?, 1, NULL, now())",
                        [account, st.name, st.id])
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a1.txt").write_text("pump manual")
    load_run(con, client, FULL, tmp_path)
    after_full = (live_state(sb), id_map(con))
    load_run(con, client, DELTA, tmp_path)
    return after_full, tmp_path


def test_e2e_rollback_of_the_delta_restores_the_state_after_the_full_run(sb, client, con, loaded):
    (state_after_full, map_after_full), root = loaded
    assert live_state(sb) != state_after_full

    result = rollback_run(con, client, DELTA)

    assert (result.deleted, result.restored) == (2, 4)
    assert live_state(sb) == state_after_full
    assert id_map(con) == map_after_full  # payloads and content hashes as the full run left them
    # so reloading the full run sends nothing, and the delta can be loaded again
    tokens = client.tokens_spent
    reloaded = load_run(con, client, FULL, root)
    assert all(created == updated == 0 for created, updated, _ in reloaded.values()), reloaded
    assert client.tokens_spent - tokens < 20  # lookups only (the account), no writes
    again = load_run(con, client, DELTA, root)
    assert (again["deal"], again["organization"][1], again["note"]) == ((1, 1, 0), 1, (1, 1, 0))


def test_e2e_full_run_refused_while_the_delta_stands_then_cascade_empties_the_sandbox(sb, client, con, loaded):
    before = live_state(sb)
    with pytest.raises(RollbackRefused, match=DELTA):
        rollback_run(con, client, FULL)
    assert live_state(sb) == before

    result = rollback_run(con, client, FULL, cascade=True)

    assert [r.run_key for r in result.runs] == [DELTA, FULL]
    assert migrated_count(sb) == 0 and id_map(con) == []
    assert not rollback_run(con, client, FULL).changed_anything
    assert not rollback_run(con, client, DELTA).changed_anything


@pytest.mark.slow
def test_e2e_interrupted_rollback_of_a_full_run_finishes_when_run_again(sb, con, loaded):
    flaky = Recording(sb.base_url, sb.api_token, fail_after=4, max_concurrency=1)
    rollback_run(con, flaky, DELTA)  # 2 deletes
    with pytest.raises(PipedriveError, match="connection lost"):
        rollback_run(con, flaky, FULL)  # stops after 2 more
    assert migrated_count(sb) == 6

    rollback_run(con, PipedriveClient(sb.base_url, sb.api_token), FULL)

    assert migrated_count(sb) == 0 and id_map(con) == []
    assert con.execute("SELECT count(*) FROM meta.audit_log WHERE run_key LIKE 'rollback:%' AND operation = 'delete'"
                       ).fetchall()[0][0] == 8 + 2
