"""A run is pinned to the Pipedrive company it first wrote to: over real HTTP, with two sandbox accounts
and servers that are not Pipedrive's API, every step that writes (load, delta, deletions, provisioning,
rollback; library, CLI and Dagster) refuses before its first write, and both accounts (counted by
reading them back) and the id map stay as they were. Rollback proves each reversal by reading it back."""

from __future__ import annotations

import io
import re
import sys

import dagster as dg
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main
from flitstack_dagster.loading.deletions import apply_deletions
from flitstack_dagster.loading.rollback import RollbackUnproven, plan_rollback, rollback_run
from flitstack_dagster.loading.run import load_shaped
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.provision import DDL as PROVISION_DDL
from flitstack_dagster.mapping.provision import provision_schema
from flitstack_dagster.pipedrive.account import AccountIdentity, NotPipedriveApi, WrongAccount, identify
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.errors import PipedriveError
from flitstack_dagster.novo.runs import UnprovenAccount, check_account, register_run, run_account
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.core.settings import Paths
from flitstack_dagster_tests.loading import http_stubs
from flitstack_dagster_tests.loading.test_rollback import (
    DELTA,
    FULL,
    STAGES,
    Recording,
    Seeder,
    audit_count,
    id_map,
    load_run,
)

pytestmark = pytest.mark.slow

WRITE_OPS = ("add", "update", "delete")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("accounts")
    with SandboxServer(state_path=root / "a" / "sandbox.json") as a, \
            SandboxServer(state_path=root / "b" / "sandbox.json") as b:
        yield a, b


@pytest.fixture
def a(servers):
    servers[0].reset()
    return servers[0]


@pytest.fixture
def b(servers):
    """The other account, with records of its own whose ids match the ones loaded into `a`."""
    sb = servers[1]
    sb.reset()
    with PipedriveClient(sb.base_url, sb.api_token) as c:
        org = c.create_organization({"name": "Sandbox Org"}).id
        c.create_organization({"name": "Sandbox Org 2"})
        c.create_person({"name": "Sandbox Person", "org_id": org})
        deal = c.create_deal({"title": "Sandbox deal", "org_id": org}).id
        c.create_activity({"subject": "Sandbox call", "deal_id": deal, "due_date": "2026-02-03"})
        c.create_note({"content": "Sandbox note", "deal_id": deal})
    return sb


def label(sb: SandboxServer) -> str:
    acct = sb.snapshot()["account"]
    return f"{acct['company_domain']} (id {acct['company_id']})"


def count_records(sb: SandboxServer) -> dict[str, int]:
    """Live records per entity, read back through the API."""
    with PipedriveClient(sb.base_url, sb.api_token) as c:
        return {
            "organization": len(list(c.list_organizations())), "person": len(list(c.list_persons())),
            "deal": len(list(c.list_deals())), "activity": len(list(c.list_activities())),
            "note": len(list(c.list_notes())),
            "file": len([f for f in c.list_files() if getattr(f, "active_flag", True) is not False]),
        }


def writes(sb: SandboxServer) -> int:
    ops = sb.usage()["operations"]
    return sum(int(u.get("count", u.get("requests", 0))) for op, u in ops.items() if op.startswith(WRITE_OPS))


def prepare(con, client: PipedriveClient) -> None:
    """What pipedrive_schema records for the tiny run of test_rollback: one custom field, the pipeline."""
    for stmt in PROVISION_DDL:
        con.execute(stmt)
    tag = client.create_field("organization", {"field_name": "Asset Tag", "field_type": "varchar"}).field_code
    stages = client.list_stages(1)
    STAGES[:] = [st.name for st in stages[:2]]
    account = client.account()
    con.execute("INSERT INTO meta.field_registry VALUES (?, 'organization', 'Asset Tag', ?, 'varchar', NULL, now())",
                [account, tag])
    con.execute("INSERT INTO meta.pipeline_registry VALUES (?, 'pipeline', 'Pipeline', 1, NULL, NULL, now())", [account])
    for st in stages[:2]:
        con.execute("INSERT INTO meta.pipeline_registry VALUES (?, 'stage', ?, ?, 1, NULL, now())",
                    [account, st.name, st.id])


