import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.persons import shape_persons

from .conftest import payloads


def _i():
    return StagedInputs(
        contacts=pl.DataFrame({
            "contact_id": ["0001", "T1", "X"], "first_name": [" Ann ", "Bob", None], "last_name": ["Lee", None, None],
            "email": ["ann@x.org", "not-an-email", None], "phone": ["555 1", None, None], "mobile": ["555 2", "555 3", None],
            "role": ["Requester", "Technician", None], "department_id": ["D1", None, None], "account_id": ["A1", "GONE", None],
        }),
        departments=pl.DataFrame({"department_id": ["D1"], "department_name": ["Utilities"]}),
        quarantine=pl.DataFrame({"_run_key": ["full-t1"], "file": ["contacts.csv"], "entity": ["contacts"], "row_number": [1],
                                 "column": ["Email"], "raw_value": ["ann@@x"], "reason_code": ["invalid_email"], "message": ["x"], "level": ["value"]}),
    )


def test_persons(ctx, owners):
    i = _i()
    out = shape_persons(i.contacts, i.departments, i.quarantine, {"account:A1"}, Mapping(), owners, ctx)
    p = payloads(out.frame)
    ann = p["contact:0001"]
    assert ann["name"] == "Ann Lee"
    assert ann["emails"] == [{"value": "ann@x.org", "label": "work", "primary": True}]
    assert ann["phones"] == [{"value": "555 1", "label": "work", "primary": True}, {"value": "555 2", "label": "mobile", "primary": False}]
    assert ann["Novo_Role__c"] == "Requester" and ann["Novo_Department__c"] == "Utilities"
    assert ann["Novo Contact ID"] == "0001"
    rows = {r["source_id"]: r for r in out.frame.to_dicts()}
    assert rows["contact:0001"]["org_ref"] == "account:A1"
    assert rows["contact:T1"]["org_ref"] is None  # account not migrated: dropped, warned
    assert rows["contact:T1"]["owner_id"] == 501 and rows["contact:0001"]["owner_id"] == 1
    assert rows["contact:T1"]["kind"] == "technician"
    assert out.set_aside["source_id"].to_list() == ["contact:X"]
    codes = sorted(out.warnings["code"].to_list())
    assert codes == ["invalid_email", "invalid_email", "reference_dropped"]


def test_role_value_map(ctx, owners):
    i = _i()
    m = Mapping(value_maps={"contacts.Role": {"Requester": "Requester", "Technician": "Field Tech"}})
    p = payloads(shape_persons(i.contacts, i.departments, i.quarantine, set(), m, owners, ctx).frame)
    assert p["contact:T1"]["Novo_Role__c"] == "Field Tech"


def test_department_value_map_keyed_by_id(ctx, owners):
    i = _i()
    m = Mapping(value_maps={"contacts.Department ID": {"D1": "Utilities Dept"}})
    p = payloads(shape_persons(i.contacts, i.departments, i.quarantine, set(), m, owners, ctx).frame)
    assert p["contact:0001"]["Novo_Department__c"] == "Utilities Dept"
