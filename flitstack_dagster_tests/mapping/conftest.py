"""Hand-built staged tables (per docs/contracts.md) and a fake account audit for the mapping tests."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from flitstack_dagster.novo.columns import BY_ENTITY, ColType

SQL_TYPE = {
    ColType.ID: "VARCHAR", ColType.TEXT: "VARCHAR", ColType.LONG_TEXT: "VARCHAR", ColType.TIME: "VARCHAR",
    ColType.DATE: "DATE", ColType.DATETIME: "TIMESTAMPTZ", ColType.MONEY: "DECIMAL(18,2)",
    ColType.NUMBER: "DOUBLE", ColType.YESNO: "BOOLEAN", ColType.EMAIL: "VARCHAR", ColType.MULTI: "VARCHAR[]",
}
UDF_SQL = {"Text": "VARCHAR", "Long Text": "VARCHAR", "Number": "DOUBLE", "Currency": "DECIMAL(18,2)",
           "Date": "DATE", "Yes/No": "BOOLEAN", "Pick List": "VARCHAR", "Multi Pick List": "VARCHAR[]"}


def _qi(n: str) -> str:
    return '"' + n + '"'


def stage(con, entity: str, rows: list[dict[str, Any]], run_key: str = "full-1",
          extra: dict[str, str] | None = None) -> None:
    """Create (if needed) staging.stg_<entity> with the registry's typed columns plus `extra`
    (snake name -> SQL type), and insert `rows` (keys: snake names) for `run_key`."""
    nf = BY_ENTITY[entity]
    cols = [("_run_key", "VARCHAR"), ("_row_number", "BIGINT")]
    cols += [(c.name, SQL_TYPE[c.type]) for c in nf.columns] + list((extra or {}).items())
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute(f"CREATE TABLE IF NOT EXISTS staging.stg_{entity} ({', '.join(_qi(n) + ' ' + t for n, t in cols)})")
    existing = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='staging' AND table_name=?",
        [f"stg_{entity}"]).fetchall()]
    for i, r in enumerate(rows, start=1):
        vals = {"_run_key": run_key, "_row_number": i, **r}
        names = [n for n in existing if n in vals]
        con.execute(
            f"INSERT INTO staging.stg_{entity} ({', '.join(_qi(n) for n in names)}) VALUES ({', '.join('?' for _ in names)})",
            [vals[n] for n in names],
        )


UDFS = [
    {"entity": "Work Order", "label": "Council District", "column": "UDF: Council District",
     "data_type": "Pick List", "choices": "North|South|East", "required": False},
    {"entity": "Work Order", "label": "Permit Fee", "column": "UDF: Permit Fee", "data_type": "Currency"},
    {"entity": "Work Order", "label": "Crew Size", "column": "UDF: Crew Size", "data_type": "Number"},
    {"entity": "Work Order", "label": "Inspected On", "column": "UDF: Inspected On", "data_type": "Date"},
    {"entity": "Work Order", "label": "Hazard", "column": "UDF: Hazard", "data_type": "Yes/No"},
    {"entity": "Work Order", "label": "Tags", "column": "UDF: Tags", "data_type": "Multi Pick List",
     "choices": "Water|Road|Park"},
    {"entity": "Asset", "label": "Ward", "column": "UDF: Ward", "data_type": "Text"},
    {"entity": "Contact", "label": "Badge Notes", "column": "UDF: Badge Notes", "data_type": "Long Text"},
]
WO_UDF_SQL = {"udf_council_district": "VARCHAR", "udf_permit_fee": "DECIMAL(18,2)", "udf_crew_size": "DOUBLE",
              "udf_inspected_on": "DATE", "udf_hazard": "BOOLEAN", "udf_tags": "VARCHAR[]"}


def build_source(con, run_key: str = "full-1") -> None:
    stage(con, "user_defined_fields", UDFS, run_key)
    stage(con, "departments", [
        {"department_id": "D1", "department_name": "Public Works", "department_type": "Internal", "active": True},
        {"department_id": "D2", "department_name": "Utilities", "department_type": "Internal", "active": True},
        {"department_id": "D9", "department_name": "Acme Facilities", "department_type": "Customer", "active": True},
    ], run_key)
    stage(con, "accounts", [
        {"account_id": "A1", "account_name": "Acme", "account_type": "Customer", "department_id": "D9"},
        {"account_id": "A2", "account_name": "Bolt Supply", "account_type": "Vendor"},
    ], run_key)
    stage(con, "contacts", [
        {"contact_id": "C1", "first_name": "Ann", "last_name": "Tech", "email": "ann@city.gov", "role": "Technician",
         "department_id": "D1"},
        {"contact_id": "C2", "first_name": "Bob", "last_name": "Req", "email": None, "role": "Requester",
         "department_id": "D2", "account_id": "A1"},
        {"contact_id": "C3", "first_name": "Cy", "last_name": "Both", "email": "cy@city.gov",
         "role": "Technician/Requester", "department_id": "D7", "udf_badge_notes": "x" * 300},
    ], run_key, extra={"udf_badge_notes": "VARCHAR"})
    # hierarchy: R1 > K1 > G1 > GG1 (depth 4), R2 alone, orphan O1 (parent missing), cycle X1 -> X2 -> X1, Y1 under X1
    stage(con, "assets", [
        {"asset_id": "R1", "asset_name": "Campus", "asset_class": "Location"},
        {"asset_id": "K1", "asset_name": "Building", "asset_class": "Facility", "parent_asset_id": "R1"},
        {"asset_id": "G1", "asset_name": "Boiler", "asset_class": "Equipment", "parent_asset_id": "K1",
         "serial_number": "SN-1"},
        {"asset_id": "GG1", "asset_name": "Pump", "asset_class": "Equipment", "parent_asset_id": "G1"},
        {"asset_id": "R2", "asset_name": "Depot", "asset_class": "Location", "account_id": "A1"},
        {"asset_id": "O1", "asset_name": "Orphan", "asset_class": "Vehicle", "parent_asset_id": "NOPE"},
        {"asset_id": "X1", "asset_name": "Loop A", "asset_class": "Equipment", "parent_asset_id": "X2"},
        {"asset_id": "X2", "asset_name": "Loop B", "asset_class": "Equipment", "parent_asset_id": "X1"},
        {"asset_id": "Y1", "asset_name": "Under loop", "asset_class": "Equipment", "parent_asset_id": "X1"},
    ], run_key, extra={"udf_ward": "VARCHAR"})
    stage(con, "work_orders", [
        {"wo_number": "WO-1", "title": "Fix pump", "status": "Open", "priority": "High", "requester_id": "C2",
         "assigned_to_id": "C1", "asset_id": "G1", "udf_council_district": "North", "udf_permit_fee": 12.5,
         "udf_tags": ["Water", "Road"], "udf_hazard": True},
        {"wo_number": "WO-2", "title": "Leak", "status": "Awaiting Parts", "priority": "Urgent",
         "requester_id": "C2", "udf_council_district": "Downtown", "udf_tags": ["Sewer"], "description": "d" * 400},
        {"wo_number": "WO-3", "title": "Paint", "status": "Completed", "priority": None, "requester_id": "C2",
         "udf_council_district": None},
        {"wo_number": "WO-4", "title": "Canceled job", "status": "Canceled", "priority": "Low"},
        {"wo_number": "WO-5", "title": "Open again", "status": "Open", "priority": "High"},
    ], run_key, extra=WO_UDF_SQL)
    stage(con, "labor", [
        {"labor_id": "L1", "wo_number": "WO-1", "technician_id": "C1", "hours": 2.0, "rate": 50},
        {"labor_id": "L2", "wo_number": "WO-1", "technician_id": "C1", "hours": 1.5, "rate": 50},
    ], run_key)
    stage(con, "parts_used", [{"line_id": "P1", "wo_number": "WO-1", "part_number": "PN1", "quantity": 2,
                               "unit_cost": 3.5}], run_key)
    stage(con, "status_log", [
        {"log_id": "S1", "wo_number": "WO-1", "from_status": None, "to_status": "New"},
        {"log_id": "S2", "wo_number": "WO-1", "from_status": "New", "to_status": "Open"},
    ], run_key)
    stage(con, "notes", [
        {"note_id": "N1", "wo_number": "WO-1", "entry_type": "Call", "subject": "called"},
        {"note_id": "N2", "wo_number": "WO-1", "entry_type": "Note", "subject": "noted"},
    ], run_key)
    stage(con, "pm_schedules", [
        {"pm_id": "PM1", "pm_name": "Weekly check", "asset_id": "G1", "trigger": "Date", "frequency": "Weekly",
         "every": 1, "active": True},
        {"pm_id": "PM2", "pm_name": "Monthly", "asset_id": "G1", "trigger": "Date",
         "recurrence_rule": "FREQ=MONTHLY;BYDAY=1MO", "active": True},
        {"pm_id": "PM3", "pm_name": "Biweekly", "asset_id": "R1", "trigger": "Date",
         "recurrence_rule": "Every 2 weeks on Monday", "active": True},
        {"pm_id": "PM4", "pm_name": "Meter", "asset_id": "G1", "trigger": "Meter", "meter_name": "Hours",
         "meter_interval": 250, "active": True},
        {"pm_id": "PM5", "pm_name": "Old", "asset_id": "G1", "trigger": "Date", "frequency": "Daily",
         "every": 1, "active": False},
    ], run_key)
    stage(con, "pm_history", [{"pm_event_id": "E1", "pm_id": "PM1"}], run_key)
    stage(con, "inventory", [{"part_number": "PN1", "description": "Gasket"}], run_key)
    stage(con, "asset_parts", [{"asset_id": "G1", "part_number": "PN1"}, {"asset_id": "GG1", "part_number": "PN1"}],
          run_key)
    mb = 1024 * 1024
    stage(con, "attachments", [
        {"attachment_id": "F1", "parent_type": "Work Order", "parent_id": "WO-1", "size": 1000},
        {"attachment_id": "F2", "parent_type": "Work Order", "parent_id": "WO-1", "size": 5 * mb},
        {"attachment_id": "F3", "parent_type": "Asset", "parent_id": "G1", "size": 30 * mb},
        {"attachment_id": "F4", "parent_type": "Asset", "parent_id": "G1", "size": None},
    ], run_key)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


@pytest.fixture
def source(con):
    build_source(con)
    return con


@pytest.fixture
def odd_status_proposal(source, tmp_path):
    """A proposal with one tenant status whose name means nothing known ("Stage 7"): proposed on an open
    stage, below the confidence threshold. (profile, proposal, path of proposed.yaml)."""
    from flitstack_dagster.mapping.profile import profile_source
    from flitstack_dagster.mapping.propose import propose_mapping
    from flitstack_dagster.mapping.yamlio import write_proposal

    stage(source, "work_orders", [{"wo_number": "WO-9", "title": "odd", "status": "Stage 7", "priority": "Low"}])
    profile = profile_source(source, "full-1")
    proposed = propose_mapping(profile)
    return profile, proposed, write_proposal(tmp_path / "proposed.yaml", proposed)


class FakeAudit:
    """Stands in for AccountAudit where only a few attributes are read."""


@pytest.fixture
def audit():
    from flitstack_dagster.mapping.audit import AccountAudit, PdField, PdUser

    return AccountAudit(
        plan="growth", seats=3,
        users=[PdUser(id=1, name="Admin", email="admin@city.gov", active=True, is_admin=True),
               PdUser(id=2, name="Ann", email="Ann@City.gov", active=True)],
        fields={"deal": [PdField(key="title", name="Title", field_type="varchar", custom=False),
                         PdField(key="a" * 40, name="Council District", field_type="enum", custom=True,
                                 options=[{"id": 7, "label": "North"}])],
                "person": [], "organization": []},
    )
