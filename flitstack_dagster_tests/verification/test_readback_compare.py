"""Read-back verification over a real sandbox on hand-made records (the loader's own bodies)."""

from __future__ import annotations

import polars as pl

from flitstack_dagster.loading.marker import marker
from flitstack_dagster.loading.verified_samples import is_sample_verified, verified_sample
from flitstack_dagster.verification.verify import AcceptedMismatch, verify_run

from .handmade import RUN


def _bad(result):
    return result.field_diff.filter(pl.col("outcome") != "match")


def test_a_faithful_run_verifies_clean_and_unlocks_the_full_run(world):
    _sb, client, hm = world
    result = verify_run(hm.con, client, RUN, mapping_hash="m1")
    assert _bad(result).height == 0, _bad(result).to_dicts()
    assert result.clean and result.sample_verified
    assert set(result.records["status"]) == {"verified"} and result.records.height == 9
    fields = set(zip(result.field_diff["entity"], result.field_diff["field"]))
    for f in [("deal", "Novo_Priority__c"), ("deal", "stage"), ("deal", "Labor_Cost__c"), ("deal", "org_id"),
              ("person", "emails"), ("note", "content"), ("activity", "note"), ("file", "file_name"),
              ("org_relationship", "parent"), ("organization", "address")]:
        assert f in fields, f
    prio = result.field_diff.filter((pl.col("field") == "Novo_Priority__c") & (pl.col("source_id") == "work_order:WO-1"))
    assert prio["expected"][0] == "High" and prio["actual"][0] == "High"  # option ids shown as labels
    assert is_sample_verified(hm.con, "m1") and not is_sample_verified(hm.con, "other")
    assert verified_sample(hm.con, "m1").run_key == RUN
    stored = hm.con.execute("SELECT count(*), count(*) FILTER (WHERE outcome = 'match') FROM verification.field_diff "
                            "WHERE run_key = ?", [RUN]).fetchall()[0]
    assert stored[0] == stored[1] == result.field_diff.height


def test_a_corrupted_field_shows_exactly_that_field_of_that_record(world):
    sb, client, hm = world
    sb.patch_record("deals", hm.ids["work_order:WO-1"], {"custom_fields": {hm.keys["Novo_Priority__c"]: None}})
    sb.patch_record("organizations", hm.ids["asset:00042"], {"name": "Air Handler (renamed)"})
    result = verify_run(hm.con, client, RUN, mapping_hash="m1")
    bad = _bad(result).select("entity", "source_id", "field", "expected", "actual", "outcome").to_dicts()
    assert bad == [
        {"entity": "organization", "source_id": "asset:00042", "field": "name", "expected": "Air Handler",
         "actual": "Air Handler (renamed)", "outcome": "mismatch"},
        {"entity": "deal", "source_id": "work_order:WO-1", "field": "Novo_Priority__c", "expected": "High",
         "actual": None, "outcome": "missing"},
    ]
    assert not result.clean and not result.sample_verified and not is_sample_verified(hm.con, "m1")
    summary = result.by_field().filter(pl.col("field") == "name")
    assert summary["mismatch"][0] == 1 and "asset:00042" in summary["example"][0]


def test_pipedrive_normalisation_is_not_a_mismatch(world):
    sb, client, hm = world
    sanitised = "<p>Status changed to <strong>New</strong> by Mary &amp; Co</p>"  # the source marker stays as text
    sb.patch_record("notes", hm.ids["status_log:SL1"], {"content": sanitised + f"<p>{marker('note', 'status_log:SL1')}</p>"})
    sb.patch_record("deals", hm.ids["work_order:WO-1"], {"value": 12.500000001})
    sb.patch_record("activities", hm.ids["labor:100001"], {"due_time": "17:30:00"})
    result = verify_run(hm.con, client, RUN)
    assert _bad(result).height == 0, _bad(result).to_dicts()
    notes = dict(zip(result.field_diff["field"], result.field_diff["note"]))
    assert notes["content"] == "html-sanitised" and notes["due_time"] == "seconds dropped"


def test_accepted_mismatch_is_explained_and_a_deleted_record_is_missing(world):
    sb, client, hm = world
    sb.patch_record("organizations", hm.ids["account:A-1"], {"name": "Springfield Schools"})
    client.delete_activity(hm.ids["labor:100001"])
    accepted = [AcceptedMismatch("organization", "name", "renamed on purpose", "account:A-1")]
    result = verify_run(hm.con, client, RUN, accepted=accepted, mapping_hash="m2")
    name = result.field_diff.filter((pl.col("field") == "name") & (pl.col("source_id") == "account:A-1"))
    assert name["outcome"][0] == "mismatch" and name["accepted"][0] == "renamed on purpose"
    status = dict(zip(result.records["source_id"], result.records["status"]))
    assert status["labor:100001"] == "missing" and status["account:A-1"] == "verified"
    missing = result.field_diff.filter(pl.col("source_id") == "labor:100001")
    assert set(missing["outcome"]) == {"missing"} and result.unexplained == missing.height


def test_two_records_with_one_source_id_are_reported(world):
    _sb, client, hm = world
    key = hm.con.execute("SELECT key FROM meta.field_registry WHERE entity = 'organization' "
                         "AND name = 'Novo Source ID'").fetchall()[0][0]
    copy = client.create_organization({"name": "Springfield ISD (copy)", "custom_fields": {key: "account:A-1"}})
    result = verify_run(hm.con, client, RUN)
    assert result.duplicates.to_dicts() == [
        {"run_key": RUN, "entity": "organization", "source_value": "account:A-1",
         "pipedrive_ids": f"{hm.ids['account:A-1']}, {copy.id}", "in_run": True}]
    assert _bad(result).height == 0 and not result.clean