@pytest.fixture
def project(tmp_path, a, b, monkeypatch):
    """A data folder whose DuckDB file holds FULL loaded into `a` by the real loader."""
    paths = Paths(tmp_path / "data").ensure()
    monkeypatch.setenv("FLITSTACK_DATA_DIR", str(paths.root))
    (paths.root / "files").mkdir()
    (paths.root / "files" / "a1.txt").write_text("pump manual")
    with duck.connect(paths.duckdb) as con, PipedriveClient(a.base_url, a.api_token, max_concurrency=4) as client:
        prepare(con, client)
        load_run(con, client, FULL, paths.root)
    return paths


class World:
    """Everything a refused step must leave alone: both accounts, the id map and the audit log."""

    def __init__(self, paths: Paths, a: SandboxServer, b: SandboxServer):
        self.paths, self.a, self.b = paths, a, b

    def now(self) -> tuple:
        with duck.connect(self.paths.duckdb) as con:
            kept = (id_map(con), audit_count(con),
                    con.execute("SELECT run_key, company_id FROM meta.run_accounts ORDER BY ALL").fetchall())
        return count_records(self.a), count_records(self.b), writes(self.a), writes(self.b), kept


@pytest.fixture
def world(project, a, b):
    return World(project, a, b)


def use(monkeypatch, url: str, token: str) -> None:
    monkeypatch.setenv("PIPEDRIVE_BASE_URL", url)
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", token)


def test_the_run_is_pinned_to_the_account_it_first_wrote_to(project, a):
    with duck.connect(project.duckdb) as con:
        pinned = run_account(con, FULL)
    me = identify(PipedriveClient(a.base_url, a.api_token))
    assert isinstance(pinned, AccountIdentity) and pinned == me
    assert count_records(a)["deal"] == 1 and count_records(a)["organization"] == 2


def test_load_delta_deletions_and_provisioning_with_the_other_account_refuse_before_any_write(world, a, b):
    before = world.now()
    expected = (f"run {FULL} loaded into Pipedrive company {label(a)} but PIPEDRIVE_BASE_URL/TOKEN now point at "
                f"{label(b)}; point them back at {a.company_domain}, or register a new run")
    with duck.connect(world.paths.duckdb) as con, PipedriveClient(b.base_url, b.api_token) as other:
        with pytest.raises(WrongAccount) as e:
            load_shaped(con, other, FULL, "organization", bundle_root=world.paths.root)
        assert str(e.value) == expected
        # a delta's first write: the records it builds on live in the other account
        with pytest.raises(WrongAccount) as e:
            load_run(con, other, DELTA, world.paths.root)
        assert str(e.value) == (
            f"run {FULL} loaded into Pipedrive company {label(a)} and {DELTA} builds on its records, but "
            f"PIPEDRIVE_BASE_URL/TOKEN now point at {label(b)}; point them back at {a.company_domain}, "
            f"or roll back {FULL} first")
        assert run_account(con, DELTA) is None
        # deleted.csv naming a work order whose deal id exists in the other account too
        con.execute("CREATE SCHEMA IF NOT EXISTS staging")
        con.execute("CREATE TABLE staging.stg_deleted (entity VARCHAR, id VARCHAR, deleted_at VARCHAR, _run_key VARCHAR)")
        con.execute("INSERT INTO staging.stg_deleted VALUES ('Work Order', '1', '2026-01-01', ?)", [FULL])
        with pytest.raises(WrongAccount, match="point them back at"):
            apply_deletions(con, other, FULL, "delete")
        with pytest.raises(WrongAccount, match="point them back at"):
            provision_schema(other, Mapping(), con, run_key=FULL)
    assert world.now() == before


