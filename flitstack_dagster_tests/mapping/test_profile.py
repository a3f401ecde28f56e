from __future__ import annotations

import time

import pytest

from flitstack_dagster.mapping.profile import cadence_of, profile_source
from flitstack_dagster_tests.mapping.conftest import build_source, stage


def test_column_numbers(source):
    p = profile_source(source, "full-1")
    wo = p.entities["work_orders"]
    assert wo.rows == 5
    pri = wo.column("Priority")
    assert pri.null_count == 1 and pri.null_rate == 0.2
    assert pri.distinct == 3
    assert pri.top_values[0] == ("High", 2)
    st = wo.column("status")
    assert st.max_length == len("Awaiting Parts")
    assert st.examples == ["Open", "Awaiting Parts", "Completed"]  # first seen, in row order
    desc = wo.column("Description")
    assert desc.max_length == 400 and desc.null_rate == 0.8
    assert desc.top_values[0][0].endswith("…")  # long values are shortened for display
    fee = wo.column("udf_permit_fee")
    assert fee.udf and fee.label == "UDF: Permit Fee" and fee.type_seen.startswith("DECIMAL")
    tags = wo.column("UDF: Tags")
    assert tags.type_seen == "VARCHAR[]" and dict(tags.top_values) == {"Water": 1, "Road": 1, "Sewer": 1}


def test_inventory(source):
    inv = profile_source(source, "full-1").inventory
    assert inv.counts["assets"] == 9 and inv.counts["work_orders"] == 5
    assert inv.wo_status == {"Open": 2, "Awaiting Parts": 1, "Canceled": 1, "Completed": 1}
    assert inv.wo_priority == {"High": 2, "Low": 1, "Urgent": 1, "": 1}
    assert inv.pm_by_style == {"frequency": 2, "meter": 1, "phrase": 1, "rrule": 1}
    assert {(c.style, c.unit, c.interval, c.schedules) for c in inv.pm_cadence} == {
        ("frequency", "WEEKLY", 1, 1), ("rrule", "MONTHLY", 1, 1), ("phrase", "WEEKLY", 2, 1), ("meter", None, 1, 1)}
    assert inv.attachments_by_size == {"< 1 MB": 1, "1–10 MB": 1, "10–25 MB": 0, "> 25 MB": 1, "unknown": 1}
    assert inv.descriptions_over_255 == 1 and inv.equipment_with_parts == 2


def test_hierarchy_depth_and_cycles(source):
    h = profile_source(source, "full-1").inventory.hierarchy
    # R1 > K1 > G1 > GG1, R2, O1 (missing parent -> root), cycle X1 <-> X2, Y1 under the cycle
    assert h.depth_histogram == {1: 3, 2: 1, 3: 1, 4: 1}
    assert h.max_depth == 4 and h.deeper_than_2 == 2
    assert h.missing_parent == 1 and h.roots == 3
    assert h.cycles == [["X1", "X2"]]
    assert h.in_cycle == 2 and h.under_cycle == 1


def test_self_cycle_and_run_isolation(con):
    build_source(con)
    stage(con, "assets", [{"asset_id": "S", "asset_name": "self", "parent_asset_id": "S"}], run_key="full-2")
    h = profile_source(con, "full-2").inventory.hierarchy
    assert h.assets == 1 and h.cycles == [["S"]] and h.depth_histogram == {}
    assert profile_source(con, "full-2").inventory.counts["work_orders"] == 0


def test_udfs_and_value_sets(source):
    p = profile_source(source, "full-1")
    cd = p.udf("work_orders", "UDF: Council District")
    assert cd.data_type == "Pick List" and cd.choices == ["North", "South", "East"]
    assert p.value_sets["work_orders.UDF: Council District"] == {"Downtown": 1, "North": 1}
    assert p.value_sets["work_orders.UDF: Tags"] == {"Road": 1, "Sewer": 1, "Water": 1}
    assert p.value_sets["contacts.Department ID"] == {"D1": 1, "D2": 1, "D7": 1}


def test_undeclared_udf_column_is_profiled(con):
    build_source(con)
    con.execute("ALTER TABLE staging.stg_accounts ADD COLUMN udf_region DOUBLE")
    p = profile_source(con, "full-1")
    u = p.udf("accounts", "UDF: Region")
    assert u is not None and not u.declared and u.data_type == "Number"


@pytest.mark.slow
def test_profile_hash_tracks_shape_not_counts(con):
    build_source(con)
    h1 = profile_source(con, "full-1").profile_hash
    assert profile_source(con, "full-1").profile_hash == h1
    stage(con, "work_orders", [{"wo_number": "WO-9", "title": "x", "status": "Open"}], run_key="full-1")
    assert profile_source(con, "full-1").profile_hash == h1  # one more row of a known value
    stage(con, "work_orders", [{"wo_number": "WO-10", "title": "y", "status": "Parked"}], run_key="full-1")
    assert profile_source(con, "full-1").profile_hash != h1  # a new status


def test_cadence_classification():
    assert cadence_of("Date", None, None, "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH").model_dump() == {
        "style": "rrule", "unit": "WEEKLY", "interval": 2, "schedules": 0}
    assert cadence_of("Date", None, None, "Monthly on day 15").unit == "MONTHLY"
    assert cadence_of("Date", None, None, "Every 3 months").interval == 3
    assert cadence_of("Meter", "Weekly", 1, None).style == "meter"
    assert cadence_of("Date", "Yearly", 2, None).model_dump()["interval"] == 2
    assert cadence_of(None, None, None, None).style == "none"


def test_profile_is_fast_on_many_rows(con):
    con.execute("CREATE SCHEMA staging")
    con.execute("""CREATE TABLE staging.stg_assets AS SELECT 'full-1' AS _run_key, i AS _row_number,
        'A' || i AS asset_id, 'n' || i AS asset_name,
        CASE WHEN i = 0 THEN NULL ELSE 'A' || (i // 10) END AS parent_asset_id,
        'Equipment' AS asset_class FROM range(200000) t(i)""")
    t = time.perf_counter()
    h = profile_source(con, "full-1").inventory.hierarchy
    assert time.perf_counter() - t < 30
    assert h.assets == 200000 and h.roots == 1 and sum(h.depth_histogram.values()) == 200000


def test_profile_json_round_trip(source):
    from flitstack_dagster.mapping.profile import SourceProfile

    p = profile_source(source, "full-1")
    back = SourceProfile.model_validate_json(p.model_dump_json())
    assert back == p and back.compute_hash() == p.profile_hash
    assert back.inventory.hierarchy.depth_histogram[4] == 1
