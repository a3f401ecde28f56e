"""Repair over real HTTP: a hand-made migrated run in the sandbox (every entity, the loader's own bodies),
then the account and the id map disagree in each way repair must handle."""

from __future__ import annotations

import httpx
import pytest

from flitstack_dagster.loading.marker import marked_file_name, without_marker
from flitstack_dagster.loading.repair import repair_run
from flitstack_dagster.loading.rollback import rollback_run
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.loading.resolve import Registry
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.novo.runs import ensure_schema as ensure_runs
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.verification.verify import account_of, verify_run
from flitstack_dagster_tests.verification.handmade import RUN, build


@pytest.fixture()
def world(tmp_path):
    with (SandboxServer(state_path=None, plan="growth", seats=5, port=0) as sb,
          PipedriveClient(sb.base_url, sb.api_token, plan="growth", seats=5) as client):
        hm = build(client, tmp_path)
        ensure_runs(hm.con)
        hm.con.execute("INSERT INTO meta.migration_runs VALUES (?, 'sample', ?, 'x', now(), 'test')", [RUN, str(tmp_path)])
        (tmp_path / "files").mkdir(exist_ok=True)
        (tmp_path / "files" / "photo.png").write_bytes(b"\x89PNG fourteen!")
        yield sb, client, hm, tmp_path


def mapped(con, entity: str) -> dict[str, int]:
    return dict(con.execute("SELECT source_id, pipedrive_id FROM meta.id_map WHERE entity = ?", [entity]).fetchall())


def live(sb, kind: str) -> set[int]:
    return {int(i) for i, r in sb.snapshot()["records"][kind].items()
            if not r.get("is_deleted") and r.get("active_flag", True) is not False}


def spoil(sb, client, hm, tmp_path) -> dict[str, int]:
    """Every kind of disagreement at once; -> the ids of the duplicates made."""
    client.delete_deal(hm.ids["work_order:WO-2"])  # the account lost a deal the map holds
    hm.con.execute("DELETE FROM meta.id_map WHERE source_id = 'status_log:SL1'")  # the map lost a note
    hm.con.execute("UPDATE meta.id_map SET pipedrive_id = 999 WHERE source_id = 'labor:100001'")  # wrong id
    person_key = Registry.load(hm.con, account_of(client)).fields["person"]["Novo Source ID"].key
    extra_file = client.upload_file(tmp_path / "files" / "photo.png", deal_id=hm.ids["work_order:WO-1"],
                                    file_name=marked_file_name("file", "attachment:ATT-1", "photo.png"))[1]
    extra_person = client.create_person({"name": "Copy", "custom_fields": {person_key: "contact:C1"}}).id
    return {"file": extra_file, "person": extra_person}


def test_repair_adopts_drops_and_lists_then_finds_nothing_more(world):
    sb, client, hm, tmp_path = world
    extra = spoil(sb, client, hm, tmp_path)
    r = repair_run(hm.con, client, RUN)
    by = {e.entity: e for e in r.entities}
    assert by["deal"].missing == [{"source_id": "work_order:WO-2", "pipedrive_id": hm.ids["work_order:WO-2"]}]
    assert by["note"].adopted == [{"source_id": "status_log:SL1", "pipedrive_id": hm.ids["status_log:SL1"], "was": None}]
    assert by["activity"].adopted == [{"source_id": "labor:100001", "pipedrive_id": hm.ids["labor:100001"], "was": 999}]
    assert by["file"].duplicated == [{"source_id": "attachment:ATT-1", "kept": hm.ids["attachment:ATT-1"],
                                      "extra": [extra["file"]], "deleted": False, "already_gone": []}]
    assert by["person"].duplicated[0]["extra"] == [extra["person"]]
    # the id map now says what the account holds
    assert "work_order:WO-2" not in mapped(hm.con, "deal")
    assert mapped(hm.con, "note") == {"status_log:SL1": hm.ids["status_log:SL1"]}
    assert mapped(hm.con, "activity") == {"labor:100001": hm.ids["labor:100001"]}
    assert extra["file"] in live(sb, "files")  # listed, not deleted
    assert "missing deal work_order:WO-2" in r.summary() and "repair --delete-duplicates" in r.summary()
    again = repair_run(hm.con, client, RUN)
    assert again.count("adopted") == again.count("missing") == 0
    assert again.count("duplicated") == r.count("duplicated")  # still there until asked to delete