def test_rollback_with_the_other_account_refuses_before_any_write(world, a, b, monkeypatch, capsys):
    before = world.now()
    with duck.connect(world.paths.duckdb) as con, PipedriveClient(b.base_url, b.api_token) as other:
        with pytest.raises(WrongAccount) as e:
            rollback_run(con, other, FULL)
        assert f"now point at {label(b)};" in str(e.value)
        with pytest.raises(WrongAccount):
            plan_rollback(con, other, FULL)
    use(monkeypatch, b.base_url, b.api_token)
    assert main(["rollback", FULL, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: run {FULL} loaded into Pipedrive company {label(a)} but PIPEDRIVE_BASE_URL/TOKEN now "
                   f"point at {label(b)}; point them back at {a.company_domain}, or register a new run\n")
    assert world.now() == before


def test_repair_with_the_other_account_refuses_before_any_request_that_changes_anything(world, a, b):
    from flitstack_dagster.loading.repair import repair_run
    from flitstack_dagster.novo.runs import register_run

    with duck.connect(world.paths.duckdb) as con:
        register_run(con, FULL, world.paths.root, "fingerprint")
    before = world.now()
    with duck.connect(world.paths.duckdb) as con, PipedriveClient(b.base_url, b.api_token) as other:
        with pytest.raises(WrongAccount, match=re.escape(f"now point at {label(b)};")):
            repair_run(con, other, FULL, delete_duplicates=True)
    assert world.now() == before


@pytest.mark.parametrize("where", ["api_v3", "html", "login"])
def test_a_base_url_that_is_not_pipedrive_s_api_refuses_before_any_write(world, a, where, monkeypatch, capsys):
    stub = {"api_v3": None, "html": http_stubs.html_page(404), "login": http_stubs.login_redirect()}[where]
    with stub or http_stubs.html_page():
        url = a.base_url + "/api/v3" if stub is None else stub.url
        before = world.now()
        with duck.connect(world.paths.duckdb) as con, PipedriveClient(url, a.api_token) as wrong:
            for step in (lambda: load_shaped(con, wrong, FULL, "organization", bundle_root=world.paths.root),
                         lambda: rollback_run(con, wrong, FULL),
                         lambda: provision_schema(wrong, Mapping(), con, run_key=FULL)):
                with pytest.raises(NotPipedriveApi, match=f"^{url} is not a Pipedrive API: "):
                    step()
        use(monkeypatch, url, a.api_token)
        assert main(["rollback", FULL, "--yes"]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(f"error: {url} is not a Pipedrive API: ") and "Traceback" not in captured.err
        assert "set PIPEDRIVE_BASE_URL to https://<company>.pipedrive.com" in captured.err
        assert world.now() == before
        assert stub is None or stub.writes == []


def test_a_refused_token_says_to_fix_the_token(world, a, monkeypatch, capsys):
    before = world.now()
    use(monkeypatch, a.base_url, "not-the-token-0123456789")
    assert main(["rollback", FULL, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: Pipedrive at 127.0.0.1:{a.port} refused the API token: fix PIPEDRIVE_API_TOKEN and run "
                   "the same command again.\n")
    assert "not-the-token" not in err and world.now() == before


def test_a_token_refused_part_way_through_a_rollback_says_to_fix_the_token(world, a, monkeypatch, capsys):
    before = world.now()
    with http_stubs.proxy(a.base_url, refuse_deletes=True) as gw:
        use(monkeypatch, gw.url, a.api_token)
        assert main(["rollback", FULL, "--yes"]) == 2
        assert gw.writes  # the probe passed; the first delete was refused
    err = capsys.readouterr().err
    host = gw.url.removeprefix("http://")
    assert err == (f"error: Pipedrive at {host} refused the API token: fix PIPEDRIVE_API_TOKEN and run the same "
                   "command again.\n")
    assert world.now() == before


def test_dry_run_prints_the_preview_per_entity_and_account_and_writes_nothing(world, a, monkeypatch, capsys):
    before = world.now()
    use(monkeypatch, a.base_url, a.api_token)
    assert main(["rollback", FULL, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"rolling back {FULL} would change Pipedrive company {label(a)} at 127.0.0.1:{a.port}:" in out
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith(f"  {FULL}")}
    assert set(lines) == {"file", "note", "activity", "deal", "person", "org_relationship", "organization"}
    assert "delete      2" in lines["organization"] and "delete      1" in lines["deal"]
    assert out.rstrip().endswith("dry run: nothing was changed") and a.api_token not in out
    assert world.now() == before


def test_without_a_terminal_the_rollback_needs_yes_and_on_a_terminal_the_company_domain(world, a, monkeypatch, capsys):
    before = world.now()
    use(monkeypatch, a.base_url, a.api_token)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["rollback", FULL]) == 2
    err = capsys.readouterr().err
    assert err == ("error: a rollback deletes records in Pipedrive and needs confirmation: run it in a terminal, "
                   "or pass --yes (check what it does first with --dry-run)\n")
    assert world.now() == before

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    assert main(["rollback", FULL]) == 1
    assert "stopped: nothing was changed" in capsys.readouterr().out
    assert world.now() == before

    monkeypatch.setattr(sys, "stdin", Terminal(a.company_domain + "\n"))
    assert main(["rollback", FULL]) == 0
    assert f"rolled back {FULL}" in capsys.readouterr().out
    assert set(count_records(a).values()) == {0}
    with duck.connect(world.paths.duckdb) as con:
        assert id_map(con) == []


def test_an_html_404_from_a_gateway_stops_the_rollback_with_the_id_map_intact(world, a):
    before = world.now()
    with http_stubs.proxy(a.base_url, html_404_for=("/v1/files",)) as gw, duck.connect(world.paths.duckdb) as con:
        with pytest.raises(PipedriveError) as e:
            rollback_run(con, PipedriveClient(gw.url, a.api_token), FULL)
        assert e.value.status == 404 and ("DELETE", "/v1/files/1") in gw.writes
    assert world.now() == before  # nothing counted as "already gone"


def test_a_delete_that_does_not_read_back_deleted_keeps_its_id_map_row(world, a):
    before = world.now()
    with http_stubs.proxy(a.base_url, swallow_deletes=True) as liar, duck.connect(world.paths.duckdb) as con:
        with pytest.raises(RollbackUnproven) as e:
            rollback_run(con, PipedriveClient(liar.url, a.api_token), FULL)
        assert str(e.value) == (
            f"rollback of {FULL} stopped: 1 file record(s) did not read back as rolled back (id 1 is still in "
            "Pipedrive after its delete); their id-map rows are kept. Check them in Pipedrive, then run the same "
            "command again.")
    assert world.now() == before
    # the honest server then finishes it
    with duck.connect(world.paths.duckdb) as con:
        rollback_run(con, PipedriveClient(a.base_url, a.api_token), FULL)
        assert id_map(con) == []
    assert set(count_records(a).values()) == {0}


def test_a_rollback_that_fails_part_way_leaves_the_skips_standing(a):
    import duckdb

    con = duckdb.connect()
    seeder = Seeder(PipedriveClient(a.base_url, a.api_token), con)
    seeder.full()
    seeder.delta()  # updates, one skip, two creates

    def skips() -> list:
        return con.execute("SELECT rolled_back_by FROM meta.audit_log WHERE run_key = 'delta-y' AND operation = 'skip'"
                           ).fetchall()

    flaky = Recording(a.base_url, a.api_token, fail_after=1, max_concurrency=1)
    with pytest.raises(PipedriveError, match="connection lost"):
        rollback_run(con, flaky, "delta-y")
    assert flaky.deletes == ["note"] and skips() == [(None,)]

    result = rollback_run(con, PipedriveClient(a.base_url, a.api_token), "delta-y")
    assert skips() == [("rollback:delta-y",)] and result.runs[0].marked == 1
    ops = dict(con.execute("SELECT operation, count(*) FROM meta.audit_log WHERE run_key = 'rollback:delta-y' "
                           "GROUP BY ALL").fetchall())
    assert ops == {"delete": 2, "restore": 3}


def test_the_rollback_job_shows_the_preview_and_refuses_the_other_account(world, a, b):
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
    from flitstack_dagster.defs.resources import build_resources
    from flitstack_dagster.defs.rollback import rollback

    before = world.now()
    base = build_resources(world.paths.root)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(migration_runs.name, [FULL])
        other = {**base, "pipedrive": PipedriveResource(base_url=b.base_url, api_token=b.api_token)}
        refused = rollback.execute_in_process(partition_key=FULL, instance=instance, resources=other,
                                              raise_on_error=False)
        assert not refused.success
        message = refused.failure_data_for_node("rollback_migration_run").error.message
        assert f"point them back at {a.company_domain}, or register a new run" in message
        assert "Traceback" not in message and "WrongAccount" not in message

        mine = {**base, "pipedrive": PipedriveResource(base_url=a.base_url, api_token=a.api_token)}
        preview = rollback.execute_in_process(
            partition_key=FULL, instance=instance, resources=mine,
            run_config={"ops": {"rollback_migration_run": {"config": {"dry_run": True}}}},
        )
        assert preview.success
        [out] = [e for e in preview.all_events if e.event_type_value == "STEP_OUTPUT"]
        meta = out.event_specific_data.metadata
        assert meta["account"].value == f"Pipedrive company {label(a)} at 127.0.0.1:{a.port}"
        table = meta["preview"].value
        assert [c.name for c in table.schema.columns][:4] == ["run", "entity", "delete", "restore"]
        assert (FULL, "organization", 2, 0) in [(r.data["run"], r.data["entity"], r.data["delete"], r.data["restore"])
                                                for r in table.records]
    assert world.now() == before


def test_a_load_step_in_dagster_fails_with_the_sentence(world, a, b):
    from flitstack_dagster.defs.loading import load_assets
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
    from flitstack_dagster.defs.resources import build_resources

    with duck.connect(world.paths.duckdb) as con:
        register_run(con, FULL, world.paths.root, "fingerprint")
    before = world.now()
    [asset] = [x for x in load_assets if x.key.path[-1] == "loaded_organizations"]
    resources = {**build_resources(world.paths.root),
                 "pipedrive": PipedriveResource(base_url=b.base_url, api_token=b.api_token)}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(migration_runs.name, [FULL])
        result = dg.materialize([asset], partition_key=FULL, instance=instance, resources=resources,
                                raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert f"now point at {label(b)}; point them back at {a.company_domain}" in message
    assert "Traceback" not in message
    assert world.now() == before


def test_a_run_loaded_before_runs_were_pinned_is_guarded_by_the_company_its_fields_live_in(world, a, b):
    with duck.connect(world.paths.duckdb) as con:
        con.execute("DELETE FROM meta.run_accounts")  # a data folder from before runs recorded their account
    before = world.now()
    with duck.connect(world.paths.duckdb) as con, PipedriveClient(b.base_url, b.api_token) as other:
        with pytest.raises(UnprovenAccount) as e:
            rollback_run(con, other, FULL)
    assert str(e.value) == (
        f"run {FULL} loaded before runs were pinned to their Pipedrive account, and this data folder provisioned "
        f"its fields in company {a.company_domain}, but PIPEDRIVE_BASE_URL/TOKEN now point at {label(b)}; "
        f"point them back at {a.company_domain}")
    assert world.now() == before
    with duck.connect(world.paths.duckdb) as con, PipedriveClient(a.base_url, a.api_token) as same:
        check_account(con, same, DELTA)  # the right company: the old run is pinned to it from now on
        assert run_account(con, FULL) == identify(same)
