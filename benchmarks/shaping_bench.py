"""Shaping benchmark: synthetic staged frames -> shape_all -> checks, with timings.

    .venv/bin/python benchmarks/shaping_bench.py [work_orders]   (default 100000)

Proportions per work order: 0.1 accounts, 0.3 contacts, 0.15 assets (hierarchies up to 6 deep,
a few cycles), 2 labor entries, 1.5 parts lines, 3 status changes, 1 activity-log entry,
0.03 PM schedules (every recurrence style), 0.3 PM history, 0.5 attachments.
"""

from __future__ import annotations

import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import random
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flitstack_dagster.mapping.model import Mapping  # noqa: E402
from flitstack_dagster.shaping import checks, sample  # noqa: E402
from flitstack_dagster.shaping.common import Owners, ShapeContext  # noqa: E402
from flitstack_dagster.staging.frames import StagedInputs  # noqa: E402
from flitstack_dagster.shaping.run import shape_all  # noqa: E402

STATUSES = ["New", "Open", "Scheduled", "In Progress", "On Hold", "Reassigned", "Completed", "Closed", "Cancelled"]
RULES = [
    ("FREQ=WEEKLY;BYDAY=MO,TH", None, None),
    ("FREQ=MONTHLY;BYDAY=1MO", None, None),
    ("Every 2 weeks on Monday", None, None),
    ("Monthly on day 15", None, None),
    ("Every 3 months", None, None),
    (None, "Daily", 3.0),
    (None, "Weekly", 1.0),
    (None, "Monthly", 2.0),
    ("Every blue moon", None, None),
]