def test_delete_duplicates_keeps_the_mapped_record_and_deletes_the_rest(world):
    sb, client, hm, tmp_path = world
    extra = spoil(sb, client, hm, tmp_path)
    r = repair_run(hm.con, client, RUN, delete_duplicates=True)
    assert r.deleted == len(extra)
    assert extra["file"] not in live(sb, "files") and hm.ids["attachment:ATT-1"] in live(sb, "files")
    assert extra["person"] not in live(sb, "persons") and hm.ids["contact:C1"] in live(sb, "persons")
    assert repair_run(hm.con, client, RUN).count("duplicated") == 0
    audited = hm.con.execute("SELECT entity, pipedrive_id FROM meta.audit_log WHERE run_key = ? AND "
                             "operation = 'delete_duplicate' ORDER BY ALL", [f"repair:{RUN}"]).fetchall()
    assert sorted(p for _, p in audited) == sorted(extra.values())


@pytest.mark.slow
def test_verification_names_every_duplicate_and_missing_record(world):
    sb, client, hm, tmp_path = world
    assert verify_run(hm.con, client, RUN).once_problems() == []
    extra = spoil(sb, client, hm, tmp_path)
    problems = verify_run(hm.con, client, RUN).once_problems()
    dup = next(p for p in problems if "held more than once" in p)
    assert f"file attachment:ATT-1 (ids {hm.ids['attachment:ATT-1']}, {extra['file']})" in dup
    missing = next(p for p in problems if "missing from Pipedrive" in p)
    assert "deal work_order:WO-2" in missing and "activity labor:100001" in missing  # gone; and an id not its own
    repair_run(hm.con, client, RUN, delete_duplicates=True)
    after = verify_run(hm.con, client, RUN)
    # repair leaves WO-2 for the next load to create again: it is shaped but no longer in the id map
    assert [(m["entity"], m["source_id"], m["status"]) for m in after.missing().to_dicts()] == \
        [("deal", "work_order:WO-2", "not_loaded")]
    assert after.run_duplicates().height == 0


def test_an_unknown_run_is_refused_before_any_request(world):
    _sb, client, hm, _ = world
    spent = client.tokens_spent
    with pytest.raises(Exception, match="is not registered"):
        repair_run(hm.con, client, "full-nope")
    assert client.tokens_spent == spent


def test_a_relationship_is_kept_re_pointed_or_dropped_by_the_organizations_it_links(world):
    _sb, client, hm, _ = world
    rel = hm.ids["asset_parent:00042"]
    assert repair_run(hm.con, client, RUN).count("adopted") == 0  # a relationship that still links its orgs stays
    hm.con.execute("UPDATE meta.id_map SET pipedrive_id = 999 WHERE source_id = 'asset_parent:00042'")
    r = repair_run(hm.con, client, RUN)
    assert next(e for e in r.entities if e.entity == "org_relationship").adopted == [
        {"source_id": "asset_parent:00042", "pipedrive_id": rel, "was": 999}]
    assert mapped(hm.con, "org_relationship") == {"asset_parent:00042": rel}
    client.delete_organization_relationship(rel)
    r = repair_run(hm.con, client, RUN)
    assert next(e for e in r.entities if e.entity == "org_relationship").missing == [
        {"source_id": "asset_parent:00042", "pipedrive_id": rel}]
    assert mapped(hm.con, "org_relationship") == {}


def unmark(client, hm, tmp_path) -> dict[str, int]:
    """Records that are still this run's but carry no source identity: an activity and a note loaded
    before markers existed, a file uploaded under its plain name, a deal whose Novo Source ID was cleared."""
    act, note = hm.ids["labor:100001"], hm.ids["status_log:SL1"]
    client.update_activity(act, {"note": without_marker(client.get_activity(act).note)})
    client.update_note(note, {"content": without_marker(client.get_note(note).content)})
    deal_key = Registry.load(hm.con, account_of(client)).fields["deal"]["Novo Source ID"].key
    client.update_deal(hm.ids["work_order:WO-2"], {"custom_fields": {deal_key: None}})
    old_file = client.upload_file(tmp_path / "files" / "photo.png", deal_id=hm.ids["work_order:WO-1"],
                                  file_name="old.png")[1]
    LoadStore(hm.con).record(RUN, "file", "attachment:OLD", "create", old_file, payload={}, after={})
    return {"activity": act, "note": note, "deal": hm.ids["work_order:WO-2"], "file": old_file}


