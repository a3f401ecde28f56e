"""The status evidence read from staged work orders and status logs, on a log small enough to count by hand."""

from __future__ import annotations

import duckdb

from flitstack_dagster.mapping.evidence import StatusEvidence, status_evidence

RUN = "full-evidence"
LOG = [  # wo, from, to, hours after 08:00
    ("WO-1", None, "New", 0), ("WO-1", "New", "Open", 2), ("WO-1", "Open", "Closed", 5),
    ("WO-2", None, "New", 0), ("WO-2", "New", "Closed", 1), ("WO-2", "Closed", "Open", 3),
    ("WO-3", None, "Open", 0),
    ("WO-4", None, "", 0),  # a blank status is no step
]


def _staged() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.stg_work_orders (_run_key VARCHAR, wo_number VARCHAR, status VARCHAR, "
                "date_completed TIMESTAMPTZ)")
    con.executemany("INSERT INTO staging.stg_work_orders VALUES (?, ?, ?, ?)", [
        (RUN, "WO-1", "Closed", "2026-01-05 13:00:00+00"), (RUN, "WO-2", "Open", None),
        (RUN, "WO-3", "Open", None), ("other-run", "WO-9", "Open", None)])
    con.execute("CREATE TABLE staging.stg_status_log (_run_key VARCHAR, _row_number BIGINT, wo_number VARCHAR, "
                "from_status VARCHAR, to_status VARCHAR, changed_at TIMESTAMPTZ)")
    # rows written out of time order: the evidence follows each work order's times, not the file
    rows = [(RUN, n, wo, prev, to, f"2026-01-05 {8 + h:02d}:00:00+00")
            for n, (wo, prev, to, h) in enumerate(reversed(LOG), start=1)]
    con.executemany("INSERT INTO staging.stg_status_log VALUES (?, ?, ?, ?, ?, ?)",
                    [*rows, ("other-run", 1, "WO-9", None, "Open", "2026-01-05 08:00:00+00")])
    return con


def test_histories_ends_starts_reentries_and_dwell_are_counted_per_status():
    got = status_evidence(_staged(), RUN, {"Closed"})
    assert got == {
        "Closed": StatusEvidence(work_orders=1, completed=1, histories=2, terminal=1, first=0, entries=2,
                                 from_closed=0, dwell_hours=2.0),
        "New": StatusEvidence(histories=2, terminal=0, first=2, entries=2, from_closed=0, dwell_hours=1.5),
        "Open": StatusEvidence(work_orders=2, completed=0, histories=3, terminal=2, first=1, entries=3,
                               from_closed=1, dwell_hours=3.0),
    }