class _Rng:
    """The few numpy-like draws the generator needs, on the standard library (numpy is not installed)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def choice(self, seq, n, p=None):
        seq = list(seq)
        return self.r.choices(seq, weights=p, k=n)

    def integers(self, lo, hi, n):
        return [self.r.randrange(lo, hi) for _ in range(n)]

    def uniform(self, lo, hi, n):
        return [round(self.r.uniform(lo, hi), 2) for _ in range(n)]

    def random(self, n):
        return [self.r.random() for _ in range(n)]


def synthetic_inputs(n_wo: int, seed: int = 7) -> StagedInputs:
    rng = _Rng(seed)
    t0 = datetime(2020, 1, 1, tzinfo=timezone.utc)

    def ts(n: int) -> list[datetime]:
        return [t0 + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 365 * 6, n)]

    def ids(prefix: str, n: int, width: int = 6) -> list[str]:
        return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]

    n_acc, n_con, n_ast = max(n_wo // 10, 5), max(n_wo * 3 // 10, 10), max(n_wo * 15 // 100, 10)
    n_lab, n_par, n_sta, n_not = n_wo * 2, n_wo * 3 // 2, n_wo * 3, n_wo
    n_pm, n_pmh, n_att = max(n_wo * 3 // 100, 9), n_wo * 3 // 10, n_wo // 2
    departments = pl.DataFrame({
        "department_id": ["D1", "D2", "D3"], "department_name": ["Public Works", "Utilities", "Facilities"],
        "department_type": ["Internal", "Internal", "Customer"],
    })
    acc_ids = ids("A", n_acc, 5)
    accounts = pl.DataFrame({
        "account_id": acc_ids, "account_name": [f"Account {i}" for i in range(n_acc)],
        "account_type": rng.choice(["Customer", "Vendor", "Supplier"], n_acc),
        "department_id": rng.choice(["D1", "D3", None], n_acc), "address": ["1 Main St"] * n_acc,
        "city": ["Springfield"] * n_acc, "state": ["IL"] * n_acc, "zip": ["62701"] * n_acc, "date_added": ts(n_acc),
    })
    con_ids = ids("C", n_con, 5)
    contacts = pl.DataFrame({
        "contact_id": con_ids, "first_name": [f"First{i}" for i in range(n_con)], "last_name": [f"Last{i}" for i in range(n_con)],
        "email": [f"p{i}@example.com" if i % 7 else None for i in range(n_con)],
        "phone": ["555-0100"] * n_con, "role": rng.choice(["Technician", "Requester", "Technician/Requester"], n_con),
        "department_id": rng.choice(["D1", "D2", None], n_con),
        "account_id": rng.choice(acc_ids + [None] * 3, n_con), "hourly_rate": rng.uniform(20, 90, n_con),
        "date_added": ts(n_con),
    })
    ast_ids = ids("", n_ast, 6)
    # hierarchy: first 10% roots, the rest pick a parent among earlier assets -> depths up to ~6
    parents: list[str | None] = []
    for i in range(n_ast):
        if i < max(n_ast // 10, 1):
            parents.append(None)
        else:
            parents.append(ast_ids[rng.integers(max(i - n_ast // 5, 0), i, 1)[0]])
    for j in range(3):  # a few cycles
        a, b = n_ast - 1 - 2 * j, n_ast - 2 - 2 * j
        parents[a], parents[b] = ast_ids[b], ast_ids[a]
    assets = pl.DataFrame({
        "asset_id": ast_ids, "asset_name": [f"Asset {i}" for i in range(n_ast)],
        "asset_class": rng.choice(["Location", "Facility", "Equipment", "Vehicle"], n_ast),
        "parent_asset_id": parents, "account_id": rng.choice(acc_ids + [None] * 10, n_ast),
        "serial_number": [f"SN{i}" for i in range(n_ast)], "date_added": ts(n_ast),
    })
    wo_ids = [f"WO-{i:06d}" for i in range(1, n_wo + 1)]
    desc = ["Short description <b>bold</b>", "x" * 400 + " <script>alert(1)</script>", None]
    work_orders = pl.DataFrame({
        "wo_number": wo_ids, "title": [f"Fix thing {i}" for i in range(n_wo)],
        "description": rng.choice(desc, n_wo, p=[0.6, 0.1, 0.3]),
        "status": rng.choice(STATUSES, n_wo), "priority": rng.choice(["Emergency", "High", "Medium", "Low", None], n_wo),
        "request_type": rng.choice(["Corrective", "Preventive"], n_wo),
        "requester_id": rng.choice(con_ids, n_wo), "assigned_to_id": rng.choice(con_ids + [None], n_wo),
        "asset_id": rng.choice(ast_ids + [None], n_wo), "account_id": rng.choice(acc_ids + [None] * 5, n_wo),
        "date_requested": ts(n_wo), "date_completed": ts(n_wo), "date_added": ts(n_wo),
    })
    labor = pl.DataFrame({
        "labor_id": ids("L", n_lab, 7), "wo_number": rng.choice(wo_ids, n_lab), "technician_id": rng.choice(con_ids, n_lab),
        "work_date": [date(2025, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 600, n_lab)],
        "start_time": rng.choice(["7:30 AM", "13:15", None], n_lab), "hours": rng.uniform(0.5, 8, n_lab),
        "rate": rng.uniform(20, 90, n_lab), "labor_type": rng.choice(["Regular", "Overtime"], n_lab),
        "notes": ["did the work"] * n_lab,
    })
    parts_used = pl.DataFrame({
        "line_id": ids("P", n_par, 7), "wo_number": rng.choice(wo_ids, n_par),
        "part_number": rng.choice([f"PN-{i:04d}" for i in range(200)], n_par),
        "quantity": [float(x) for x in rng.integers(1, 5, n_par)], "unit_cost": rng.uniform(1, 200, n_par), "date_added": ts(n_par),
    })
    status_log = pl.DataFrame({
        "log_id": ids("S", n_sta, 7), "wo_number": rng.choice(wo_ids, n_sta),
        "from_status": rng.choice(STATUSES, n_sta), "to_status": rng.choice(STATUSES, n_sta),
        "changed_at": ts(n_sta), "changed_by_id": rng.choice(con_ids, n_sta), "comment": ["ok"] * n_sta,
    })
    notes = pl.DataFrame({
        "note_id": ids("N", n_not, 7), "wo_number": rng.choice(wo_ids, n_not),
        "entry_type": rng.choice(["Note", "Call", "Email", "Meeting"], n_not), "subject": ["Subject"] * n_not,
        "body": ["Body <i>text</i>"] * n_not, "internal": rng.choice([True, False], n_not), "logged_at": ts(n_not),
        "logged_by_id": rng.choice(con_ids, n_not),
    })
    rules = [RULES[i % len(RULES)] for i in range(n_pm)]
    pm_schedules = pl.DataFrame({
        "pm_id": ids("PM", n_pm, 5), "pm_name": [f"PM {i}" for i in range(n_pm)], "asset_id": rng.choice(ast_ids, n_pm),
        "trigger": ["Meter" if i % 10 == 9 else "Date" for i in range(n_pm)],
        "recurrence_rule": [r[0] for r in rules], "frequency": [r[1] for r in rules], "every": [r[2] for r in rules],
        "meter_name": ["Hours"] * n_pm, "meter_interval": [250.0] * n_pm,
        "start_date": [date(2016, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 3000, n_pm)],
        "next_due": [date(2026, 12, 1)] * n_pm, "procedure": ["Step 1\nStep 2 <check>"] * n_pm,
        "active": [i % 20 != 0 for i in range(n_pm)], "assigned_to_id": rng.choice(con_ids, n_pm),
    })
    pm_history = pl.DataFrame({
        "pm_event_id": ids("E", n_pmh, 7), "pm_id": rng.choice(pm_schedules["pm_id"].to_list(), n_pmh),
        "completed_date": ts(n_pmh), "result": rng.choice(["Pass", "Fail"], n_pmh),
    })
    inventory = pl.DataFrame({
        "part_number": [f"PN-{i:04d}" for i in range(200)], "description": [f"Part {i}" for i in range(200)],
        "unit_cost": rng.uniform(1, 200, 200), "qty_on_hand": [float(x) for x in rng.integers(0, 50, 200)],
    })
    ap_n = n_ast // 2
    asset_parts = pl.DataFrame({
        "asset_id": rng.choice(ast_ids, ap_n), "part_number": rng.choice(inventory["part_number"].to_list(), ap_n),
        "qty_required": [1.0] * ap_n,
    }).unique(["asset_id", "part_number"])
    sizes = rng.integers(1_000, 5_000_000, n_att)
    for i in range(0, n_att, 97):
        sizes[i] = 26 * 1024 * 1024
    att_parent_wo = [x < 0.7 for x in rng.random(n_att)]
    attachments = pl.DataFrame({
        "attachment_id": ids("F", n_att, 7), "parent_type": ["Work Order" if w else "Asset" for w in att_parent_wo],
        "parent_id": [w if p else a for w, a, p in zip(rng.choice(wo_ids, n_att), rng.choice(ast_ids, n_att), att_parent_wo)],
        "file_name": [f"photo {i}.jpg" for i in range(n_att)], "bundle_path": [f"files/x/photo {i}.jpg" for i in range(n_att)],
        "size": [float(x) for x in sizes], "content_type": ["image/jpeg"] * n_att, "sha_256": ["0" * 64] * n_att, "uploaded_at": ts(n_att),
    })
    return StagedInputs(
        departments=departments, accounts=accounts, contacts=contacts, assets=assets, work_orders=work_orders,
        labor=labor, parts_used=parts_used, status_log=status_log, notes=notes, pm_schedules=pm_schedules,
        pm_history=pm_history, inventory=inventory, asset_parts=asset_parts, attachments=attachments,
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    t = time.perf_counter()
    inputs = synthetic_inputs(n)
    t_gen = time.perf_counter() - t
    rows_in = sum(inputs.frame(e).height for e in StagedInputs.entities())
    ctx = ShapeContext(run_key="bench-1", exported_at=datetime(2026, 10, 20, 12, tzinfo=timezone.utc), timezone="America/Chicago")
    owners = Owners.of({f"C{i:05d}": 1000 + i for i in range(1, 200)}, default_owner_id=1)
    mapping = Mapping()
    t = time.perf_counter()
    run = shape_all(inputs, mapping, owners, ctx)
    t_shape = time.perf_counter() - t
    t = time.perf_counter()
    results = checks.run_checks(run, inputs, mapping, ctx.already_loaded)
    t_checks = time.perf_counter() - t
    t = time.perf_counter()
    s = sample.select_sample(inputs)
    t_sample = time.perf_counter() - t
    print(f"work orders: {n:,}  staged rows: {rows_in:,}  (generate {t_gen:.1f}s)")
    for name, f in run.outputs().items():
        print(f"  {name:22s} {f.height:>9,}")
    print(f"  set_aside              {run.set_aside.height:>9,}")
    print(f"  reconciliation rows    {run.reconciliation.height:>9,}")
    print(f"shape_all: {t_shape:.2f}s   checks: {t_checks:.2f}s   sample selection: {t_sample:.2f}s "
          f"({sum(s.frame(e).height for e in StagedInputs.entities())} rows)")
    for r in results:
        print(f"  check {r.name:28s} {'ok' if r.passed else 'FAIL'} ({r.severity}, {r.count})")


if __name__ == "__main__":
    main()