@pytest.mark.slow
def test_a_live_record_without_its_source_identity_keeps_its_mapping(world):
    sb, client, hm, tmp_path = world
    unmarked = unmark(client, hm, tmp_path)
    before = {e: mapped(hm.con, e) for e in unmarked}
    r = repair_run(hm.con, client, RUN)
    assert {e: mapped(hm.con, e) for e in unmarked} == before
    assert r.count("missing") == 0
    kept = {e.entity: [(d["source_id"], d["pipedrive_id"]) for d in e.kept] for e in r.entities}
    assert kept["activity"] == [("labor:100001", unmarked["activity"])]
    assert kept["note"] == [("status_log:SL1", unmarked["note"])]
    assert kept["deal"] == [("work_order:WO-2", unmarked["deal"])]
    assert kept["file"] == [("attachment:OLD", unmarked["file"])]
    assert "kept (unmarked) 4" in r.summary() and "kept (unmarked) activity labor:100001" in r.summary()
    # the originals stay this run's: its rollback deletes them
    rollback_run(hm.con, client, RUN, progress=lambda _m: None)
    for entity, kind in (("activity", "activities"), ("note", "notes"), ("deal", "deals"), ("file", "files")):
        assert unmarked[entity] not in live(sb, kind)


DELTA = "delta-handmade"


def retitle(client, hm, sid: str, title: str) -> int:
    """A later run's update of a deal, the way the loader records it."""
    pid = hm.ids[sid]
    before = client.get_deal(pid).title
    client.update_deal(pid, {"title": title})
    LoadStore(hm.con).record(DELTA, "deal", sid, "update", pid, payload={"title": title},
                             before={"title": before}, after={"title": title})
    return pid


def lose_newest(sb, kind: str) -> list[dict]:
    """The sandbox's fault mode: it loses its newest acknowledged create and hands the id out again."""
    r = httpx.post(sb.base_url + "/_sandbox/forget", json={"creates": 1, "kind": kind},
                   headers={"x-api-token": sb.api_token}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["forgotten"]


def test_a_forgotten_id_handed_out_again_is_never_restored_by_a_later_rollback(world):
    _sb, client, hm, _ = world
    d2 = retitle(client, hm, "work_order:WO-2", "WO-2 · Boiler, revised")
    assert [x["id"] for x in lose_newest(_sb, "deals")] == [d2]
    deal_key = Registry.load(hm.con, account_of(client)).fields["deal"]["Novo Source ID"].key
    other = client.create_deal({"title": "Someone else's deal", "custom_fields": {deal_key: "work_order:WO-9"}})
    assert other.id == d2  # the lost id now holds another source record
    r = repair_run(hm.con, client, RUN)
    assert next(e for e in r.entities if e.entity == "deal").missing == [
        {"source_id": "work_order:WO-2", "pipedrive_id": d2}]
    rollback_run(hm.con, client, DELTA, progress=lambda _m: None)
    assert client.get_deal(d2).title == "Someone else's deal"
    standing = hm.con.execute("SELECT operation FROM meta.audit_log WHERE source_id = 'work_order:WO-2' "
                              "AND rolled_back_by IS NULL").fetchall()
    assert standing == []


def test_rollback_restores_and_proves_each_record_under_the_id_its_rows_name(world):
    """An audit log repaired before forgetting retired every row: an update of the id the record held
    before stands beside a flag of the id it holds now."""
    _sb, client, hm, _ = world
    store = LoadStore(hm.con)
    d2 = retitle(client, hm, "work_order:WO-2", "WO-2 · Boiler, revised")
    store.forget_mapping(RUN, "deal", "work_order:WO-2", d2, by=f"repair:{RUN}")
    hm.con.execute("UPDATE meta.audit_log SET rolled_back_by = NULL WHERE run_key = ? AND operation = 'update'", [DELTA])
    d3 = client.create_deal({"title": "WO-2 copy"}).id
    store.record(RUN, "deal", "work_order:WO-2", "adopt", d3, payload={}, after={})
    store.record(DELTA, "deal", "work_order:WO-2", "flag", d3, before={"state": "active"}, state="deleted_in_source")
    result = rollback_run(hm.con, client, DELTA, progress=lambda _m: None)
    assert result.restored == 2
    assert client.get_deal(d2).title == "WO-2 · Boiler" and client.get_deal(d3).title == "WO-2 copy"
    assert mapped(hm.con, "deal")["work_order:WO-2"] == d3
    assert hm.con.execute("SELECT state FROM meta.id_map WHERE source_id = 'work_order:WO-2'").fetchall() == [("active",)]



class LosesWhileScanned(PipedriveClient):
    """The account loses its newest person and file (purged, not deleted) right after repair's scan
    has listed them, so repair's delete meets Pipedrive's record-not-found."""

    def __init__(self, sb, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sb = sb

    def list_persons(self, **kw):
        yield from super().list_persons(**kw)
        if not kw:
            lose_newest(self.sb, "persons")

    def list_files(self, **kw):
        yield from super().list_files(**kw)
        if not kw:
            lose_newest(self.sb, "files")


def test_a_duplicate_found_already_gone_is_counted_and_every_delete_is_read_back(world):
    sb, client, hm, tmp_path = world
    extra = spoil(sb, client, hm, tmp_path)
    with LosesWhileScanned(sb, sb.base_url, sb.api_token, plan="growth", seats=5) as losing:
        r = repair_run(hm.con, losing, RUN, delete_duplicates=True)
    assert r.deleted == r.already_gone == len(extra)
    assert "2 extra records deleted, 2 of them already gone" in r.summary()
    assert extra["file"] not in live(sb, "files") and extra["person"] not in live(sb, "persons")
    audited = hm.con.execute("SELECT pipedrive_id, after FROM meta.audit_log WHERE run_key = ? AND "
                             "operation = 'delete_duplicate' ORDER BY ALL", [f"repair:{RUN}"]).fetchall()
    assert sorted(p for p, _ in audited) == sorted(extra.values())
    assert all('"already_gone": true' in after for _, after in audited)
    assert repair_run(hm.con, client, RUN).count("duplicated") == 0


def faults(sb, **settings) -> None:
    r = httpx.post(sb.base_url + "/_sandbox/faults", json=settings, headers={"x-api-token": sb.api_token}, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.slow
def test_repair_stopped_by_pipedrive_says_what_is_recorded_and_how_to_finish(world, monkeypatch, capsys):
    import dagster as dg

    from flitstack_dagster.cli import main as cli_main
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
    from flitstack_dagster.defs.repair import repair
    from flitstack_dagster.defs.resources import build_resources

    sb, _client, hm, tmp_path = world
    hm.con.close()
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "v.duckdb").rename(data / "flitstack.duckdb")
    for name, value in (("FLITSTACK_DATA_DIR", str(data)), ("PIPEDRIVE_BASE_URL", sb.base_url),
                        ("PIPEDRIVE_API_TOKEN", sb.api_token), ("PIPEDRIVE_PLAN", "growth")):
        monkeypatch.setenv(name, value)
    faults(sb, error_rate=1.0)  # Pipedrive answers 5xx until the client gives up

    assert cli_main(["repair", RUN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Pipedrive ") and err.count("\n") == 1 and "Traceback" not in err
    assert err.endswith("What was repaired so far is recorded: run the same command again to finish.\n")

    resources = {**build_resources(data), "pipedrive": PipedriveResource(base_url=sb.base_url, api_token=sb.api_token,
                                                                         plan="growth", seats=5)}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(migration_runs.name, [RUN])
        failed = repair.execute_in_process(partition_key=RUN, instance=instance, resources=resources,
                                           raise_on_error=False)
    assert not failed.success
    description = failed.failure_data_for_node("repair_id_map").user_failure_data.description
    assert description.startswith("Pipedrive ") and sb.api_token not in description
    assert description.endswith("What was repaired so far is recorded: launch the repair again to finish.")
